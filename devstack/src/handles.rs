//! What tests and tools reach through a running stack: its URLs and tokens, its adapters, the
//! sweeps run on demand, the outbox and audit checks, and shutdown. (`lib.rs` builds it.)

use super::*;

impl DevStack {
    /// The STK callback URL this stack gives Daraja for `payment_id` (genuine token, whether or
    /// not such a payment exists): tests of callbacks naming payments we never created.
    pub async fn stk_callback_url(&self, payment_id: &str) -> String {
        let secrets = self.secrets.get().await.expect("the dev stack's secrets");
        let tokens = checkout::callback_token::CallbackTokens::from_secrets(&secrets);
        format!(
            "{}/callbacks/stk/{}",
            self.base_url,
            tokens.token_for(checkout::callback_token::TokenPurpose::StkCallback, payment_id)
        )
    }

    /// The C2B validation and confirmation URLs of `shortcode`'s token generation `generation`
    /// (genuine tokens): tests of requests POSTed by someone who learned the URLs. The API never
    /// shows them in full.
    pub async fn c2b_urls(&self, shortcode: &str, generation: u32) -> (String, String) {
        let secrets = self.secrets.get().await.expect("the dev stack's secrets");
        let tokens = checkout::callback_token::CallbackTokens::from_secrets(&secrets);
        let id = checkout::domain::c2b_path_tokens::TokenId::new(
            checkout::domain::c2b::Shortcode::parse(shortcode).expect("a shortcode"),
            generation,
        );
        checkout::services::c2b::registration::c2b_urls(&self.base_url, &tokens, &id)
    }

    /// Test hook: makes `POST /c2b/validation/{token}` wait this long before answering, as a
    /// slow validation would (Daraja then falls back on the registration's ResponseType).
    pub fn set_c2b_validation_delay(&self, delay: Duration) {
        self.c2b_validation_delay
            .store(delay.as_millis() as u64, Ordering::Relaxed);
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn simulator_url(&self) -> &str {
        &self.simulator_url
    }

    pub fn simulator(&self) -> Option<&simulator::SimulatorHandle> {
        self.simulator.as_ref()
    }

    /// The table, for tests that check what was stored.
    pub fn table(&self) -> Arc<dyn Table> {
        self.table.clone()
    }

    pub fn callback_queue(&self) -> Arc<dyn Queue> {
        self.callback_queue.clone()
    }

    /// The in-memory callback queue (and through it the DLQ), when running in memory.
    pub fn memory_queue(&self) -> Option<Arc<MemoryQueue>> {
        self.memory_queue.clone()
    }

    /// The example shop's URL (a page that opens the payment modal), when it runs.
    pub fn example_shop_url(&self) -> Option<&str> {
        self.example_shop_url.as_deref()
    }

    /// A bearer token for `subject` with `scopes`, valid for `ttl`; its merchant is `subject`.
    pub fn token(&self, subject: &str, scopes: &[&str], ttl: Duration) -> String {
        let now = chrono::Utc::now().timestamp();
        checkout::auth::jwt::mint_hs256(
            &self.jwt_secret,
            &serde_json::json!({"sub": subject, "scope": scopes.join(" "), "iat": now, "exp": now + ttl.as_secs() as i64}),
        )
    }

    /// A bearer token for user `subject` acting for `merchant` (the `merchant` claim).
    pub fn token_for_merchant(&self, subject: &str, merchant: &str, scopes: &[&str], ttl: Duration) -> String {
        let now = chrono::Utc::now().timestamp();
        checkout::auth::jwt::mint_hs256(
            &self.jwt_secret,
            &serde_json::json!({
                "sub": subject, "merchant": merchant, "scope": scopes.join(" "),
                "iat": now, "exp": now + ttl.as_secs() as i64,
            }),
        )
    }

    /// Runs one timeout sweep now (the background sweeper runs on its own interval): payments,
    /// payouts and C2B verification, as the timeout sweeper function does.
    pub async fn sweep_now(&self) -> SweepReport {
        let report = self.reconciler.sweep().await;
        self.payout_stack.reconciler.sweep().await;
        self.c2b_verifier.sweep().await;
        self.event_handler.redrive().await;
        self.webhooks.sweep().await;
        self.session_expiry.sweep().await;
        report
    }

    /// Writes the audit digests due now (the background sweep runs it after the others; tests
    /// call it on its own, so the payment sweep's reads are measured alone).
    pub async fn digest_audit_now(&self) -> Result<checkout::audit::digest::DigestReport, checkout::store::StoreError> {
        self.digester.run().await
    }

    /// Where the stack archives audit digests (in memory; an Object Lock bucket in AWS).
    pub fn audit_archive(&self) -> Arc<MemoryArchive> {
        self.audit_archive.clone()
    }

    /// Makes the webhook attempts that are due now (also part of [`DevStack::sweep_now`]).
    pub async fn sweep_webhooks_now(&self) -> checkout::webhooks::dispatch::WebhookSweepReport {
        self.webhooks.sweep().await
    }

    /// What is wrong with the outbox of everything stored (see [`outbox`]); when the table streams
    /// its events, also any event not delivered within `wait`.
    pub async fn outbox_problems(&self, wait: Duration) -> Vec<String> {
        outbox::problems(&self.table, self.streams_events, wait).await
    }

    /// Runs one redrive of unhandled events now (also part of [`DevStack::sweep_now`]).
    pub async fn redrive_events_now(&self) -> checkout::events::handler::RedriveReport {
        self.event_handler.redrive().await
    }

    /// Runs one C2B verification sweep now (also part of [`DevStack::sweep_now`]).
    pub async fn sweep_c2b_now(&self) -> checkout::services::c2b::verification::C2bVerifySweepReport {
        self.c2b_verifier.sweep().await
    }

    /// Runs one payout sweep now (also part of [`DevStack::sweep_now`]).
    pub async fn sweep_payouts_now(&self) -> checkout::services::payouts::sweep::PayoutSweepReport {
        self.payout_stack.reconciler.sweep().await
    }

    /// Another payout worker on the same table, Daraja and secrets, as a second Lambda instance
    /// consuming the payout queue would be (tests of concurrent jobs for one payout).
    pub fn payout_worker_instance(&self) -> Arc<checkout::services::payouts::worker::PayoutWorker> {
        let w = &self.payout_stack.worker;
        Arc::new(checkout::services::payouts::worker::PayoutWorker {
            repo: w.repo.clone(),
            settler: w.settler.clone(),
            daraja: w.daraja.clone(),
            secrets: w.secrets.clone(),
            credentials: w.credentials.clone(),
            clock: w.clock.clone(),
            config: w.config.clone(),
        })
    }

    /// The in-memory payout queue (and through it its DLQ), when running in memory.
    pub fn payout_queue(&self) -> Option<Arc<MemoryQueue>> {
        self.payout_stack.memory_queue.clone()
    }

    /// A token with exactly these claims (tests of expiry and missing claims).
    pub fn token_with_claims(&self, claims: &serde_json::Value) -> String {
        checkout::auth::jwt::mint_hs256(&self.jwt_secret, claims)
    }

    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        if let Some(simulator) = self.simulator {
            simulator.shutdown().await;
        }
    }
}
