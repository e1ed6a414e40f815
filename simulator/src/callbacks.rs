//! Outgoing callbacks: one shared HTTP client, callback faults (drop, duplicate, delay, reorder)
//! and a ground-truth record of every attempt.

use axum::http::{header, HeaderName, HeaderValue};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

use crate::clock;
use crate::faults::{FaultKind, FaultTarget};
use crate::ground_truth::{AttemptState, CallbackAttempt, TxRef};
use crate::state::SimState;
use crate::sync::lock;

/// Responses longer than this are cut in ground truth.
const MAX_RESPONSE_BODY: usize = 8 * 1024;

pub struct Dispatcher {
    client: reqwest::Client,
    /// Callbacks held back by a `reorder` fault, released when a later one of the kind is sent.
    held: Mutex<HashMap<FaultTarget, Vec<oneshot::Sender<()>>>>,
}

/// One callback to deliver.
pub struct Job {
    pub kind: FaultTarget,
    pub tx: TxRef,
    pub url: String,
    pub body: Value,
    pub delay: Duration,
}

/// The receiver's answer.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Dispatcher {
    pub fn new() -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            // Callbacks go to loopback receivers in tests: never through an environment proxy.
            .no_proxy()
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(64)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Dispatcher {
            client,
            held: Mutex::new(HashMap::new()),
        })
    }

    fn release(&self, kind: FaultTarget) {
        let waiting = lock(&self.held).remove(&kind).unwrap_or_default();
        for w in waiting {
            let _ = w.send(());
        }
    }

    pub fn reset(&self) {
        let all: Vec<_> = lock(&self.held).drain().flat_map(|(_, v)| v).collect();
        for w in all {
            let _ = w.send(());
        }
    }
}

/// Delivers `job` in the background.
pub fn spawn(state: &Arc<SimState>, job: Job) {
    let state = state.clone();
    tokio::spawn(async move {
        deliver(&state, job, None).await;
    });
}

/// Delivers `job` applying the callback faults of its kind and returns the receiver's answer to
/// the first delivery (`None` when dropped, failed or timed out).
pub async fn deliver(state: &Arc<SimState>, job: Job, timeout: Option<Duration>) -> Option<Reply> {
    let cfg = state.config();
    let mut drop = false;
    let mut duplicate_gap = None;
    let mut extra_delay = 0u64;
    let mut reorder = false;
    let mut names = Vec::new();
    for f in state.faults.evaluate(job.kind, Some(job.tx.seq())) {
        match f.kind {
            FaultKind::Drop => drop = true,
            FaultKind::Duplicate => duplicate_gap = Some(f.delay_ms.unwrap_or(cfg.duplicate_gap_ms)),
            FaultKind::Delay => extra_delay += f.delay_ms.unwrap_or(1_000),
            FaultKind::Reorder => reorder = true,
            _ => continue,
        }
        names.push(f.kind.name());
    }
    let source = source_header(&cfg.callback_source_header, &cfg.callback_source_ip);
    let attempt = CallbackAttempt {
        kind: job.kind,
        url: job.url.clone(),
        body: job.body.clone(),
        state: if drop {
            AttemptState::Dropped
        } else {
            AttemptState::Scheduled
        },
        scheduled_at: clock::rfc3339(&clock::now()),
        sent_at: None,
        finished_at: None,
        http_status: None,
        error: None,
        response_body: None,
        duplicate: false,
        faults: names,
        source_header: source
            .as_ref()
            .map(|_| format!("{}: {}", cfg.callback_source_header, cfg.callback_source_ip)),
    };
    let first = state.store.add_attempt(job.tx, attempt.clone())?;
    if drop {
        return None;
    }
    let wait = job.delay + Duration::from_millis(extra_delay);
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    if reorder {
        let (tx, rx) = oneshot::channel();
        lock(&state.dispatcher.held).entry(job.kind).or_default().push(tx);
        let hold = Duration::from_millis(cfg.reorder_max_hold_ms);
        let _ = tokio::time::timeout(hold, rx).await;
    }
    let timeout = timeout.unwrap_or(cfg.callback_timeout());
    let reply = post(state, &job, first, &source, timeout).await;
    if !reorder {
        state.dispatcher.release(job.kind);
    }
    if let Some(gap) = duplicate_gap {
        tokio::time::sleep(Duration::from_millis(gap)).await;
        let second = CallbackAttempt {
            duplicate: true,
            scheduled_at: clock::rfc3339(&clock::now()),
            ..attempt
        };
        if let Some(i) = state.store.add_attempt(job.tx, second) {
            post(state, &job, i, &source, timeout).await;
        }
    }
    reply
}

fn source_header(name: &str, value: &str) -> Option<(HeaderName, HeaderValue)> {
    if name.is_empty() {
        return None;
    }
    Some((
        HeaderName::from_bytes(name.as_bytes()).ok()?,
        HeaderValue::from_str(value).ok()?,
    ))
}

async fn post(
    state: &Arc<SimState>,
    job: &Job,
    attempt: usize,
    source: &Option<(HeaderName, HeaderValue)>,
    timeout: Duration,
) -> Option<Reply> {
    if !state.store.is_current(job.tx) {
        return None;
    }
    let body = serde_json::to_vec(&job.body).unwrap_or_default();
    let mut req = state
        .dispatcher
        .client
        .post(&job.url)
        .header(header::CONTENT_TYPE, "application/json")
        .timeout(timeout)
        .body(body);
    if let Some((n, v)) = source {
        req = req.header(n.clone(), v.clone());
    }
    state
        .store
        .update_attempt(job.tx, attempt, |a| a.sent_at = Some(clock::rfc3339(&clock::now())));
    let result = match req.send().await {
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            let mut bytes = Vec::new();
            let mut read_error = None;
            loop {
                match resp.chunk().await {
                    Ok(Some(c)) => {
                        let room = MAX_RESPONSE_BODY.saturating_sub(bytes.len());
                        bytes.extend_from_slice(&c[..c.len().min(room)]);
                        if room < c.len() {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        read_error = Some(describe(&e));
                        break;
                    }
                }
            }
            match read_error {
                Some(e) => Err((Some(status), e)),
                None => Ok(Reply {
                    status,
                    body: String::from_utf8_lossy(&bytes).into_owned(),
                }),
            }
        }
        Err(e) => Err((None, describe(&e))),
    };
    let finished = clock::rfc3339(&clock::now());
    match result {
        Ok(reply) => {
            let ok = (200..300).contains(&reply.status);
            state.store.update_attempt(job.tx, attempt, |a| {
                a.finished_at = Some(finished);
                a.http_status = Some(reply.status);
                a.response_body = Some(reply.body.clone());
                a.state = if ok {
                    AttemptState::Delivered
                } else {
                    AttemptState::Failed
                };
            });
            tracing::debug!(kind = ?job.kind, status = reply.status, "callback delivered");
            Some(reply)
        }
        Err((status, error)) => {
            state.store.update_attempt(job.tx, attempt, |a| {
                a.finished_at = Some(finished);
                a.http_status = status;
                a.error = Some(error.clone());
                a.state = AttemptState::Failed;
            });
            tracing::debug!(kind = ?job.kind, %error, "callback failed");
            None
        }
    }
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        format!("connect: {e}")
    } else {
        e.to_string()
    }
}
