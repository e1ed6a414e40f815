//! What the load tools share: an open-loop and a closed-loop request driver, their latency
//! report, dev tokens, and polling resources until they settle.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::Value;

/// One request's outcome.
#[derive(Debug, Clone)]
pub enum Reply {
    /// An HTTP answer with its body, when it was JSON.
    Answered { status: u16, body: Option<Value> },
    /// No HTTP answer (connection refused, reset, timed out).
    Failed,
}

pub struct Sent {
    /// Microseconds from each request's *scheduled* start to its answer.
    pub latencies: Histogram<u64>,
    pub replies: Vec<Reply>,
    pub sent_for: Duration,
}

/// Sends `count` requests at `rate` per second, open loop: request `n` is scheduled at
/// `start + n / rate` whatever happened to the earlier ones, and its latency is measured from that
/// scheduled instant, so a stalled server cannot hide queueing (no coordinated omission).
pub async fn open_loop(count: u64, rate: u64, make: impl Fn(u64) -> reqwest::RequestBuilder) -> Sent {
    let interval = Duration::from_nanos(1_000_000_000 / rate.max(1));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(count as usize);
    for n in 0..count {
        let scheduled = started + interval * n as u32;
        tokio::time::sleep_until(scheduled.into()).await;
        let request = make(n);
        tasks.push(tokio::spawn(async move {
            let reply = answer(request.send().await).await;
            (scheduled.elapsed(), reply)
        }));
    }
    // Bounds cover 1 µs to 60 s with 3 significant digits; they are constants, so this cannot fail.
    let mut latencies = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap_or_else(|_| unreachable!());
    let mut replies = Vec::with_capacity(count as usize);
    for task in tasks {
        if let Ok((elapsed, reply)) = task.await {
            latencies.saturating_record(elapsed.as_micros().max(1) as u64);
            replies.push(reply);
        }
    }
    Sent {
        latencies,
        replies,
        sent_for: started.elapsed(),
    }
}

/// Sends `count` requests from `concurrency` workers, closed loop: each worker sends its next
/// request as soon as its previous one is answered, so exactly `concurrency` requests are in
/// flight until the last ones. Measures what the server sustains at that concurrency (requests
/// per second over `sent_for`); latency is from each request's send to its answer.
pub async fn closed_loop(
    count: u64,
    concurrency: u64,
    make: impl Fn(u64) -> reqwest::RequestBuilder + Send + Sync + 'static,
) -> Sent {
    let make = std::sync::Arc::new(make);
    let next = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let (make, next) = (make.clone(), next.clone());
            tokio::spawn(async move {
                let mut done = Vec::new();
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if n >= count {
                        return done;
                    }
                    let sent_at = Instant::now();
                    let reply = answer(make(n).send().await).await;
                    done.push((sent_at.elapsed(), reply));
                }
            })
        })
        .collect();
    let mut latencies = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap_or_else(|_| unreachable!());
    let mut replies = Vec::with_capacity(count as usize);
    for worker in workers {
        for (elapsed, reply) in worker.await.unwrap_or_default() {
            latencies.saturating_record(elapsed.as_micros().max(1) as u64);
            replies.push(reply);
        }
    }
    Sent {
        latencies,
        replies,
        sent_for: started.elapsed(),
    }
}

async fn answer(result: reqwest::Result<reqwest::Response>) -> Reply {
    match result {
        Ok(response) => {
            let status = response.status().as_u16();
            Reply::Answered {
                status,
                body: response.json::<Value>().await.ok(),
            }
        }
        Err(_) => Reply::Failed,
    }
}

/// `p50 … max` in milliseconds, on one line.
pub fn print_latency(label: &str, h: &Histogram<u64>) {
    let ms = |v: u64| v as f64 / 1000.0;
    println!(
        "{label} latency (ms): p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
        ms(h.value_at_quantile(0.50)),
        ms(h.value_at_quantile(0.90)),
        ms(h.value_at_quantile(0.99)),
        ms(h.value_at_quantile(0.999)),
        ms(h.max())
    );
}

/// The `n`th request of a payment load run: KES 10 to its own phone (`2547` + 8 digits counted
/// from `phone_base`), its own idempotency key (`<key_prefix>-<n>`).
pub fn payment_maker(
    client: reqwest::Client,
    target: String,
    token: String,
    key_prefix: String,
    phone_base: u64,
) -> impl Fn(u64) -> reqwest::RequestBuilder {
    move |n: u64| {
        let phone = format!("2547{:08}", (phone_base + n) % 100_000_000);
        client
            .post(format!("{target}/v1/payments"))
            .bearer_auth(&token)
            .header("idempotency-key", format!("{key_prefix}-{n}"))
            .json(&serde_json::json!({"amount": 10, "phone": phone, "reference": "LOAD"}))
    }
}

/// A one-hour dev token signed with the stack's `--jwt-secret`.
pub fn dev_token(jwt_secret: &str, subject: &str, scope: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    checkout::auth::jwt::mint_hs256(
        &checkout::secrets::Secret::new(jwt_secret),
        &serde_json::json!({"sub": subject, "scope": scope, "iat": now, "exp": now + 3600}),
    )
}

/// An HTTP client with a connection pool large enough for the offered load.
pub fn client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder().pool_max_idle_per_host(1024).build()
}

/// Reads `url_of(id)` for every id until `settled` holds for it or `timeout` passes. Returns
/// the last view of each settled resource and the ids still open.
pub async fn poll_until_settled(
    client: &reqwest::Client,
    token: &str,
    ids: Vec<String>,
    url_of: impl Fn(&str) -> String,
    settled: impl Fn(&Value) -> bool,
    timeout: Duration,
) -> (Vec<Value>, Vec<String>) {
    let deadline = Instant::now() + timeout;
    let mut pending = ids;
    let mut done = Vec::with_capacity(pending.len());
    while !pending.is_empty() && Instant::now() < deadline {
        let mut still = Vec::new();
        for chunk in pending.chunks(200) {
            let views = futures::future::join_all(chunk.iter().map(|id| {
                let request = client.get(url_of(id)).bearer_auth(token);
                async move { request.send().await.ok()?.json::<Value>().await.ok() }
            }))
            .await;
            for (id, view) in chunk.iter().zip(views) {
                match view {
                    Some(v) if settled(&v) => done.push(v),
                    _ => still.push(id.clone()),
                }
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    (done, pending)
}

/// Counts replies: accepted (status `ok`), other statuses, transport failures; and the ids of
/// the accepted resources (their `id` field).
pub fn tally(replies: &[Reply], ok: u16) -> (u64, std::collections::BTreeMap<u16, u64>, u64, Vec<String>) {
    let mut accepted = 0;
    let mut other = std::collections::BTreeMap::new();
    let mut failed = 0;
    let mut ids = Vec::new();
    for reply in replies {
        match reply {
            Reply::Answered { status, body } if *status == ok => {
                accepted += 1;
                if let Some(id) = body.as_ref().and_then(|b| b["id"].as_str()) {
                    ids.push(id.to_owned());
                }
            }
            Reply::Answered { status, .. } => *other.entry(*status).or_default() += 1,
            Reply::Failed => failed += 1,
        }
    }
    (accepted, other, failed, ids)
}
