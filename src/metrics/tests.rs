use std::time::Duration;

use proptest::prelude::*;

use super::*;

fn series(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn renders_counters_histograms_and_escaped_labels() {
    let m = Metrics::default();
    let route = RouteMetrics::new("pay\"pal".into());
    m.request(&route, &http::Method::POST, 200, 10, 20);
    m.request(&route, &http::Method::POST, 200, 5, 0);
    m.request(
        &route,
        &http::Method::from_bytes(b"BREW").unwrap(),
        418,
        0,
        0,
    );
    m.request(m.unrouted(), &http::Method::GET, 403, 0, 7);
    let r = RouteMetrics::new("r".into());
    m.upstream_latency(&r, Duration::from_millis(30));
    m.upstream_retry(&r, Retry::Unauthorized);
    m.error("no-route");
    m.unmatched("passthrough");
    m.unmatched("passthrough");
    m.unmatched("denied");
    m.connection("proxy", 1);
    let text = m.render().unwrap();
    let count = |name: &str| series(&text, name);
    assert_eq!(
        count(r#"countersign_requests_total{route="pay\"pal",method="POST",status="200"}"#),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        count(r#"countersign_requests_total{route="pay\"pal",method="other",status="418"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        count(r#"countersign_requests_total{route="",method="GET",status="403"}"#),
        Some(1.0)
    );
    assert_eq!(
        count(r#"countersign_request_body_bytes_total{route="pay\"pal"}"#),
        Some(15.0)
    );
    assert_eq!(
        count(r#"countersign_response_body_bytes_total{route=""}"#),
        Some(7.0)
    );
    let bucket = |le| {
        count(&format!(
            r#"countersign_upstream_duration_seconds_bucket{{route="r",le="{le}"}}"#
        ))
    };
    assert_eq!(bucket("0.025"), Some(0.0), "{text}");
    assert_eq!(bucket("0.05"), Some(1.0), "{text}");
    assert_eq!(bucket("30"), Some(1.0), "{text}");
    assert_eq!(bucket("+Inf"), Some(1.0), "{text}");
    assert_eq!(
        count(r#"countersign_upstream_duration_seconds_count{route="r"}"#),
        Some(1.0)
    );
    assert_eq!(
        count(r#"countersign_upstream_duration_seconds_sum{route="r"}"#),
        Some(0.03)
    );
    assert_eq!(
        count(r#"countersign_upstream_retries_total{route="r",reason="unauthorized"}"#),
        Some(1.0)
    );
    assert_eq!(
        count(r#"countersign_errors_total{reason="no-route"}"#),
        Some(1.0)
    );
    assert_eq!(
        count(r#"countersign_open_connections{listener="proxy"}"#),
        Some(1.0)
    );
    assert_eq!(
        count(r#"countersign_spool_bytes{where="memory"}"#),
        Some(0.0)
    );
    assert!(
        text.contains("# HELP countersign_requests_total Requests served, by route, method and status.\n# TYPE countersign_requests_total counter\n"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE countersign_upstream_duration_seconds histogram\n"),
        "{text}"
    );
    assert!(
        !text.contains("# EOF"),
        "the Prometheus text format: {text}"
    );
}

/// More (method, status) pairs than a route caches still count, each in
/// its own series.
#[test]
fn a_route_past_its_cached_pairs_still_counts_every_request() {
    let m = Metrics::default();
    let route = RouteMetrics::new("r".into());
    for status in 200..240u16 {
        for _ in 0..2 {
            m.request(&route, &http::Method::GET, status, 0, 0);
        }
    }
    let text = m.render().unwrap();
    for status in 200..240u16 {
        let name =
            format!(r#"countersign_requests_total{{route="r",method="GET",status="{status}"}}"#);
        assert_eq!(series(&text, &name), Some(2.0), "{name} in {text}");
    }
}

/// Two routes of one name (the same route in two snapshots, across a
/// reload) count into the same series.
#[test]
fn handles_of_one_route_in_two_snapshots_share_their_series() {
    let m = Metrics::default();
    let (old, new) = (RouteMetrics::new("r".into()), RouteMetrics::new("r".into()));
    m.request(&old, &http::Method::GET, 200, 1, 1);
    m.request(&new, &http::Method::GET, 200, 1, 1);
    m.upstream_latency(&old, Duration::from_millis(1));
    m.upstream_latency(&new, Duration::from_millis(1));
    let text = m.render().unwrap();
    assert_eq!(
        series(
            &text,
            r#"countersign_requests_total{route="r",method="GET",status="200"}"#
        ),
        Some(2.0)
    );
    assert_eq!(
        series(
            &text,
            r#"countersign_upstream_duration_seconds_count{route="r"}"#
        ),
        Some(2.0)
    );
}

/// Spool figures are read at scrape time; the spool's own count of bodies
/// sent to disk shows as `limit="spool_memory"` once there is one.
#[test]
fn spool_figures_are_read_when_scraped() {
    let m = Metrics::default();
    let text = m.render().unwrap();
    assert_eq!(
        series(&text, r#"countersign_spool_bytes{where="disk"}"#),
        Some(0.0)
    );
    assert!(!text.contains("spool_memory\"}"), "{text}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Each `le` bucket counts the observations at or under its bound,
    /// `+Inf` and `_count` count them all, and `_sum` adds them up.
    #[test]
    fn latency_buckets_are_cumulative_and_inclusive(
        millis in prop::collection::vec(prop_oneof![0u64..40_000, Just(5), Just(1000), Just(30_000)], 0..40)
    ) {
        let m = Metrics::default();
        let route = RouteMetrics::new("r".into());
        for ms in &millis {
            m.upstream_latency(&route, Duration::from_millis(*ms));
        }
        let text = m.render().unwrap();
        if millis.is_empty() {
            prop_assert!(!text.contains("countersign_upstream_duration_seconds"));
            return Ok(());
        }
        for (le, bound_ms) in [("0.005", 5), ("0.01", 10), ("0.025", 25), ("0.05", 50), ("0.1", 100), ("0.25", 250), ("0.5", 500), ("1", 1000), ("2.5", 2500), ("5", 5000), ("10", 10_000), ("30", 30_000), ("+Inf", u64::MAX)] {
            let want = millis.iter().filter(|ms| **ms <= bound_ms).count() as f64;
            let name = format!(r#"countersign_upstream_duration_seconds_bucket{{route="r",le="{le}"}}"#);
            prop_assert_eq!(series(&text, &name), Some(want), "{} in {}", name, text);
        }
        let count = series(&text, r#"countersign_upstream_duration_seconds_count{route="r"}"#);
        prop_assert_eq!(count, Some(millis.len() as f64));
        let sum = series(&text, r#"countersign_upstream_duration_seconds_sum{route="r"}"#).unwrap();
        let want: u64 = millis.iter().sum();
        prop_assert!((sum - want as f64 / 1000.0).abs() < 1e-6, "{} vs {}", sum, want);
    }
}
