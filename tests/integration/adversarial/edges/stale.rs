//! Pooled upstream connections the upstream has just closed (issue 9, item
//! 8). A request that went out on a reused connection which the upstream
//! closed before any byte of an answer is sent once more, on a new
//! connection, signed afresh, when its body can be produced again; the
//! upstream gets it exactly once. Anything else is not sent again.

use std::collections::HashSet;
use std::time::Duration;

use super::raw_upstream::{Closing, RawUpstream};
use crate::harness::*;

const KEY: &str = "APIKeyGenerated";
const SECRET: &str = "APIKeySecretGenerated";

/// Route `paypay` (signs the body) for `api.paypay.test`, and route
/// `plain` (no credential: bodies stream) for `plain.test`.
fn config(upstream: &str) -> String {
    format!(
        r#"
[proxy]
listen = "127.0.0.1:0"
spool_dir = "DIR"
spool_memory = 40

[credential.paypay]
type = "paypay-opa"
api_key = "{KEY}"
api_secret = "{SECRET}"

[[route]]
name = "paypay"
hosts = ["api.paypay.test"]
upstream = "{upstream}"
credential = "paypay"

[[route]]
name = "plain"
hosts = ["plain.test"]
upstream = "{upstream}"
"#
    )
}

fn retries(sidecar: &Sidecar, route: &str) -> u64 {
    let text = sidecar.app.metrics().render().unwrap();
    let line = format!(
        "countersign_upstream_retries_total{{route=\"{route}\",reason=\"connection-closed\"}} "
    );
    text.lines()
        .find_map(|l| l.strip_prefix(&line))
        .map_or(0, |n| n.parse().unwrap())
}

/// `n` signed POSTs, one after the other, `gap` apart; every answer must be
/// the upstream's 200, and every body must have reached it once, signed
/// with a nonce of its own.
async fn signed_posts_all_arrive_once(
    upstream: &RawUpstream,
    sidecar: &Sidecar,
    n: usize,
    gap: Duration,
) {
    for i in 0..n {
        // Over spool_memory every other time: spooled in memory and on disk.
        let body = format!(
            "{{\"merchantPaymentId\":\"m-{i}\"{}}}",
            " ".repeat(i % 2 * 32)
        );
        let answer = send(
            sidecar.proxy(),
            post("http://api.paypay.test/v2/codes", "application/json", &body),
        )
        .await;
        assert_eq!(answer.status, 200, "request {i}: {answer:?}");
        assert_eq!(answer.header("x-upstream"), Some("raw"));
        tokio::time::sleep(gap).await;
    }
    let got = upstream.received();
    let bodies: Vec<String> = got
        .iter()
        .map(|r| String::from_utf8(r.body.clone()).unwrap())
        .collect();
    assert_eq!(
        got.len(),
        n,
        "each request reached the upstream once: {bodies:?}"
    );
    let distinct: HashSet<&String> = bodies.iter().collect();
    assert_eq!(distinct.len(), n, "{bodies:?}");
    let mut nonces = HashSet::new();
    for r in &got {
        verify_opa(r, KEY, SECRET).unwrap();
        let nonce = r
            .header("authorization")
            .unwrap()
            .split(':')
            .nth(3)
            .unwrap();
        assert!(nonces.insert(nonce.to_string()), "nonce {nonce} used twice");
    }
}

/// Deterministic: the upstream closes every connection the moment a second
/// request arrives on it, unread. Every reuse loses the race; each such
/// request is sent again on a new connection, which the upstream answers.
#[tokio::test]
async fn a_request_on_a_connection_the_upstream_closed_is_sent_once_more_signed_afresh() {
    let upstream = RawUpstream::start(Closing::WhenReused).await;
    let sidecar = Sidecar::start(&config(&upstream.url())).await;
    let n = 10;
    signed_posts_all_arrive_once(&upstream, &sidecar, n, Duration::ZERO).await;
    // Requests 2, 4, ... go out on the pooled connection of the one before,
    // and again on one of their own (not pooled); requests 3, 5, ... find
    // the pool empty and dial. The upstream answers one request on each.
    assert_eq!(retries(&sidecar, "paypay"), n as u64 / 2);
    assert_eq!(upstream.connections(), n);
    let dir = sidecar.dir.path().to_path_buf();
    eventually("every spool file closed", || open_files_in(&dir) == 0).await;
}

/// The race as it happens: the upstream times idle connections out after
/// 100 ms, and the app sends about that often, so some requests go out on a
/// connection just as the upstream closes it.
#[tokio::test]
async fn signed_posts_racing_the_upstreams_idle_timeout_all_arrive_once() {
    let upstream = RawUpstream::start(Closing::IdleAfter(Duration::from_millis(100))).await;
    let sidecar = Sidecar::start(&config(&upstream.url())).await;
    for gap in [96, 98, 99, 100, 101] {
        signed_posts_all_arrive_once_gap(&upstream, &sidecar, gap).await;
    }
}

async fn signed_posts_all_arrive_once_gap(upstream: &RawUpstream, sidecar: &Sidecar, gap: u64) {
    let before = upstream.received().len();
    for i in 0..12 {
        let body = format!("{{\"gap\":{gap},\"n\":{i}}}");
        let answer = send(
            sidecar.proxy(),
            post("http://api.paypay.test/v2/codes", "application/json", &body),
        )
        .await;
        assert_eq!(answer.status, 200, "gap {gap}, request {i}: {answer:?}");
        tokio::time::sleep(Duration::from_millis(gap)).await;
    }
    let got = upstream.received();
    assert_eq!(got.len() - before, 12, "gap {gap}");
    for r in &got[before..] {
        verify_opa(r, KEY, SECRET).unwrap();
    }
}

/// A bodyless request on a route without a credential is sent again too.
#[tokio::test]
async fn a_bodyless_request_is_sent_once_more() {
    let upstream = RawUpstream::start(Closing::WhenReused).await;
    let sidecar = Sidecar::start(&config(&upstream.url())).await;
    for i in 0..4 {
        let answer = send(sidecar.proxy(), get(&format!("http://plain.test/r/{i}"))).await;
        assert_eq!(answer.status, 200, "{answer:?}");
    }
    let paths: Vec<String> = upstream
        .received()
        .iter()
        .map(|r| r.uri.to_string())
        .collect();
    assert_eq!(paths, ["/r/0", "/r/1", "/r/2", "/r/3"]);
    assert_eq!(retries(&sidecar, "plain"), 2);
}

/// A streamed body is gone once hyper has taken its first chunk, which it
/// does before writing a byte: such a request is never sent again.
#[tokio::test]
async fn a_streamed_body_is_not_sent_again() {
    let upstream = RawUpstream::start(Closing::WhenReused).await;
    let sidecar = Sidecar::start(&config(&upstream.url())).await;
    let first = send(
        sidecar.proxy(),
        post("http://plain.test/up", "text/plain", "one"),
    )
    .await;
    assert_eq!(first.status, 200, "{first:?}");
    let second = send(
        sidecar.proxy(),
        post("http://plain.test/up", "text/plain", "two"),
    )
    .await;
    assert_eq!(second.status, 502, "{second:?}");
    assert_eq!(
        second.header("x-countersign-error"),
        Some("upstream-failed")
    );
    assert!(
        second
            .body
            .contains("closed a reused connection before answering"),
        "{}",
        second.body
    );
    assert_eq!(upstream.received().len(), 1);
    assert_eq!(retries(&sidecar, "plain"), 0);
}

/// A connection's first request, read and never answered: the upstream may
/// have acted on it, so it is not sent again.
#[tokio::test]
async fn a_request_on_a_new_connection_is_not_sent_again() {
    let upstream = RawUpstream::start(Closing::WithoutAnswer).await;
    let sidecar = Sidecar::start(&config(&upstream.url())).await;
    let answer = send(
        sidecar.proxy(),
        post("http://api.paypay.test/v2/codes", "application/json", "{}"),
    )
    .await;
    assert_eq!(answer.status, 502, "{answer:?}");
    assert_eq!(
        answer.header("x-countersign-error"),
        Some("upstream-failed")
    );
    assert_eq!(upstream.received().len(), 1);
    assert_eq!(upstream.connections(), 1);
    assert_eq!(retries(&sidecar, "paypay"), 0);
}

/// An upstream that began to answer has seen the request: not sent again.
#[tokio::test]
async fn a_request_the_upstream_began_to_answer_is_not_sent_again() {
    let upstream = RawUpstream::start(Closing::HalfAnswerWhenReused).await;
    let sidecar = Sidecar::start(&config(&upstream.url())).await;
    for (i, want) in [200, 502].into_iter().enumerate() {
        let answer = send(
            sidecar.proxy(),
            post(
                "http://api.paypay.test/v2/codes",
                "application/json",
                &format!("{{\"n\":{i}}}"),
            ),
        )
        .await;
        assert_eq!(answer.status, want, "{answer:?}");
    }
    assert_eq!(upstream.received().len(), 2);
    assert_eq!(upstream.connections(), 1);
    assert_eq!(retries(&sidecar, "paypay"), 0);
}

/// `resend_closed` narrows which requests are sent again: under
/// `"idempotent"` a POST is not (the app gets 502 `upstream-failed`, and the
/// upstream nothing of it) unless it carries an `Idempotency-Key`, and a
/// PUT is; under `"never"` nothing is.
#[tokio::test]
async fn resend_closed_says_which_requests_are_sent_again() {
    for (policy, method, key, resent) in [
        ("idempotent", "POST", false, false),
        ("idempotent", "POST", true, true),
        ("idempotent", "PUT", false, true),
        ("never", "PUT", false, false),
        ("any", "POST", false, true),
    ] {
        let upstream = RawUpstream::start(Closing::WhenReused).await;
        let toml = config(&upstream.url()).replace(
            "credential = \"paypay\"",
            &format!("credential = \"paypay\"\nresend_closed = \"{policy}\""),
        );
        let sidecar = Sidecar::start(&toml).await;
        let request = |i: usize| {
            let mut req = post(
                "http://api.paypay.test/v2/codes",
                "application/json",
                &format!("{{\"n\":{i}}}"),
            );
            *req.method_mut() = method.parse().unwrap();
            if key {
                req.headers_mut()
                    .insert("idempotency-key", format!("k-{i}").parse().unwrap());
            }
            req
        };
        // The first request dials; the second goes out on its connection,
        // which the upstream closes unread.
        let first = send(sidecar.proxy(), request(0)).await;
        assert_eq!(first.status, 200, "{policy} {method}: {first:?}");
        let second = send(sidecar.proxy(), request(1)).await;
        let case = format!("{policy} {method} idempotency-key={key}");
        if resent {
            assert_eq!(second.status, 200, "{case}: {second:?}");
            assert_eq!(retries(&sidecar, "paypay"), 1, "{case}");
            assert_eq!(upstream.received().len(), 2, "{case}");
        } else {
            assert_eq!(second.status, 502, "{case}: {second:?}");
            assert_eq!(
                second.header("x-countersign-error"),
                Some("upstream-failed"),
                "{case}"
            );
            assert_eq!(retries(&sidecar, "paypay"), 0, "{case}");
            assert_eq!(upstream.received().len(), 1, "{case}");
        }
    }
}
