//! Shared simulator state. Every lock here is held for a few field updates only, never across
//! an `.await`.

use axum::response::Response;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::sync::{Arc, Mutex, RwLock};

use crate::auth::TokenStore;
use crate::balances::Balances;
use crate::c2b::Registry;
use crate::callbacks::Dispatcher;
use crate::config::SimulatorConfig;
use crate::errors::ApiError;
use crate::faults::FaultEngine;
use crate::forced::ForcedOutcomes;
use crate::ground_truth::Store;
use crate::ids;
use crate::initiator::Initiators;
use crate::sync::{lock, read, write};

pub struct SimState {
    config: RwLock<Arc<SimulatorConfig>>,
    startup_config: Arc<SimulatorConfig>,
    rng: Mutex<ChaCha8Rng>,
    pub tokens: TokenStore,
    pub store: Store,
    pub forced: ForcedOutcomes,
    pub faults: FaultEngine,
    pub initiators: Initiators,
    pub c2b: Registry,
    pub balances: Balances,
    pub dispatcher: Dispatcher,
}

/// What `POST /__control/reset` also clears besides transactions, outcomes and faults.
#[derive(Clone, Copy, Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResetOptions {
    /// Revoke every token.
    pub tokens: bool,
    /// Forget C2B URL registrations.
    pub registrations: bool,
    /// Restore the startup configuration (undo `PATCH /__control/config`).
    pub config: bool,
}

impl SimState {
    pub fn new(config: SimulatorConfig) -> std::io::Result<Arc<Self>> {
        let dispatcher = Dispatcher::new().map_err(std::io::Error::other)?;
        let seed = config.seed;
        Ok(Arc::new(SimState {
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
            tokens: TokenStore::default(),
            store: Store::default(),
            forced: ForcedOutcomes::default(),
            faults: FaultEngine::new(config.faults.clone(), seed),
            initiators: Initiators::new(),
            c2b: Registry::default(),
            balances: Balances::new(&config),
            dispatcher,
            startup_config: Arc::new(config.clone()),
            config: RwLock::new(Arc::new(config)),
        }))
    }

    /// The configuration in force (cheap: an `Arc` clone).
    pub fn config(&self) -> Arc<SimulatorConfig> {
        read(&self.config).clone()
    }

    pub fn set_config(&self, config: SimulatorConfig) {
        *write(&self.config) = Arc::new(config);
    }

    /// Runs `f` with the seeded RNG. Draw everything a request needs in one call.
    pub fn with_rng<R>(&self, f: impl FnOnce(&mut ChaCha8Rng) -> R) -> R {
        f(&mut lock(&self.rng))
    }

    pub fn new_request_id(&self) -> String {
        self.with_rng(ids::request_like)
    }

    pub fn error_response(&self, e: ApiError) -> Response {
        let id = self.new_request_id();
        e.into_response_with_id(&id)
    }

    /// Back to a fresh start: same seed, no transactions, startup faults.
    pub fn reset(&self, opts: ResetOptions) {
        if opts.config {
            self.set_config((*self.startup_config).clone());
        }
        let cfg = self.config();
        self.store.reset();
        self.forced.clear();
        self.faults.configure(self.startup_config.faults.clone(), cfg.seed);
        self.initiators.reset();
        self.balances.reset(&cfg);
        self.dispatcher.reset();
        *lock(&self.rng) = ChaCha8Rng::seed_from_u64(cfg.seed);
        if opts.tokens {
            self.tokens.revoke_all();
        }
        if opts.registrations {
            self.c2b.clear();
        }
    }
}
