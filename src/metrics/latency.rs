//! The upstream latency histogram: fixed buckets of atomic counts. The
//! client's own `Histogram` takes a lock per observation; this one adds to
//! two atomics, and is encoded by the client like any histogram.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// Upper bounds of the buckets, in nanoseconds: 5ms, 10ms, 25ms, 50ms,
/// 100ms, 250ms, 500ms, 1s, 2.5s, 5s, 10s, 30s (then `+Inf`).
const BOUNDS_NS: [u64; 12] = [
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
    30_000_000_000,
];

/// One route's histogram; clones share the counts.
#[derive(Clone, Debug, Default)]
pub struct Latency(Arc<Counts>);

#[derive(Debug, Default)]
struct Counts {
    /// Observations per bucket (not cumulative); the last is `+Inf`.
    buckets: [AtomicU64; BOUNDS_NS.len() + 1],
    sum_ns: AtomicU64,
}

impl Latency {
    pub fn observe(&self, took: Duration) {
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        // The first bucket whose bound is at least `ns`: `le` is inclusive.
        let i = BOUNDS_NS.partition_point(|&bound| bound < ns);
        self.0.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.0.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }
}

impl TypedMetric for Latency {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Latency {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        // The count is the buckets' total, so `le="+Inf"` and `_count`
        // agree with the buckets even while requests are being observed.
        let mut buckets = [(f64::INFINITY, 0u64); BOUNDS_NS.len() + 1];
        let mut count = 0u64;
        for (i, (bound, n)) in buckets.iter_mut().enumerate() {
            if let Some(ns) = BOUNDS_NS.get(i) {
                *bound = *ns as f64 / 1e9;
            }
            *n = self.0.buckets[i].load(Ordering::Relaxed);
            count += *n;
        }
        let sum = self.0.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}
