//! One route's metric handles, held by its `Route` (and kept by requests
//! past a reload). Each handle is resolved from its family once, on first
//! use, so a series appears when it first counts something; after that a
//! request only loads a pointer and adds to an atomic. The handles belong
//! to the `Metrics` that resolved them first: an app's routes are only
//! ever recorded into that app's one `Metrics`.

use std::sync::OnceLock;

use http::Method;
use prometheus_client::metrics::counter::Counter;

use super::latency::Latency;
use super::{Metrics, RequestLabels, RetryLabels, RouteLabel};

/// Distinct (method, status) pairs a route caches handles for; past them
/// (an unusual route) a request looks its counter up in the family.
const REQUEST_SLOTS: usize = 16;

/// Why a routed request was sent upstream a second time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// The upstream closed a reused connection before answering.
    ConnectionClosed,
    /// A 401 renewed the token.
    Unauthorized,
    /// The upstream asked for a DPoP proof with its nonce.
    DpopNonce,
    /// HTTP/2: the upstream refused the stream, or its GOAWAY stopped
    /// below it, so it never processed the request.
    Unprocessed,
}

impl Retry {
    fn label(self) -> &'static str {
        match self {
            Retry::ConnectionClosed => "connection-closed",
            Retry::Unauthorized => "unauthorized",
            Retry::DpopNonce => "dpop-nonce",
            Retry::Unprocessed => "unprocessed",
        }
    }
}

pub struct RouteMetrics {
    /// The `route` label: the route's name, or empty for unrouted requests.
    name: String,
    /// `countersign_requests_total` by (method class, status), keyed
    /// `class << 16 | status`; filled in order, never emptied.
    requests: [OnceLock<(u32, Counter)>; REQUEST_SLOTS],
    bytes_in: OnceLock<Counter>,
    bytes_out: OnceLock<Counter>,
    latency: OnceLock<Latency>,
    retries: [OnceLock<Counter>; 4],
}

impl std::fmt::Debug for RouteMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteMetrics")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl RouteMetrics {
    pub fn new(name: String) -> RouteMetrics {
        RouteMetrics {
            name,
            requests: [const { OnceLock::new() }; REQUEST_SLOTS],
            bytes_in: OnceLock::new(),
            bytes_out: OnceLock::new(),
            latency: OnceLock::new(),
            retries: [const { OnceLock::new() }; 4],
        }
    }

    /// The route's name, as the access log and the `route` label show it.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn route_label(&self) -> RouteLabel {
        RouteLabel {
            route: self.name.clone(),
        }
    }

    pub(super) fn record(
        &self,
        metrics: &Metrics,
        method: &Method,
        status: u16,
        bytes_in: u64,
        bytes_out: u64,
    ) {
        let (class, method) = method_class(method);
        let key = u32::from(class) << 16 | u32::from(status);
        let labels = || RequestLabels {
            route: self.name.clone(),
            method,
            status,
        };
        match self.cached_request(key, || metrics.requests.get_or_create_owned(&labels())) {
            Some(counter) => counter.inc(),
            None => metrics.requests.get_or_create(&labels()).inc(),
        };
        self.bytes_in
            .get_or_init(|| metrics.bytes_in.get_or_create_owned(&self.route_label()))
            .inc_by(bytes_in);
        self.bytes_out
            .get_or_init(|| metrics.bytes_out.get_or_create_owned(&self.route_label()))
            .inc_by(bytes_out);
    }

    /// The cached counter for `key`, taking the first free slot for a new
    /// one (`resolve` runs once per slot); `None` once every slot holds
    /// another key. Two requests that race for a slot both end with the
    /// one counter the family holds for their labels.
    fn cached_request(&self, key: u32, resolve: impl Fn() -> Counter) -> Option<&Counter> {
        for slot in &self.requests {
            let (k, counter) = slot.get_or_init(|| (key, resolve()));
            if *k == key {
                return Some(counter);
            }
        }
        None
    }

    pub(super) fn latency(&self, metrics: &Metrics) -> &Latency {
        self.latency.get_or_init(|| {
            metrics
                .upstream_latency
                .get_or_create_owned(&self.route_label())
        })
    }

    pub(super) fn retry(&self, metrics: &Metrics, reason: Retry) -> &Counter {
        let slot = match reason {
            Retry::ConnectionClosed => &self.retries[0],
            Retry::Unauthorized => &self.retries[1],
            Retry::DpopNonce => &self.retries[2],
            Retry::Unprocessed => &self.retries[3],
        };
        slot.get_or_init(|| {
            metrics.upstream_retries.get_or_create_owned(&RetryLabels {
                route: self.name.clone(),
                reason: reason.label(),
            })
        })
    }
}

/// Methods fall in a small set of classes so labels stay bounded.
fn method_class(m: &Method) -> (u8, &'static str) {
    match *m {
        Method::GET => (0, "GET"),
        Method::POST => (1, "POST"),
        Method::PUT => (2, "PUT"),
        Method::PATCH => (3, "PATCH"),
        Method::DELETE => (4, "DELETE"),
        Method::HEAD => (5, "HEAD"),
        Method::OPTIONS => (6, "OPTIONS"),
        Method::CONNECT => (7, "CONNECT"),
        _ => (8, "other"),
    }
}
