//! A transport-neutral HTTP request and response, so one handler serves API Gateway (through
//! `lambda_http`) and the dev stack (through axum) with the same code.

use std::collections::HashMap;
use std::net::IpAddr;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use super::problem::{ApiError, FieldError};

#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub method: Method,
    pub path: String,
    pub path_params: HashMap<String, String>,
    /// Query parameters in order; a repeated name is kept twice (and refused by handlers).
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The caller's address as the gateway saw it (never a raw `X-Forwarded-For`).
    pub source_ip: Option<IpAddr>,
    pub request_id: String,
}

impl ApiRequest {
    pub fn new(method: Method, path: impl Into<String>) -> ApiRequest {
        ApiRequest {
            method,
            path: path.into(),
            path_params: HashMap::new(),
            query: Vec::new(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
            source_ip: None,
            request_id: ulid::Ulid::new().to_string(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn path_param(&self, name: &str) -> Option<&str> {
        self.path_params.get(name).map(String::as_str)
    }

    /// The single value of a query parameter; repeating it is an error, not a silent choice.
    pub fn query_param(&self, name: &str) -> Result<Option<&str>, ApiError> {
        let mut values = self.query.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let first = values.next();
        if values.next().is_some() {
            return Err(ApiError::Validation(vec![FieldError::new(
                name,
                "repeated",
                "give this parameter once",
            )]));
        }
        Ok(first)
    }

    /// Refuses query parameters the endpoint does not know.
    pub fn only_query_params(&self, known: &[&str]) -> Result<(), ApiError> {
        let unknown: Vec<FieldError> = self
            .query
            .iter()
            .filter(|(k, _)| !known.contains(&k.as_str()))
            .map(|(k, _)| FieldError::new(k, "unknown_parameter", "this query parameter is not supported"))
            .collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(unknown))
        }
    }

    /// The body as a JSON object whose values are kept as raw text (so `1500` and `1500.0` stay
    /// distinguishable). Checks content type and size first.
    pub fn json_object(&self, max_bytes: usize) -> Result<JsonObject, ApiError> {
        if self.body.len() > max_bytes {
            return Err(ApiError::PayloadTooLarge { max_bytes });
        }
        let content_type = self.header("content-type").unwrap_or("");
        let media_type = content_type.split(';').next().unwrap_or("").trim();
        if !media_type.eq_ignore_ascii_case("application/json") {
            return Err(ApiError::UnsupportedMediaType);
        }
        let fields: serde_json::Map<String, serde_json::Value> =
            match serde_json::from_slice::<serde_json::Value>(&self.body) {
                Ok(serde_json::Value::Object(map)) => map,
                Ok(_) => return Err(ApiError::MalformedJson("the body must be a JSON object".into())),
                Err(e) => {
                    return Err(ApiError::MalformedJson(format!(
                        "the body is not valid JSON (line {}, column {})",
                        e.line(),
                        e.column()
                    )))
                }
            };
        let raw: HashMap<String, Box<RawValue>> = serde_json::from_slice(&self.body)
            .map_err(|_| ApiError::MalformedJson("the body must be a JSON object".into()))?;
        Ok(JsonObject { values: fields, raw })
    }
}

/// A parsed JSON object body with both typed values and raw literal text per field.
#[derive(Debug)]
pub struct JsonObject {
    pub values: serde_json::Map<String, serde_json::Value>,
    raw: HashMap<String, Box<RawValue>>,
}

impl JsonObject {
    pub fn get(&self, field: &str) -> Option<&serde_json::Value> {
        self.values.get(field).filter(|v| !v.is_null())
    }

    /// The literal JSON text of a field, e.g. `1500.0` exactly as sent.
    pub fn raw(&self, field: &str) -> Option<&str> {
        self.raw.get(field).map(|r| r.get())
    }

    /// A field holding a JSON object, parsed like a body (typed values and raw literals):
    /// `None` when absent or null, `Some(Err(()))` when it is not an object.
    pub fn object(&self, field: &str) -> Option<Result<JsonObject, ()>> {
        self.get(field)?;
        let raw = self.raw(field)?;
        let values = match serde_json::from_str::<serde_json::Value>(raw) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => return Some(Err(())),
        };
        let raw = serde_json::from_str::<HashMap<String, Box<RawValue>>>(raw).map_err(|_| ());
        Some(raw.map(|raw| JsonObject { values, raw }))
    }

    pub fn unknown_fields(&self, known: &[&str]) -> Vec<FieldError> {
        let mut unknown: Vec<&String> = self.values.keys().filter(|k| !known.contains(&k.as_str())).collect();
        unknown.sort();
        unknown
            .into_iter()
            .map(|k| FieldError::new(k, "unknown_field", "this field is not part of the request"))
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl ApiResponse {
    pub fn json(status: StatusCode, body: &impl serde::Serialize) -> ApiResponse {
        let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
        ApiResponse::raw_json(status, bytes.into())
    }

    pub fn raw_json(status: StatusCode, body: Bytes) -> ApiResponse {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        ApiResponse { status, headers, body }
    }

    pub fn with_header(mut self, name: &'static str, value: &str) -> ApiResponse {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.insert(name, v);
        }
        self
    }

    pub fn with_status(mut self, status: StatusCode) -> ApiResponse {
        self.status = status;
        self
    }

    pub fn body_json<T: DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_slice(&self.body).ok()
    }
}
