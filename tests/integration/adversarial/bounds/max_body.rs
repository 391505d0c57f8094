//! A body past `max_body` is refused 413 `body-too-large`, whether its
//! declared length says so up front or its bytes pass the limit on the way,
//! and each refusal counts as `limit="max_body"`.

use bytes::Bytes;

use super::*;

fn refused(sidecar: &Sidecar) -> Option<f64> {
    let text = sidecar.app.metrics().render().unwrap();
    sample(
        &text,
        "countersign_limit_rejections_total{limit=\"max_body\"}",
    )
}

#[tokio::test]
async fn a_body_over_max_body_is_413_and_counted_as_max_body() {
    let upstream = Upstream::http().await;
    let sidecar = Sidecar::start(&format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\nmax_body = \"64KiB\"\n{}",
        signed_route(&upstream.http_url())
    ))
    .await;
    assert_eq!(refused(&sidecar), None);

    // Declared too long: refused before a byte is read.
    let body = "x".repeat((64 << 10) + 1);
    let answer = send(
        sidecar.proxy(),
        post("http://api.paypay.test/v2/upload", "text/plain", &body),
    )
    .await;
    assert_eq!(answer.status, 413, "{answer:?}");
    assert_eq!(answer.header("x-countersign-error"), Some("body-too-large"));
    assert_eq!(refused(&sidecar), Some(1.0));

    // Chunked, no length: refused once its bytes pass the limit.
    let (tx, body) = channel_body();
    let req = http::Request::post("http://api.paypay.test/v2/upload")
        .header("content-type", "application/octet-stream")
        .body(body)
        .unwrap();
    let proxy = sidecar.proxy();
    let exchange = tokio::spawn(async move { try_send(proxy, req).await });
    let chunk = Bytes::from(vec![b'x'; 16 << 10]);
    for _ in 0..5 {
        if tx.send(Ok(chunk.clone())).await.is_err() {
            break;
        }
    }
    let answer = exchange.await.unwrap().expect("countersign answers");
    assert_eq!(answer.status, 413, "{answer:?}");
    assert_eq!(refused(&sidecar), Some(2.0));
    assert!(upstream.received().is_empty());
}
