//! Where the secret JSON comes from: Secrets Manager in AWS, an environment variable or a file
//! in the dev stack and tests. No error message here ever contains the secret's value.

use std::path::PathBuf;

use async_trait::async_trait;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::Client;

use super::{SecretSource, SecretsError};

/// The secret JSON in an environment variable (the dev stack; never production).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvSecret {
    pub var: String,
}

impl EnvSecret {
    pub fn new(var: impl Into<String>) -> EnvSecret {
        EnvSecret { var: var.into() }
    }
}

#[async_trait]
impl SecretSource for EnvSecret {
    async fn fetch(&self) -> Result<String, SecretsError> {
        match std::env::var(&self.var) {
            Ok(json) => Ok(json),
            Err(std::env::VarError::NotPresent) => Err(SecretsError::Unavailable(format!(
                "environment variable {} is not set",
                self.var
            ))),
            Err(std::env::VarError::NotUnicode(_)) => Err(SecretsError::Malformed(format!(
                "environment variable {} is not valid UTF-8",
                self.var
            ))),
        }
    }
}

/// The secret JSON in a file (e.g. a mounted secret in the dev stack).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSecret {
    pub path: PathBuf,
}

impl FileSecret {
    pub fn new(path: impl Into<PathBuf>) -> FileSecret {
        FileSecret { path: path.into() }
    }
}

#[async_trait]
impl SecretSource for FileSecret {
    async fn fetch(&self) -> Result<String, SecretsError> {
        let path = self.path.clone();
        let read = tokio::task::spawn_blocking(move || std::fs::read_to_string(path))
            .await
            .map_err(|e| SecretsError::Unavailable(format!("reading the secret file was interrupted: {e}")))?;
        // `io::Error`'s message names the failure (and we add the path), never the content.
        read.map_err(|error| match error.kind() {
            std::io::ErrorKind::InvalidData => {
                SecretsError::Malformed(format!("secret file {} is not valid UTF-8", self.path.display()))
            }
            _ => SecretsError::Unavailable(format!("cannot read secret file {}: {error}", self.path.display())),
        })
    }
}

/// One Secrets Manager secret, read as its `SecretString`.
#[derive(Debug, Clone)]
pub struct SecretsManagerSecret {
    client: Client,
    secret_id: String,
}

impl SecretsManagerSecret {
    pub fn new(client: Client, secret_id: impl Into<String>) -> SecretsManagerSecret {
        SecretsManagerSecret {
            client,
            secret_id: secret_id.into(),
        }
    }
}

#[async_trait]
impl SecretSource for SecretsManagerSecret {
    async fn fetch(&self) -> Result<String, SecretsError> {
        let output = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|error| {
                // Only the code and the service's message (which never carries the value).
                let detail = match &error {
                    SdkError::ServiceError(context) => format!(
                        "{}: {}",
                        context.err().code().unwrap_or("UnknownError"),
                        context.err().message().unwrap_or("")
                    ),
                    other => aws_sdk_secretsmanager::error::DisplayErrorContext(other).to_string(),
                };
                SecretsError::Unavailable(format!("GetSecretValue {}: {detail}", self.secret_id))
            })?;
        output.secret_string.ok_or_else(|| {
            SecretsError::Malformed(format!(
                "secret {} has no SecretString (binary secrets are not supported)",
                self.secret_id
            ))
        })
    }
}
