//! A wire-faithful simulator of Safaricom's Daraja (M-Pesa) API for tests and the dev stack.
//!
//! It serves the Daraja endpoints over HTTP, validates requests as Daraja does (with its error
//! codes), decides outcomes from a deterministic scenario table (the customer's phone number) or
//! the control API, POSTs real callbacks after a configurable delay, injects reproducible faults,
//! and records ground truth under `/__control`. See the README for the tables.

pub mod account;
pub mod auth;
pub mod b2c;
pub mod balances;
pub mod c2b;
pub mod callbacks;
pub mod clock;
pub mod config;
pub mod control;
pub mod endpoint;
pub mod errors;
pub mod faults;
pub mod forced;
pub mod ground_truth;
pub mod ids;
pub mod initiator;
pub mod request;
pub mod results;
pub mod scenarios;
pub mod server;
pub mod state;
pub mod stk;
mod sync;
pub mod test_credentials;

pub use config::{Profile, SimulatorConfig};
pub use faults::{FaultConfig, FaultKind, FaultRule, FaultTarget};
pub use ground_truth::{CallbackAttempt, TransactionRecord, TxKind, TxStatus};
pub use server::router;
pub use state::SimState;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running simulator. Dropping it stops the server too.
pub struct SimulatorHandle {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    state: Arc<SimState>,
}

/// Starts the simulator on `addr` (port 0 picks a free port).
pub async fn spawn(config: SimulatorConfig, addr: SocketAddr) -> std::io::Result<SimulatorHandle> {
    use axum::serve::ListenerExt;

    config
        .validate()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let state = SimState::new(config)?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let app = router(state.clone());
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "simulator server stopped");
        }
    });
    Ok(SimulatorHandle {
        addr: local,
        shutdown: Some(tx),
        task: Some(task),
        state,
    })
}

impl SimulatorHandle {
    /// `http://127.0.0.1:PORT` (an unspecified bind address is reported as loopback).
    pub fn base_url(&self) -> String {
        let ip = match self.addr.ip() {
            IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            ip => ip,
        };
        format!("http://{}", SocketAddr::new(ip, self.addr.port()))
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// In-process access to the simulator's state (same data as the control API).
    pub fn state(&self) -> &Arc<SimState> {
        &self.state
    }

    /// Every transaction so far (same as `GET /__control/transactions`).
    pub fn transactions(&self) -> Vec<TransactionRecord> {
        self.state.store.list(&Default::default())
    }

    /// Stops accepting connections and waits (up to 5 s) for open requests to finish.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(Duration::from_secs(5), &mut task).await.is_err() {
                task.abort();
            }
        }
    }
}

impl Drop for SimulatorHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
