//! h2's own failures, played by an upstream built on the h2 crate (and, for
//! a GOAWAY below the request's stream, by raw frames): a request the
//! upstream says it never processed is sent once more, signed afresh,
//! through the pool (after a GOAWAY, on a new connection); a stream reset
//! otherwise, or one whose streamed body is spent, is not.

use std::sync::atomic::Ordering;

use super::h2_upstream::{First, H2Upstream};
use super::{metric, KEY, SECRET};
use crate::harness::*;

fn config(port: u16, ca_file: &std::path::Path, extra: &str) -> String {
    format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\nspool_dir = \"DIR\"\n\
         [credential.paypay]\ntype = \"paypay-opa\"\napi_key = \"{KEY}\"\napi_secret = \"{SECRET}\"\n\
         [[route]]\nname = \"r\"\nhosts = [\"api.test\"]\nupstream = \"https://localhost:{port}\"\nca_file = \"{}\"\n{extra}\n",
        ca_file.display()
    )
}

async fn start(ca: &TestCa, first: First, extra: &str) -> (H2Upstream, Sidecar) {
    let upstream = H2Upstream::start(ca, first).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_ca(dir.path());
    let sidecar = Sidecar::start_in(dir, &config(upstream.port, &ca_file, extra)).await;
    (upstream, sidecar)
}

const BODY: &str = r#"{"merchantPaymentId":"m-1"}"#;
const RETRIED: &str = r#"countersign_upstream_retries_total{route="r",reason="unprocessed"}"#;

fn nonce(r: &Recorded) -> String {
    let auth = r.header("authorization").unwrap();
    auth.split(':').nth(3).unwrap().to_string()
}

#[tokio::test]
async fn a_refused_stream_is_sent_again_signed_afresh_even_with_resend_closed_never() {
    let ca = TestCa::new();
    let extra = "credential = \"paypay\"\nresend_closed = \"never\"";
    let (upstream, sidecar) = start(&ca, First::Refuse, extra).await;
    let answer = send(
        sidecar.proxy(),
        post("http://api.test/v2/codes", "application/json", BODY),
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body, "ok");
    let seen = upstream.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    // The connection that refused a stream still serves: the second
    // attempt rides it as a new stream.
    assert_eq!((seen[0].connection, seen[1].connection), (1, 1));
    assert_eq!(seen[1].version, http::Version::HTTP_2);
    assert_eq!(seen[1].body, BODY.as_bytes());
    verify_opa(&seen[1], KEY, SECRET).unwrap();
    assert_ne!(nonce(&seen[0]), nonce(&seen[1]), "signed afresh");
    assert_eq!(metric(&sidecar, RETRIED).await, 1.0);
}

#[tokio::test]
async fn a_goaway_below_the_requests_stream_sends_it_again_on_a_new_connection() {
    let ca = TestCa::new();
    let (upstream, sidecar) = start(&ca, First::GoAway, "credential = \"paypay\"").await;
    let answer = send(
        sidecar.proxy(),
        post("http://api.test/v2/codes", "application/json", BODY),
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(upstream.goaway_headers.load(Ordering::Relaxed), 1);
    let seen = upstream.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].connection, 2);
    verify_opa(&seen[0], KEY, SECRET).unwrap();
    assert_eq!(metric(&sidecar, RETRIED).await, 1.0);
}

#[tokio::test]
async fn a_stream_reset_any_other_way_is_not_sent_again() {
    let ca = TestCa::new();
    let (upstream, sidecar) = start(&ca, First::Reset, "credential = \"paypay\"").await;
    let answer = send(
        sidecar.proxy(),
        post("http://api.test/v2/codes", "application/json", BODY),
    )
    .await;
    assert_eq!(answer.status, 502, "{answer:?}");
    assert_eq!(
        answer.header("x-countersign-error"),
        Some("upstream-failed")
    );
    assert_eq!(upstream.seen().len(), 1);
    assert_eq!(metric(&sidecar, RETRIED).await, 0.0);
}

#[tokio::test]
async fn a_refused_stream_whose_body_streamed_is_not_sent_again() {
    // No credential signs the body: it streams through, and once handed to
    // the first attempt it cannot be produced again.
    let ca = TestCa::new();
    let (upstream, sidecar) = start(&ca, First::Refuse, "").await;
    let answer = send(
        sidecar.proxy(),
        post("http://api.test/upload", "application/json", BODY),
    )
    .await;
    assert_eq!(answer.status, 502, "{answer:?}");
    assert_eq!(
        answer.header("x-countersign-error"),
        Some("upstream-failed")
    );
    assert_eq!(upstream.seen().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_an_h2_connection_ends_the_requests_in_flight_share_one_new_one() {
    let ca = TestCa::new();
    let (upstream, sidecar) = start(&ca, First::Drain, "credential = \"paypay\"").await;
    let proxy = sidecar.proxy();
    // One request teaches the client that this upstream picks h2; its
    // connection then goes away.
    send(proxy, get("http://api.test/warm")).await;
    let all: Vec<_> = (0..20)
        .map(|i| {
            tokio::spawn(async move {
                send(
                    proxy,
                    post(&format!("http://api.test/{i}"), "application/json", BODY),
                )
                .await
            })
        })
        .collect();
    for one in all {
        let answer = one.await.unwrap();
        assert_eq!(answer.status, 200, "{answer:?}");
    }
    // Twenty requests at once found no connection: one dial, whose
    // connection all of them rode, and no other dialled and dropped.
    let seen = upstream.seen();
    assert_eq!(seen.len(), 21);
    assert!(seen[1..].iter().all(|r| r.connection == 2));
    assert_eq!(upstream.accepted.load(Ordering::Relaxed), 2);
}
