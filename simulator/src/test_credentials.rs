//! Public test credentials of the simulator. None of these are secrets: the sandbox values are
//! Safaricom's published ones and the RSA key pair under `testdata/` was generated for this
//! simulator and is committed on purpose. Never use them against a real Daraja host.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rsa::pkcs8::DecodePrivateKey;
use rsa::{Pkcs1v15Encrypt, RsaPrivateKey, RsaPublicKey};

/// Consumer key of the default app.
pub const CONSUMER_KEY: &str = "sim-consumer-key";
/// Consumer secret of the default app.
pub const CONSUMER_SECRET: &str = "sim-consumer-secret";
/// The public sandbox STK shortcode (paybill only).
pub const STK_SHORTCODE: &str = "174379";
/// The public sandbox passkey of [`STK_SHORTCODE`].
pub const STK_PASSKEY: &str = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919";
/// B2C PartyA shortcode.
pub const B2C_SHORTCODE: &str = "600992";
/// C2B paybill shortcode.
pub const C2B_SHORTCODE: &str = "600984";
/// The sandbox API initiator.
pub const INITIATOR_NAME: &str = "testapi";
/// The public sandbox initiator password.
pub const INITIATOR_PASSWORD: &str = "Safaricom999!*!";
/// Safaricom's public sandbox test number: its prompt is never answered (1037).
pub const SANDBOX_TEST_MSISDN: &str = "254708374149";

/// X.509 certificate to encrypt SecurityCredentials with, used exactly like Safaricom's
/// sandbox/production certificate. PUBLIC TEST MATERIAL.
pub const INITIATOR_CERT_PEM: &str = include_str!("../testdata/initiator-cert.pem");
/// The matching private key the simulator decrypts with. PUBLIC TEST KEY, NOT A SECRET.
pub const INITIATOR_KEY_PEM: &str = include_str!("../testdata/initiator-key.pem");

/// The simulator's private key, parsed.
pub fn private_key() -> RsaPrivateKey {
    // The embedded PEM is fixed and covered by tests, so failure here is a build defect.
    RsaPrivateKey::from_pkcs8_pem(INITIATOR_KEY_PEM).expect("embedded test key parses")
}

/// `base64(RSA-PKCS#1 v1.5(password))` under the test certificate's key: a valid
/// SecurityCredential for the simulator.
pub fn security_credential(password: &str) -> String {
    let public = RsaPublicKey::from(&private_key());
    let mut rng = rand::thread_rng();
    let encrypted = public
        .encrypt(&mut rng, Pkcs1v15Encrypt, password.as_bytes())
        .expect("a short password fits in one RSA-2048 block");
    STANDARD.encode(encrypted)
}

/// STK `Password`: `base64(shortcode + passkey + timestamp)`.
pub fn stk_password(shortcode: &str, passkey: &str, timestamp: &str) -> String {
    STANDARD.encode(format!("{shortcode}{passkey}{timestamp}"))
}
