//! SecurityCredential checks: RSA PKCS#1 v1.5 decryption with the simulator's test key, and the
//! lock after repeated failures.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rsa::{Pkcs1v15Encrypt, RsaPrivateKey};
use std::collections::HashMap;
use std::sync::Mutex;

use crate::config::SimulatorConfig;
use crate::sync::lock;
use crate::test_credentials;

/// Outcome of a credential check, as Daraja reports it in the asynchronous result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialCheck {
    Valid,
    /// 2001 "The initiator information is invalid."
    Invalid,
    /// 8006 "The security credential is locked."
    Locked,
}

impl CredentialCheck {
    pub fn result_code(self) -> Option<&'static str> {
        match self {
            CredentialCheck::Valid => None,
            CredentialCheck::Invalid => Some("2001"),
            CredentialCheck::Locked => Some("8006"),
        }
    }
}

const CACHE_CAP: usize = 4096;

pub struct Initiators {
    key: RsaPrivateKey,
    failures: Mutex<HashMap<String, u32>>,
    /// Decryption results by credential: RSA is the most expensive thing a request does.
    cache: Mutex<HashMap<String, Option<String>>>,
}

impl Default for Initiators {
    fn default() -> Self {
        Self::new()
    }
}

impl Initiators {
    pub fn new() -> Self {
        Initiators {
            key: test_credentials::private_key(),
            failures: Mutex::new(HashMap::new()),
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn reset(&self) {
        lock(&self.failures).clear();
    }

    fn decrypt(&self, credential: &str) -> Option<String> {
        if let Some(hit) = lock(&self.cache).get(credential) {
            return hit.clone();
        }
        let cleaned: String = credential.chars().filter(|c| !c.is_whitespace()).collect();
        let plain = STANDARD
            .decode(cleaned)
            .ok()
            .and_then(|bytes| self.key.decrypt(Pkcs1v15Encrypt, &bytes).ok())
            .and_then(|p| String::from_utf8(p).ok());
        let mut cache = lock(&self.cache);
        if cache.len() >= CACHE_CAP {
            cache.clear();
        }
        cache.insert(credential.to_string(), plain.clone());
        plain
    }

    /// Checks `credential` for `initiator`. After `initiator_lock_after` failures every later
    /// request of that initiator is refused with 8006 until a reset or unlock.
    pub fn check(&self, cfg: &SimulatorConfig, initiator: &str, credential: &str) -> CredentialCheck {
        let locked = |n: u32| cfg.initiator_lock_after > 0 && n >= cfg.initiator_lock_after;
        if locked(lock(&self.failures).get(initiator).copied().unwrap_or(0)) {
            return CredentialCheck::Locked;
        }
        let ok = match cfg.initiator_password(initiator) {
            Some(expected) => self.decrypt(credential).as_deref() == Some(expected),
            None => false,
        };
        let mut failures = lock(&self.failures);
        if ok {
            failures.remove(initiator);
            CredentialCheck::Valid
        } else {
            *failures.entry(initiator.to_string()).or_insert(0) += 1;
            CredentialCheck::Invalid
        }
    }
}
