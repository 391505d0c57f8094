//! Prometheus metrics, kept outside the snapshot so they survive reloads.
//! Hand-rolled text exposition (counters, gauges, one histogram family):
//! the few families countersign needs do not justify a metrics framework.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::body::SpoolUsage;

/// Upper bounds (seconds) of the upstream latency histogram buckets.
const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

type Labels = Vec<(&'static str, String)>;

/// A family of counters keyed by label values.
#[derive(Default)]
struct Counter(Mutex<BTreeMap<Labels, u64>>);

impl Counter {
    fn add(&self, labels: Labels, n: u64) {
        *self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(labels)
            .or_default() += n;
    }

    /// Sets a counter kept elsewhere (it only ever grows there).
    fn set(&self, labels: Labels, n: u64) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(labels, n);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        header(out, name, help, "counter");
        for (labels, v) in self.0.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(out, "{name}{} {v}", label_text(labels));
        }
    }
}

#[derive(Default, Clone)]
struct Buckets {
    counts: [u64; LATENCY_BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct Histogram(Mutex<BTreeMap<Labels, Buckets>>);

impl Histogram {
    fn observe(&self, labels: Labels, value: f64) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let b = map.entry(labels).or_default();
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            if value <= *bound {
                b.counts[i] += 1;
            }
        }
        b.sum += value;
        b.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        header(out, name, help, "histogram");
        for (labels, b) in self.0.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
                let mut l = labels.clone();
                l.push(("le", bound.to_string()));
                let _ = writeln!(out, "{name}_bucket{} {}", label_text(&l), b.counts[i]);
            }
            let mut l = labels.clone();
            l.push(("le", "+Inf".into()));
            let _ = writeln!(out, "{name}_bucket{} {}", label_text(&l), b.count);
            let _ = writeln!(out, "{name}_sum{} {}", label_text(labels), b.sum);
            let _ = writeln!(out, "{name}_count{} {}", label_text(labels), b.count);
        }
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn label_text(labels: &[(&'static str, String)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// Every metric countersign keeps.
#[derive(Default)]
pub struct Metrics {
    requests: Counter,
    upstream_latency: Histogram,
    bytes_in: Counter,
    bytes_out: Counter,
    errors: Counter,
    upstream_retries: Counter,
    unmatched: Counter,
    reloads: Counter,
    /// Spooled bodies, counted (and budgeted) by the spool itself.
    spool: Arc<SpoolUsage>,
    limit_rejections: Counter,
    open_connections: Mutex<BTreeMap<String, i64>>,
}

/// The part of a request a metric line is labelled with.
pub struct RequestLabels<'a> {
    pub route: &'a str,
    pub method: &'a http::Method,
    pub status: u16,
}

/// Methods fall in a small set of classes so labels stay bounded.
fn method_class(m: &http::Method) -> &'static str {
    match *m {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::PATCH => "PATCH",
        http::Method::DELETE => "DELETE",
        http::Method::HEAD => "HEAD",
        http::Method::OPTIONS => "OPTIONS",
        http::Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

impl Metrics {
    pub fn request(&self, l: &RequestLabels<'_>, bytes_in: u64, bytes_out: u64) {
        let route = l.route.to_string();
        self.requests.add(
            vec![
                ("route", route.clone()),
                ("method", method_class(l.method).into()),
                ("status", l.status.to_string()),
            ],
            1,
        );
        self.bytes_in.add(vec![("route", route.clone())], bytes_in);
        self.bytes_out.add(vec![("route", route)], bytes_out);
    }

    pub fn upstream_latency(&self, route: &str, took: Duration) {
        self.upstream_latency
            .observe(vec![("route", route.to_string())], took.as_secs_f64());
    }

    /// A response countersign made itself, by reason.
    pub fn error(&self, reason: &'static str) {
        self.errors.add(vec![("reason", reason.into())], 1);
    }

    /// A routed request sent to its upstream a second time, by reason
    /// (`connection-closed`, `unauthorized`).
    pub fn upstream_retry(&self, route: &str, reason: &'static str) {
        self.upstream_retries.add(
            vec![("route", route.to_string()), ("reason", reason.into())],
            1,
        );
    }

    pub fn unmatched(&self, outcome: &'static str) {
        self.unmatched.add(vec![("outcome", outcome.into())], 1);
    }

    pub fn reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "refused" };
        self.reloads.add(vec![("result", result.into())], 1);
    }

    /// What spooled bodies hold now; the spool takes from it and gives back.
    pub fn spool_usage(&self) -> &Arc<SpoolUsage> {
        &self.spool
    }

    /// A global bound refused or held back a connection or request; `limit`
    /// is one of a fixed set (`connections`, `max_body`, `body_idle`, ...).
    pub fn limit_rejected(&self, limit: &'static str) {
        self.limit_rejections.add(vec![("limit", limit.into())], 1);
    }

    pub fn connection(&self, listener: &str, delta: i64) {
        *self
            .open_connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(listener.to_string())
            .or_default() += delta;
    }

    /// The text exposition; `extra` appends families computed at scrape time
    /// (config generation, certificate expiry, credential state).
    pub fn render(&self, extra: &[Sample]) -> String {
        let mut out = String::new();
        self.requests.render(
            &mut out,
            "countersign_requests_total",
            "Requests served, by route, method and status.",
        );
        self.upstream_latency.render(
            &mut out,
            "countersign_upstream_duration_seconds",
            "Time from sending a request upstream to its response headers, by route.",
        );
        self.bytes_in.render(
            &mut out,
            "countersign_request_body_bytes_total",
            "Request body bytes sent upstream, by route.",
        );
        self.bytes_out.render(
            &mut out,
            "countersign_response_body_bytes_total",
            "Response body bytes returned to the app, by route.",
        );
        self.errors.render(
            &mut out,
            "countersign_errors_total",
            "Responses countersign made itself (signing failures, refusals, upstream failures), by reason.",
        );
        self.upstream_retries.render(
            &mut out,
            "countersign_upstream_retries_total",
            "Routed requests sent upstream a second time, by route and reason (connection-closed: the upstream closed a reused connection before answering; unauthorized: a 401 renewed the token).",
        );
        self.unmatched.render(
            &mut out,
            "countersign_unmatched_requests_total",
            "Requests no route matched, by outcome.",
        );
        self.reloads.render(
            &mut out,
            "countersign_config_reloads_total",
            "Config reload attempts, by result.",
        );
        header(
            &mut out,
            "countersign_spool_bytes",
            "Bytes of request bodies currently spooled, by where.",
            "gauge",
        );
        let _ = writeln!(
            out,
            "countersign_spool_bytes{{where=\"memory\"}} {}",
            self.spool.memory()
        );
        let _ = writeln!(
            out,
            "countersign_spool_bytes{{where=\"disk\"}} {}",
            self.spool.disk()
        );
        let spilled = self.spool.spilled();
        if spilled > 0 {
            let labels = vec![("limit", "spool_memory".to_string())];
            self.limit_rejections.set(labels, spilled);
        }
        self.limit_rejections.render(
            &mut out,
            "countersign_limit_rejections_total",
            "Times a global bound refused or held back work, by limit: connections (a listener reached max_connections; new connections wait in the accept queue), spool_memory (a body sent to disk because spool_memory_total was spent), max_body, body_idle, body_total.",
        );
        header(
            &mut out,
            "countersign_open_connections",
            "Open app connections, by listener.",
            "gauge",
        );
        for (listener, n) in self
            .open_connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "countersign_open_connections{} {n}",
                label_text(&[("listener", listener.clone())])
            );
        }
        let mut last = "";
        for g in extra {
            if g.name != last {
                header(&mut out, g.name, g.help, g.kind);
                last = g.name;
            }
            let _ = writeln!(out, "{}{} {}", g.name, label_text(&g.labels), g.value);
        }
        out
    }
}

/// One sample computed at scrape time from live state (a gauge, or a
/// counter kept elsewhere); samples of one name must be adjacent.
pub struct Sample {
    pub name: &'static str,
    pub help: &'static str,
    /// `"gauge"` or `"counter"`.
    pub kind: &'static str,
    pub labels: Labels,
    pub value: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_escaped_labels() {
        let m = Metrics::default();
        let l = RequestLabels {
            route: "pay\"pal",
            method: &http::Method::POST,
            status: 200,
        };
        m.request(&l, 10, 20);
        m.request(&l, 5, 0);
        m.upstream_latency("r", Duration::from_millis(30));
        let text = m.render(&[Sample {
            name: "countersign_config_generation",
            help: "g",
            kind: "gauge",
            labels: vec![],
            value: 3.0,
        }]);
        assert!(
            text.contains(
                "countersign_requests_total{route=\"pay\\\"pal\",method=\"POST\",status=\"200\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains("countersign_request_body_bytes_total{route=\"pay\\\"pal\"} 15"),
            "{text}"
        );
        assert!(
            text.contains(
                "countersign_upstream_duration_seconds_bucket{route=\"r\",le=\"0.025\"} 0"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "countersign_upstream_duration_seconds_bucket{route=\"r\",le=\"0.05\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("countersign_upstream_duration_seconds_count{route=\"r\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "# TYPE countersign_config_generation gauge\ncountersign_config_generation 3"
            ),
            "{text}"
        );
    }
}
