//! Secret sources: environment variable, file, and Secrets Manager on moto (`MOTO_ENDPOINT`).
//! Every failure is checked for never echoing the secret's value.

mod support;

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_secretsmanager::primitives::Blob;
use checkout::secrets::sources::{EnvSecret, FileSecret, SecretsManagerSecret};
use checkout::secrets::{AppSecrets, SecretCache, SecretPart, SecretSource, SecretsError};

const SECRET_VALUE: &str = "super-secret-passkey-value";

fn sample_json() -> String {
    serde_json::json!({
        "daraja_consumer_key": "consumer-key", "daraja_consumer_secret": "consumer-secret",
        "stk_shortcode": "174379", "stk_passkey": SECRET_VALUE,
        "callback_hmac_key": "h".repeat(32),
    })
    .to_string()
}

fn assert_no_value(error: &SecretsError) {
    let text = format!("{error} {error:?}");
    assert!(
        !text.contains(SECRET_VALUE) && !text.contains("consumer-secret"),
        "error leaks the secret: {text}"
    );
}

#[tokio::test]
async fn env_secret_reads_the_variable() {
    let var = format!("CHECKOUT_TEST_SECRET_{}", std::process::id());
    std::env::set_var(&var, sample_json());
    let source = EnvSecret::new(&var);
    assert_eq!(source.fetch().await.unwrap(), sample_json());
    let cache = SecretCache::new(Arc::new(source), Duration::from_secs(60));
    assert_eq!(
        cache.get().await.unwrap().daraja_app().unwrap().stk_passkey.expose(),
        SECRET_VALUE
    );
    std::env::remove_var(&var);
}

#[tokio::test]
async fn env_secret_missing_is_unavailable_and_names_the_variable() {
    let error = EnvSecret::new("CHECKOUT_TEST_SECRET_THAT_IS_NOT_SET")
        .fetch()
        .await
        .unwrap_err();
    assert!(matches!(&error, SecretsError::Unavailable(m) if m.contains("CHECKOUT_TEST_SECRET_THAT_IS_NOT_SET")));
}

#[tokio::test]
async fn file_secret_reads_the_file() {
    let path = std::env::temp_dir().join(support::unique("secret"));
    std::fs::write(&path, sample_json()).unwrap();
    let source = FileSecret::new(&path);
    assert_eq!(source.fetch().await.unwrap(), sample_json());
    assert!(AppSecrets::parse(&source.fetch().await.unwrap()).is_ok());
    std::fs::remove_file(&path).unwrap();
    let missing = source.fetch().await.unwrap_err();
    assert!(matches!(&missing, SecretsError::Unavailable(m) if m.contains(&path.display().to_string())));
}

#[tokio::test]
async fn file_secret_that_is_not_utf8_is_malformed_without_its_content() {
    let path = std::env::temp_dir().join(support::unique("secret-binary"));
    let mut bytes = SECRET_VALUE.as_bytes().to_vec();
    bytes.extend_from_slice(&[0xff, 0xfe, 0x00]);
    std::fs::write(&path, &bytes).unwrap();
    let error = FileSecret::new(&path).fetch().await.unwrap_err();
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(error, SecretsError::Malformed(_)), "{error:?}");
    assert_no_value(&error);
}

#[tokio::test]
async fn secrets_manager_returns_the_secret_string() {
    let client = support::secrets_client().await;
    let name = support::unique("checkout/test");
    client
        .create_secret()
        .name(&name)
        .secret_string(sample_json())
        .send()
        .await
        .unwrap();
    let source = SecretsManagerSecret::new(client.clone(), &name);
    assert_eq!(source.fetch().await.unwrap(), sample_json());
    let cache = SecretCache::new(Arc::new(source), Duration::from_secs(60));
    let secrets = cache.get().await.unwrap();
    assert_eq!(secrets.daraja_app().unwrap().stk_shortcode, "174379");
    assert!(!format!("{secrets:?}").contains(SECRET_VALUE));

    // A rotation is seen after the cache is invalidated.
    let rotated = sample_json().replace("174379", "600000");
    client
        .put_secret_value()
        .secret_id(&name)
        .secret_string(rotated)
        .send()
        .await
        .unwrap();
    cache.invalidate().await;
    assert_eq!(cache.get().await.unwrap().daraja_app().unwrap().stk_shortcode, "600000");
}

/// Deployed, each concern is its own secret: the view holds the parts read, nothing else.
#[tokio::test]
async fn secrets_manager_split_secrets_make_one_view() {
    let client = support::secrets_client().await;
    let app = support::unique("checkout/daraja-app");
    let keys = support::unique("checkout/callback-keys");
    let app_json = serde_json::json!({
        "daraja_consumer_key": "consumer-key", "daraja_consumer_secret": "consumer-secret",
        "stk_shortcode": "174379", "stk_passkey": SECRET_VALUE,
    });
    let keys_json = serde_json::json!({"callback_hmac_key": "h".repeat(32)});
    for (name, json) in [(&app, &app_json), (&keys, &keys_json)] {
        client
            .create_secret()
            .name(name)
            .secret_string(json.to_string())
            .send()
            .await
            .unwrap();
    }
    let source = |name: &str| Arc::new(SecretsManagerSecret::new(client.clone(), name)) as Arc<dyn SecretSource>;
    let cache = SecretCache::split(
        vec![
            (SecretPart::DarajaApp, source(&app)),
            (SecretPart::CallbackKeys, source(&keys)),
        ],
        Duration::from_secs(60),
    );
    let view = cache.get().await.unwrap();
    assert_eq!(view.daraja_app().unwrap().stk_passkey.expose(), SECRET_VALUE);
    assert!(view.callback_hmac_key.is_some() && view.jwt_hs256_secret.is_none());
    // A secret holding another concern's field is refused, naming fields only.
    let mixed = support::unique("checkout/mixed");
    let mut wrong = app_json.clone();
    wrong["callback_hmac_key"] = "h".repeat(32).into();
    client
        .create_secret()
        .name(&mixed)
        .secret_string(wrong.to_string())
        .send()
        .await
        .unwrap();
    let error = SecretCache::split(vec![(SecretPart::DarajaApp, source(&mixed))], Duration::from_secs(60))
        .get()
        .await
        .unwrap_err();
    assert!(
        matches!(&error, SecretsError::Malformed(m) if m.contains("callback-keys")),
        "{error}"
    );
    assert_no_value(&error);
}

#[tokio::test]
async fn secrets_manager_missing_secret_is_unavailable() {
    let client = support::secrets_client().await;
    let name = support::unique("checkout/missing");
    let error = SecretsManagerSecret::new(client, &name).fetch().await.unwrap_err();
    assert!(
        matches!(&error, SecretsError::Unavailable(m) if m.contains(&name) && m.contains("ResourceNotFound")),
        "{error:?}"
    );
}

#[tokio::test]
async fn secrets_manager_binary_secret_is_malformed_without_its_value() {
    let client = support::secrets_client().await;
    let name = support::unique("checkout/binary");
    client
        .create_secret()
        .name(&name)
        .secret_binary(Blob::new(SECRET_VALUE.as_bytes()))
        .send()
        .await
        .unwrap();
    let error = SecretsManagerSecret::new(client, &name).fetch().await.unwrap_err();
    assert!(matches!(error, SecretsError::Malformed(_)), "{error:?}");
    assert_no_value(&error);
}
