//! The B2C / Transaction Status `SecurityCredential`, computed inside the function from the
//! initiator password (Secrets Manager) and Safaricom's certificate (configuration), and cached
//! in the warm process per password. The clear password is never stored, logged or returned;
//! the cache is keyed by a digest of it so a rotated password is picked up at once.

use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::daraja::{encrypt_security_credential, CredentialError};
use crate::secrets::Secret;

pub struct SecurityCredentials {
    certificate_pem: String,
    cached: Mutex<Option<([u8; 32], Secret)>>,
}

impl SecurityCredentials {
    /// `certificate_pem`: Safaricom's sandbox or production certificate, or the simulator's test one.
    pub fn new(certificate_pem: impl Into<String>) -> SecurityCredentials {
        SecurityCredentials {
            certificate_pem: certificate_pem.into(),
            cached: Mutex::new(None),
        }
    }

    /// The encrypted credential for `password` (RSA PKCS#1 v1.5, base64), encrypted once per password.
    pub fn for_password(&self, password: &Secret) -> Result<Secret, CredentialError> {
        let digest: [u8; 32] = Sha256::digest(password.expose().as_bytes()).into();
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((for_digest, credential)) = cached.as_ref() {
            if *for_digest == digest {
                return Ok(credential.clone());
            }
        }
        let credential = Secret::new(encrypt_security_credential(password, &self.certificate_pem)?);
        *cached = Some((digest, credential.clone()));
        Ok(credential)
    }
}

impl std::fmt::Debug for SecurityCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecurityCredentials(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::{Pkcs1v15Encrypt, RsaPrivateKey};

    const CERT: &str = include_str!("../../../../simulator/testdata/initiator-cert.pem");
    const KEY: &str = include_str!("../../../../simulator/testdata/initiator-key.pem");

    fn decrypt(credential: &Secret) -> String {
        let key = RsaPrivateKey::from_pkcs8_pem(KEY).unwrap();
        let bytes = STANDARD.decode(credential.expose()).unwrap();
        String::from_utf8(key.decrypt(Pkcs1v15Encrypt, &bytes).unwrap()).unwrap()
    }

    #[test]
    fn encrypts_once_per_password_and_follows_a_rotation() {
        let credentials = SecurityCredentials::new(CERT);
        let first = credentials.for_password(&Secret::new("Safaricom999!*!")).unwrap();
        assert_eq!(decrypt(&first), "Safaricom999!*!");
        // Cached: the same (randomly padded) ciphertext comes back.
        assert_eq!(
            credentials.for_password(&Secret::new("Safaricom999!*!")).unwrap(),
            first
        );
        let rotated = credentials.for_password(&Secret::new("new-password")).unwrap();
        assert_eq!(decrypt(&rotated), "new-password");
        assert!(!format!("{credentials:?}").contains("Safaricom"));
    }

    #[test]
    fn a_bad_certificate_is_an_error_not_a_panic() {
        let credentials = SecurityCredentials::new("not a certificate");
        assert_eq!(
            credentials.for_password(&Secret::new("x")),
            Err(CredentialError::InvalidCertificate)
        );
    }
}
