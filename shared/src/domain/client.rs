//! The API client (merchant integration) a request acts for: the JWT `sub`.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClientId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("subject must be 1-255 printable ASCII characters without '#'")]
pub struct InvalidClientId;

impl ClientId {
    pub fn parse(value: &str) -> Result<Self, InvalidClientId> {
        // '#' is our storage key separator; refusing it keeps keys unambiguous.
        let ok =
            !value.is_empty() && value.len() <= 255 && value.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b'#');
        if ok {
            Ok(ClientId(value.to_owned()))
        } else {
            Err(InvalidClientId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ClientId {
    type Error = InvalidClientId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        ClientId::parse(&value)
    }
}

impl From<ClientId> for String {
    fn from(c: ClientId) -> String {
        c.0
    }
}
