//! Prometheus metrics on `prometheus-client` (the Prometheus project's own
//! Rust client): typed families of atomic counters and gauges, served in
//! the Prometheus text format. They live outside the snapshot, so they
//! survive reloads.
//!
//! The request path touches atomics only: a route's counters and latency
//! histogram are cached in the `RouteMetrics` its `Route` holds (resolved
//! on first use), so a request does no map lookup, no lock and no
//! allocation for metrics. Families read from live state (the config
//! generation, credentials, tokens, certificates) are built per scrape
//! (`live`).

mod latency;
mod route;

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use prometheus_client::encoding::{prometheus_text, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::body::SpoolUsage;
use latency::Latency;

pub use route::{Retry, RouteMetrics};

/// The `Content-Type` of `/metrics`: the Prometheus text format 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RouteLabel {
    pub(crate) route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RetryLabels {
    route: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WhereLabel {
    r#where: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabel {
    limit: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabel {
    listener: &'static str,
}

/// Every metric countersign keeps. The registry holds the families; the
/// fields are handles onto the same families, for recording.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    upstream_latency: Family<RouteLabel, Latency>,
    bytes_in: Family<RouteLabel, Counter>,
    bytes_out: Family<RouteLabel, Counter>,
    errors: Family<ReasonLabel, Counter>,
    upstream_retries: Family<RetryLabels, Counter>,
    unmatched: Family<OutcomeLabel, Counter>,
    unmatched_cached: [OnceLock<Counter>; 2],
    reloads: Family<ResultLabel, Counter>,
    spool_bytes: Family<WhereLabel, Gauge<u64, std::sync::atomic::AtomicU64>>,
    spool_peak: Gauge<u64, std::sync::atomic::AtomicU64>,
    limit_rejections: Family<LimitLabel, Counter>,
    open_connections: Family<ListenerLabel, Gauge>,
    /// Spooled bodies, counted (and budgeted) by the spool itself.
    spool: Arc<SpoolUsage>,
    /// The handles of requests no route took (`route=""`).
    unrouted: RouteMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        // Help texts without their final period: the registry adds it.
        // Counters without `_total`: the encoder adds it.
        let requests = Family::default();
        registry.register(
            "countersign_requests",
            "Requests served, by route, method and status",
            requests.clone(),
        );
        let upstream_latency = Family::default();
        registry.register(
            "countersign_upstream_duration_seconds",
            "Time from sending a request upstream to its response headers, by route",
            upstream_latency.clone(),
        );
        let bytes_in = Family::default();
        registry.register(
            "countersign_request_body_bytes",
            "Request body bytes sent upstream, by route",
            bytes_in.clone(),
        );
        let bytes_out = Family::default();
        registry.register(
            "countersign_response_body_bytes",
            "Response body bytes returned to the app, by route",
            bytes_out.clone(),
        );
        let errors = Family::default();
        registry.register(
            "countersign_errors",
            "Responses countersign made itself (signing failures, refusals, upstream failures), by reason",
            errors.clone(),
        );
        let upstream_retries = Family::default();
        registry.register(
            "countersign_upstream_retries",
            "Routed requests sent upstream a second time, by route and reason (connection-closed: the upstream closed a reused connection before answering; unauthorized: a 401 renewed the token; dpop-nonce: the upstream asked for a DPoP nonce; unprocessed: an HTTP/2 upstream refused the stream or sent GOAWAY below it)",
            upstream_retries.clone(),
        );
        let unmatched = Family::default();
        registry.register(
            "countersign_unmatched_requests",
            "Requests no route matched, by outcome",
            unmatched.clone(),
        );
        let reloads = Family::default();
        registry.register(
            "countersign_config_reloads",
            "Config reload attempts, by result",
            reloads.clone(),
        );
        let spool_bytes = Family::default();
        registry.register(
            "countersign_spool_bytes",
            "Bytes of request bodies currently spooled, by where",
            spool_bytes.clone(),
        );
        let spool_peak = Gauge::default();
        registry.register(
            "countersign_spool_memory_peak_bytes",
            "The most bytes of request bodies (and the buffers spooled bodies are written from and read back into) held in memory at once since the start; never more than spool_memory_total",
            spool_peak.clone(),
        );
        let limit_rejections = Family::default();
        registry.register(
            "countersign_limit_rejections",
            "Times a global bound refused or held back work, by limit: connections (a listener reached max_connections; new connections wait in the accept queue), spool_memory (a body sent to disk, or a request refused 503 spool-memory-spent, because spool_memory_total was spent), max_body, body_idle, body_total",
            limit_rejections.clone(),
        );
        let open_connections = Family::default();
        registry.register(
            "countersign_open_connections",
            "Open app connections, by listener",
            open_connections.clone(),
        );
        Metrics {
            registry,
            requests,
            upstream_latency,
            bytes_in,
            bytes_out,
            errors,
            upstream_retries,
            unmatched,
            unmatched_cached: [const { OnceLock::new() }; 2],
            reloads,
            spool_bytes,
            spool_peak,
            limit_rejections,
            open_connections,
            spool: Arc::default(),
            unrouted: RouteMetrics::new(String::new()),
        }
    }
}

impl Metrics {
    /// A finished request: `route` is the routed request's handles, or
    /// `unrouted()`.
    pub fn request(
        &self,
        route: &RouteMetrics,
        method: &http::Method,
        status: u16,
        bytes_in: u64,
        bytes_out: u64,
    ) {
        route.record(self, method, status, bytes_in, bytes_out);
    }

    /// The handles of requests no route took.
    pub fn unrouted(&self) -> &RouteMetrics {
        &self.unrouted
    }

    pub fn upstream_latency(&self, route: &RouteMetrics, took: Duration) {
        route.latency(self).observe(took);
    }

    /// A routed request sent to its upstream a second time.
    pub fn upstream_retry(&self, route: &RouteMetrics, reason: Retry) {
        route.retry(self, reason).inc();
    }

    /// A response countersign made itself, by reason.
    pub fn error(&self, reason: &'static str) {
        self.errors.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// A request no route took, by outcome (`denied`, `passthrough`). Every
    /// passthrough request counts here, so both counters are cached.
    pub fn unmatched(&self, outcome: &'static str) {
        let label = || OutcomeLabel { outcome };
        let cached = match outcome {
            "denied" => &self.unmatched_cached[0],
            "passthrough" => &self.unmatched_cached[1],
            _ => {
                self.unmatched.get_or_create(&label()).inc();
                return;
            }
        };
        cached
            .get_or_init(|| self.unmatched.get_or_create_owned(&label()))
            .inc();
    }

    pub fn reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "refused" };
        self.reloads.get_or_create(&ResultLabel { result }).inc();
    }

    /// What spooled bodies hold now; the spool takes from it and gives back.
    pub fn spool_usage(&self) -> &Arc<SpoolUsage> {
        &self.spool
    }

    /// A global bound refused or held back a connection or request; `limit`
    /// is one of a fixed set (`connections`, `max_body`, `body_idle`, ...).
    pub fn limit_rejected(&self, limit: &'static str) {
        self.limit_rejections
            .get_or_create(&LimitLabel { limit })
            .inc();
    }

    /// An app connection opened (`delta` 1) or closed (-1) on a listener of
    /// `kind` (`proxy`, `route`, `tunnel`, `admin`).
    pub fn connection(&self, kind: &'static str, delta: i64) {
        self.open_connections
            .get_or_create(&ListenerLabel { listener: kind })
            .inc_by(delta);
    }

    /// The text exposition served on `/metrics`: the kept families, then
    /// `live`, the families read from the serving snapshot at scrape time.
    pub fn exposition(&self, live: &Registry) -> Result<String, std::fmt::Error> {
        let mut out = self.render()?;
        prometheus_text::encode(&mut out, live)?;
        Ok(out)
    }

    /// The families kept here (not those read from the snapshot), with the
    /// spool's figures read now.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        for (r#where, bytes) in [("memory", self.spool.memory()), ("disk", self.spool.disk())] {
            self.spool_bytes
                .get_or_create(&WhereLabel { r#where })
                .set(bytes);
        }
        self.spool_peak.set(self.spool.peak());
        // A counter the spool keeps; it only grows there. Requests refused
        // because the budget was spent count with the bodies it spilled.
        let spilled = self.spool.spilled() + self.spool.refusals();
        if spilled > 0 {
            let limit = LimitLabel {
                limit: "spool_memory",
            };
            self.limit_rejections
                .get_or_create(&limit)
                .inner()
                .store(spilled, Ordering::Relaxed);
        }
        let mut out = String::new();
        prometheus_text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
