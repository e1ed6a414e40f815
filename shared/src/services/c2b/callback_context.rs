//! What the two C2B callback handlers share (the confirmation's, [`super::confirmations`], and
//! the Transaction Status result's, [`super::verification`]): their dependencies, the start of
//! handling one callback (the secrets, the callback's record), recording a callback that changed
//! nothing, and the C2B settler.

use std::sync::Arc;

use crate::clock::Clock;
use crate::domain::c2b_verification::VerificationTimings;
use crate::repo::callbacks::{CallbackRecord, Verdict};
use crate::secrets::{AppSecrets, SecretCache};
use crate::services::c2b::effects::EchoWindow;
use crate::services::c2b::flow::C2bSettler;
use crate::services::callback_intake::CallbackEnvelope;
use crate::services::callback_processor::{record_of, record_verdict, Retry};
use crate::store::Table;

/// A C2B callback handler's dependencies and settings.
pub struct C2bCallbackContext {
    /// The `Kind` dimension of the handler's `CallbackAnomalies` (`c2b_confirmation`,
    /// `c2b_status_result`).
    pub kind: &'static str,
    pub table: Arc<dyn Table>,
    pub secrets: Arc<SecretCache>,
    pub clock: Arc<dyn Clock>,
    pub timings: VerificationTimings,
    pub echo_window: EchoWindow,
}

impl C2bCallbackContext {
    /// With the default verification timings and echo window.
    pub fn new(
        kind: &'static str,
        table: Arc<dyn Table>,
        secrets: Arc<SecretCache>,
        clock: Arc<dyn Clock>,
    ) -> C2bCallbackContext {
        C2bCallbackContext {
            kind,
            table,
            secrets,
            clock,
            timings: VerificationTimings::default(),
            echo_window: EchoWindow::default(),
        }
    }

    /// The start of handling message `message_id`: the secrets (unavailable: retried later) and
    /// the callback's record, stamped now.
    pub async fn begin(
        &self,
        message_id: &str,
        envelope: &CallbackEnvelope,
    ) -> Result<(Arc<AppSecrets>, CallbackRecord), Retry> {
        let secrets = self.secrets.get().await.map_err(|e| Retry(e.to_string()))?;
        Ok((secrets, record_of(message_id, envelope, self.clock.now())))
    }

    /// Records a callback that changed no state, with its verdict and reason.
    pub async fn finish(&self, record: CallbackRecord, verdict: Verdict, reason: &str) -> Result<Verdict, Retry> {
        record_verdict(self.table.as_ref(), record, verdict, reason, Some(self.kind)).await
    }

    pub fn settler(&self) -> C2bSettler {
        C2bSettler::c2b(self.table.clone(), self.clock.clone(), self.echo_window)
    }
}
