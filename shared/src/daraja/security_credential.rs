//! B2C / Transaction Status `SecurityCredential`: base64 of the initiator password encrypted
//! with RSA PKCS#1 v1.5 (not OAEP) under the public key of Safaricom's X.509 certificate.
//! Sandbox and production have different certificates. Pure Rust, no OpenSSL.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Encrypt, RsaPublicKey};
use x509_cert::der::{DecodePem, Encode};
use x509_cert::Certificate;

use crate::secrets::Secret;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("the certificate is not a PEM X.509 certificate")]
    InvalidCertificate,
    #[error("the certificate's public key is not an RSA key")]
    NotRsa,
    #[error("the initiator password could not be encrypted (too long for the key?)")]
    Encryption,
}

/// Encrypts the initiator password for Daraja. The result differs on every call (PKCS#1 v1.5
/// padding is random); Daraja accepts any of them.
pub fn encrypt_security_credential(
    initiator_password: &Secret,
    certificate_pem: &str,
) -> Result<String, CredentialError> {
    let key = public_key_from_certificate(certificate_pem)?;
    let mut rng = rand::rngs::OsRng;
    let encrypted = key
        .encrypt(&mut rng, Pkcs1v15Encrypt, initiator_password.expose().as_bytes())
        .map_err(|_| CredentialError::Encryption)?;
    Ok(STANDARD.encode(encrypted))
}

fn public_key_from_certificate(certificate_pem: &str) -> Result<RsaPublicKey, CredentialError> {
    let certificate =
        Certificate::from_pem(certificate_pem.trim().as_bytes()).map_err(|_| CredentialError::InvalidCertificate)?;
    let spki = certificate
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|_| CredentialError::InvalidCertificate)?;
    RsaPublicKey::from_public_key_der(&spki).map_err(|_| CredentialError::NotRsa)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::RsaPrivateKey;

    const CERT: &str = include_str!("../../../simulator/testdata/initiator-cert.pem");
    const KEY: &str = include_str!("../../../simulator/testdata/initiator-key.pem");

    #[test]
    fn decrypts_back_to_the_password_with_the_simulators_key() {
        let password = Secret::new("Safaricom999!*!");
        let encrypted = encrypt_security_credential(&password, CERT).unwrap();
        let bytes = STANDARD.decode(&encrypted).unwrap();
        let key = RsaPrivateKey::from_pkcs8_pem(KEY).unwrap();
        assert_eq!(bytes.len(), 256, "2048-bit key");
        let plain = key.decrypt(Pkcs1v15Encrypt, &bytes).unwrap();
        assert_eq!(plain, password.expose().as_bytes());
        // Random padding: two encryptions differ.
        assert_ne!(encrypted, encrypt_security_credential(&password, CERT).unwrap());
    }

    #[test]
    fn refuses_what_is_not_an_rsa_certificate() {
        let password = Secret::new("x");
        assert_eq!(
            encrypt_security_credential(&password, "not a pem"),
            Err(CredentialError::InvalidCertificate)
        );
        assert_eq!(
            encrypt_security_credential(&password, KEY),
            Err(CredentialError::InvalidCertificate)
        );
        let too_long = Secret::new("x".repeat(300));
        assert_eq!(
            encrypt_security_credential(&too_long, CERT),
            Err(CredentialError::Encryption)
        );
    }
}
