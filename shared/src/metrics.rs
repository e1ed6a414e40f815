//! Metrics in CloudWatch Embedded Metric Format (EMF): a JSON log line that CloudWatch turns
//! into metrics, with no API call on the hot path.
//!
//! In Lambda every data point is printed as it happens (the log line is the transport). The dev
//! stack and tests aggregate in memory and print a summary periodically, so a load test is not
//! slowed down by thousands of log lines per second, and tests can read the counters.
//!
//! Every data point is published under these dimension sets (see [`dimension_sets`]), so alarms
//! and dashboards can read it per function or for the whole product without metric math over
//! every function:
//! - `[Service, <dims>...]`: per function (e.g. `PaymentTransitions{Service=callback-processor,Status=completed}`);
//! - `[<dims>...]`: product-wide by the metric's own dimensions (`PaymentTransitions{Status=completed}`);
//! - `[]`: the product-wide total, when the metric has dimensions (`CallbackAnomalies` of every reason).
//!
//! `template.yaml`'s alarms and dashboard use exactly these names and sets; the template test
//! checks each one against the calls in the code.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

pub const NAMESPACE: &str = "MpesaCheckout";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One EMF line per data point on stdout (Lambda).
    Emf,
    /// Summed in memory; [`flush`] prints EMF lines and resets.
    Aggregate,
}

type SeriesKey = (String, Vec<(String, String)>);

struct Sink {
    mode: Mode,
    service: String,
    counters: BTreeMap<SeriesKey, f64>,
    gauges: BTreeMap<SeriesKey, f64>,
    timings: BTreeMap<String, Vec<f64>>,
}

fn sink() -> &'static Mutex<Sink> {
    static SINK: OnceLock<Mutex<Sink>> = OnceLock::new();
    SINK.get_or_init(|| {
        Mutex::new(Sink {
            mode: Mode::Aggregate,
            service: "checkout".into(),
            counters: BTreeMap::new(),
            gauges: BTreeMap::new(),
            timings: BTreeMap::new(),
        })
    })
}

fn lock() -> std::sync::MutexGuard<'static, Sink> {
    sink().lock().unwrap_or_else(|p| p.into_inner())
}

/// Chooses how metrics leave the process and names the function emitting them.
pub fn init(mode: Mode, service: &str) {
    let mut sink = lock();
    sink.mode = mode;
    sink.service = service.to_owned();
}

fn emf_line(
    service: &str,
    name: &str,
    unit: &str,
    value: serde_json::Value,
    dimensions: &[(String, String)],
) -> String {
    let names: Vec<&str> = dimensions.iter().map(|(k, _)| k.as_str()).collect();
    let mut line = serde_json::json!({
        "_aws": {
            "Timestamp": chrono::Utc::now().timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": dimension_sets(&names),
                "Metrics": [{"Name": name, "Unit": unit}],
            }],
        },
        "Service": service,
        name: value,
    });
    if let Some(object) = line.as_object_mut() {
        for (k, v) in dimensions {
            object.insert(k.clone(), serde_json::Value::String(v.clone()));
        }
    }
    line.to_string()
}

/// The dimension sets a data point with dimensions `names` is published under: per function
/// (`Service` first), product-wide by its own dimensions, and (when it has any) the total.
pub fn dimension_sets<'a>(names: &[&'a str]) -> Vec<Vec<&'a str>> {
    let mut per_function = vec!["Service"];
    per_function.extend_from_slice(names);
    let mut sets = vec![per_function, names.to_vec()];
    if !names.is_empty() {
        sets.push(Vec::new());
    }
    sets
}

fn print_line(line: &str) {
    let stdout = std::io::stdout();
    let mut handle = stdout.lock();
    let _ = writeln!(handle, "{line}");
}

/// Adds `value` to a counter with the given dimensions.
pub fn count(name: &str, value: u64, dimensions: &[(&str, &str)]) {
    let dims: Vec<(String, String)> = dimensions
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let mut sink = lock();
    match sink.mode {
        Mode::Emf => {
            let line = emf_line(&sink.service, name, "Count", serde_json::json!(value), &dims);
            drop(sink);
            print_line(&line);
        }
        Mode::Aggregate => *sink.counters.entry((name.to_owned(), dims)).or_insert(0.0) += value as f64,
    }
}

/// Records a duration in milliseconds.
pub fn timing(name: &str, elapsed: Duration) {
    let millis = elapsed.as_secs_f64() * 1000.0;
    let mut sink = lock();
    match sink.mode {
        Mode::Emf => {
            let line = emf_line(&sink.service, name, "Milliseconds", serde_json::json!(millis), &[]);
            drop(sink);
            print_line(&line);
        }
        Mode::Aggregate => sink.timings.entry(name.to_owned()).or_default().push(millis),
    }
}

/// Records a gauge (e.g. open payments by age bucket) as a single data point.
pub fn gauge(name: &str, value: f64, dimensions: &[(&str, &str)]) {
    let dims: Vec<(String, String)> = dimensions
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let mut sink = lock();
    match sink.mode {
        Mode::Emf => {
            let line = emf_line(&sink.service, name, "Count", serde_json::json!(value), &dims);
            drop(sink);
            print_line(&line);
        }
        // The latest value wins until the next flush.
        Mode::Aggregate => {
            sink.gauges.insert((name.to_owned(), dims), value);
        }
    }
}

/// Current aggregated value of a counter summed over all dimension values (tests, dev stack).
pub fn counter_total(name: &str) -> f64 {
    lock()
        .counters
        .iter()
        .filter(|((n, _), _)| n == name)
        .map(|(_, v)| v)
        .sum()
}

/// Prints aggregated counters and timings as EMF lines and resets them.
pub fn flush() {
    let mut sink = lock();
    let counters = std::mem::take(&mut sink.counters);
    let gauges = std::mem::take(&mut sink.gauges);
    let timings = std::mem::take(&mut sink.timings);
    let service = sink.service.clone();
    drop(sink);
    for ((name, dims), value) in counters {
        print_line(&emf_line(&service, &name, "Count", serde_json::json!(value), &dims));
    }
    for ((name, dims), value) in gauges {
        print_line(&emf_line(&service, &name, "Count", serde_json::json!(value), &dims));
    }
    for (name, values) in timings {
        // EMF accepts an array of values for one metric.
        print_line(&emf_line(
            &service,
            &name,
            "Milliseconds",
            serde_json::json!(values),
            &[],
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_lines_are_valid() {
        let line = emf_line(
            "initiate",
            "PaymentsInitiated",
            "Count",
            serde_json::json!(1),
            &[("Status".into(), "sent".into())],
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], NAMESPACE);
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([["Service", "Status"], ["Status"], []])
        );
        assert_eq!(v["PaymentsInitiated"], 1);
        assert_eq!(v["Status"], "sent");
        assert_eq!(v["Service"], "initiate");
        let plain = emf_line("status", "Sweeps", "Count", serde_json::json!(1), &[]);
        let v: serde_json::Value = serde_json::from_str(&plain).unwrap();
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([["Service"], []])
        );
    }
}
