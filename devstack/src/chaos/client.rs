//! The merchant's side of the run: our API over HTTP, every answer counted per route (5xx answers
//! by status and problem `code`), and creations retried with the same Idempotency-Key the way a
//! careful merchant retries (a dead dev stack, a 5xx, a request still in progress).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

/// One HTTP answer (or none).
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    /// `None`: no HTTP answer (connection refused or reset, timeout).
    pub status: Option<u16>,
    pub body: Value,
    pub replayed: bool,
}

impl Answer {
    pub fn code(&self) -> Option<&str> {
        self.body["code"].as_str()
    }

    pub fn is_success(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    pub fn is_5xx(&self) -> bool {
        self.status.is_some_and(|s| s >= 500)
    }

    /// The id of the resource the answer names: `id`, or a problem's `payment_id`/`payout_id`.
    pub fn resource_id(&self) -> Option<String> {
        ["id", "payment_id", "payout_id"]
            .iter()
            .find_map(|f| self.body[*f].as_str())
            .map(str::to_owned)
    }
}

/// Answers of one route.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RouteStats {
    pub requests: u64,
    pub transport_errors: u64,
    /// 5xx answers by `status code` (replays of a stored 5xx are counted in `replayed_5xx`).
    pub server_errors: BTreeMap<String, u64>,
    pub replayed_5xx: u64,
    pub statuses: BTreeMap<u16, u64>,
}

impl RouteStats {
    pub fn five_xx(&self) -> u64 {
        self.server_errors.values().sum()
    }
}

#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base_url: Arc<Mutex<String>>,
    pub token: String,
    pub approver_token: String,
    stats: Arc<Mutex<BTreeMap<&'static str, RouteStats>>>,
}

/// How long a merchant keeps retrying one creation: past the 60 s an in-progress idempotency
/// record of a request cut by a crash blocks its key, so the retry gets the stored outcome.
const RETRY_FOR: Duration = Duration::from_secs(75);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Api {
    pub fn new(base_url: &str, token: String, approver_token: String) -> reqwest::Result<Api> {
        Ok(Api {
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(256)
                .timeout(Duration::from_secs(30))
                .build()?,
            base_url: Arc::new(Mutex::new(base_url.to_owned())),
            token,
            approver_token,
            stats: Arc::default(),
        })
    }

    pub fn base_url(&self) -> String {
        lock(&self.base_url).clone()
    }

    pub fn stats(&self) -> BTreeMap<&'static str, RouteStats> {
        lock(&self.stats).clone()
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    fn record(&self, route: &'static str, answer: &Answer) {
        let mut stats = lock(&self.stats);
        let s = stats.entry(route).or_default();
        s.requests += 1;
        match answer.status {
            None => s.transport_errors += 1,
            Some(status) => {
                *s.statuses.entry(status).or_default() += 1;
                if status >= 500 {
                    if answer.replayed {
                        s.replayed_5xx += 1;
                    } else {
                        let code = answer.code().unwrap_or("-");
                        *s.server_errors.entry(format!("{status} {code}")).or_default() += 1;
                    }
                }
            }
        }
    }

    /// Sends one request built by `build` on the current base URL; counts its answer.
    pub async fn send(
        &self,
        route: &'static str,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Answer {
        let request = build(&self.http, &self.base_url());
        let answer = match request.send().await {
            Err(_) => Answer {
                status: None,
                body: Value::Null,
                replayed: false,
            },
            Ok(response) => {
                let status = response.status().as_u16();
                let replayed = response
                    .headers()
                    .get("idempotent-replayed")
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
                let bytes = response.bytes().await.unwrap_or_default();
                let body = serde_json::from_slice(&bytes)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
                Answer {
                    status: Some(status),
                    body,
                    replayed,
                }
            }
        };
        self.record(route, &answer);
        answer
    }

    /// A creation (`POST` with an Idempotency-Key), retried with the same key while there is no
    /// answer, the answer is a fresh 5xx, or the first request is still in progress. Returns
    /// every answer, the last one deciding.
    pub async fn create(&self, route: &'static str, path: &str, key: &str, body: &Value) -> Vec<Answer> {
        let started = tokio::time::Instant::now();
        let mut answers = Vec::new();
        let mut pause = Duration::from_millis(250);
        loop {
            let answer = self
                .send(route, |http, base| {
                    http.post(format!("{base}{path}"))
                        .bearer_auth(&self.token)
                        .header("idempotency-key", key)
                        .json(body)
                })
                .await;
            let again = match answer.status {
                None => true,
                // A stored 5xx replays forever: asking again changes nothing.
                Some(s) if s >= 500 => !answer.replayed,
                Some(409) => answer.code() == Some("request_in_progress"),
                _ => false,
            };
            answers.push(answer);
            if !again || started.elapsed() > RETRY_FOR {
                return answers;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(4));
        }
    }

    /// `POST` without a body as the approver (approve / reject), retried while there is no answer.
    pub async fn review(&self, route: &'static str, path: &str) -> Answer {
        let started = tokio::time::Instant::now();
        loop {
            let answer = self
                .send(route, |http, base| {
                    http.post(format!("{base}{path}")).bearer_auth(&self.approver_token)
                })
                .await;
            if answer.status.is_some() || started.elapsed() > RETRY_FOR {
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// `GET` as the merchant, retried while there is no answer (a restarting stack).
    pub async fn get(&self, route: &'static str, path: &str) -> Answer {
        let started = tokio::time::Instant::now();
        loop {
            let answer = self
                .send(route, |http, base| {
                    http.get(format!("{base}{path}")).bearer_auth(&self.token)
                })
                .await;
            if answer.status.is_some() || started.elapsed() > RETRY_FOR {
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Every item of a paged listing (`data`, `next_cursor`). `Err` carries the answer that
    /// stopped it (e.g. a 422 for a filter value this version does not know).
    pub async fn list_all(&self, route: &'static str, path: &str) -> Result<Vec<Value>, Answer> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        let sep = if path.contains('?') { '&' } else { '?' };
        loop {
            let page_path = match &cursor {
                None => format!("{path}{sep}limit=100"),
                Some(c) => format!("{path}{sep}limit=100&cursor={}", urlencode(c)),
            };
            let answer = self.get(route, &page_path).await;
            if answer.status != Some(200) {
                return Err(answer);
            }
            if let Some(data) = answer.body["data"].as_array() {
                items.extend(data.iter().cloned());
            }
            match answer.body["next_cursor"].as_str() {
                Some(next) if !next.is_empty() => cursor = Some(next.to_owned()),
                _ => return Ok(items),
            }
        }
    }
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_names_its_resource_from_the_body_or_the_problem() {
        let ok = Answer {
            status: Some(202),
            body: serde_json::json!({"id": "pay_1"}),
            replayed: false,
        };
        let problem = Answer {
            status: Some(503),
            body: serde_json::json!({"code": "daraja_unavailable", "payment_id": "pay_2"}),
            replayed: false,
        };
        assert_eq!(ok.resource_id().as_deref(), Some("pay_1"));
        assert_eq!(problem.resource_id().as_deref(), Some("pay_2"));
        assert!(problem.is_5xx() && !problem.is_success() && ok.is_success());
        assert_eq!(problem.code(), Some("daraja_unavailable"));
    }
}
