//! A request body that stalls is answered at its deadline on every route:
//! 408 `body-timeout`, counted by limit; on a signing route the upstream
//! receives nothing.

use bytes::Bytes;

use super::*;

fn config(upstream: &str) -> String {
    format!(
        r#"
[proxy]
listen = "127.0.0.1:0"
response_timeout = "20s"
body_idle_timeout = "300ms"
body_timeout = "1500ms"

[credential.plain]
type = "header"
bearer = "t"

[[route]]
name = "streamed"
hosts = ["api.test"]
upstream = "{upstream}"
credential = "plain"
{signed}"#,
        signed = signed_route(upstream)
    )
}

fn rejections(sidecar: &Sidecar, limit: &str) -> Option<f64> {
    let text = sidecar.app.metrics().render().unwrap();
    sample(
        &text,
        &format!("countersign_limit_rejections_total{{limit=\"{limit}\"}}"),
    )
}

fn upload(
    url: &str,
) -> (
    tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    http::Request<ChannelBody>,
) {
    let (tx, body) = channel_body();
    let req = http::Request::post(url)
        .header("content-type", "application/octet-stream")
        .header("content-length", "1000")
        .body(body)
        .unwrap();
    (tx, req)
}

#[tokio::test]
async fn a_stalled_body_on_a_signing_route_is_answered_and_never_sent() {
    let upstream = Upstream::http().await;
    let sidecar = Sidecar::start(&config(&upstream.http_url())).await;
    let (tx, req) = upload("http://api.paypay.test/v2/upload");
    tx.send(Ok(Bytes::from_static(b"the first bytes")))
        .await
        .unwrap();
    let answer = tokio::time::timeout(SOON, send(sidecar.proxy(), req))
        .await
        .expect("answered at the deadline");
    assert_eq!(answer.status, 408, "{answer:?}");
    assert_eq!(answer.header("x-countersign-error"), Some("body-timeout"));
    assert!(
        answer.body.contains("proxy.body_idle_timeout"),
        "{answer:?}"
    );
    assert_eq!(upstream.connections(), 0, "the upstream received nothing");
    assert_eq!(rejections(&sidecar, "body_idle"), Some(1.0));
    drop(tx);
}

#[tokio::test]
async fn a_stalled_body_on_a_streaming_route_is_answered_at_the_deadline() {
    let upstream = Upstream::http().await;
    let sidecar = Sidecar::start(&config(&upstream.http_url())).await;
    let (tx, req) = upload("http://api.test/upload");
    tx.send(Ok(Bytes::from_static(b"the first bytes")))
        .await
        .unwrap();
    // Well before response_timeout (20s), which answered it before.
    let answer = tokio::time::timeout(Duration::from_secs(10), send(sidecar.proxy(), req))
        .await
        .expect("answered at the body deadline");
    assert_eq!(answer.status, 408, "{answer:?}");
    assert_eq!(answer.header("x-countersign-error"), Some("body-timeout"));
    assert!(
        upstream.received().is_empty(),
        "no request completed upstream"
    );
    assert_eq!(rejections(&sidecar, "body_idle"), Some(1.0));
    drop(tx);
}

#[tokio::test]
async fn a_trickle_is_answered_at_the_total_deadline() {
    let upstream = Upstream::http().await;
    let sidecar = Sidecar::start(&config(&upstream.http_url())).await;
    let (tx, req) = upload("http://api.paypay.test/v2/upload");
    let trickle = tokio::spawn(async move {
        // A byte every 100ms never trips the idle gap; 1000 bytes would take
        // 100s.
        while tx.send(Ok(Bytes::from_static(b"x"))).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let answer = tokio::time::timeout(SOON, send(sidecar.proxy(), req))
        .await
        .expect("answered at the total deadline");
    assert_eq!(answer.status, 408, "{answer:?}");
    assert!(answer.body.contains("proxy.body_timeout"), "{answer:?}");
    assert_eq!(upstream.connections(), 0);
    assert_eq!(rejections(&sidecar, "body_total"), Some(1.0));
    trickle.abort();
}

#[tokio::test]
async fn a_body_sent_on_time_is_signed_and_sent() {
    let upstream = Upstream::http().await;
    let sidecar = Sidecar::start(&config(&upstream.http_url())).await;
    let (tx, body) = channel_body();
    let req = http::Request::post("http://api.paypay.test/v2/upload")
        .header("content-type", "application/octet-stream")
        .body(body)
        .unwrap();
    let feeder = tokio::spawn(async move {
        for _ in 0..5 {
            tx.send(Ok(Bytes::from_static(b"0123456789")))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let answer = send(sidecar.proxy(), req).await;
    feeder.await.unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(upstream.last().body_len, 50);
    verify_opa(&upstream.last(), "k", "s").unwrap();
}
