//! Body limits and spooling: 413 before or during the upload, and no spool
//! file left behind on any path.

use bytes::Bytes;

use crate::harness::*;

fn config(upstream: &str) -> String {
    format!(
        r#"
[proxy]
listen = "127.0.0.1:0"
max_body = "1MiB"
spool_memory = "64KiB"
spool_dir = "DIR/spool"

[credential.paypay]
type = "paypay-opa"
api_key = "k"
api_secret = "s"

[[route]]
name = "paypay"
hosts = ["api.paypay.test"]
upstream = "{upstream}"
credential = "paypay"
"#
    )
}

async fn sidecar(upstream: &Upstream) -> Sidecar {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("spool")).unwrap();
    Sidecar::start_in(dir, &config(&upstream.http_url())).await
}

#[tokio::test]
async fn a_declared_length_over_max_body_is_refused_up_front() {
    let upstream = Upstream::http().await;
    let sidecar = sidecar(&upstream).await;
    let body = "x".repeat((1 << 20) + 1);
    let answer = send(
        sidecar.proxy(),
        post("http://api.paypay.test/v2/upload", "text/plain", &body),
    )
    .await;
    assert_eq!(answer.status, 413);
    assert_eq!(answer.header("x-countersign-error"), Some("body-too-large"));
    assert!(upstream.received().is_empty());
}

#[tokio::test]
async fn a_streamed_body_over_max_body_is_refused_and_its_spool_file_removed() {
    let upstream = Upstream::http().await;
    let sidecar = sidecar(&upstream).await;
    let spool = sidecar.dir.path().join("spool");
    let (tx, body) = channel_body();
    let req = http::Request::post("http://api.paypay.test/v2/upload")
        .header("content-type", "application/octet-stream")
        .body(body)
        .unwrap();
    let proxy = sidecar.proxy();
    let exchange = tokio::spawn(async move { try_send(proxy, req).await });
    let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
    // Keep sending until countersign gives up: 17 chunks pass the 1 MiB limit.
    for _ in 0..17 {
        if tx.send(Ok(chunk.clone())).await.is_err() {
            break;
        }
    }
    let answer = exchange.await.unwrap().expect("countersign answers");
    assert_eq!(answer.status, 413);
    assert!(upstream.received().is_empty());
    eventually("the spool file is closed", || open_files_in(&spool) == 0).await;
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 0);
}

#[tokio::test]
async fn a_client_that_disconnects_mid_upload_leaves_no_spool_file() {
    let upstream = Upstream::http().await;
    let sidecar = sidecar(&upstream).await;
    let spool = sidecar.dir.path().join("spool");
    let (tx, body) = channel_body();
    let req = http::Request::post("http://api.paypay.test/v2/upload")
        .header("content-type", "application/octet-stream")
        .body(body)
        .unwrap();
    let proxy = sidecar.proxy();
    let exchange = tokio::spawn(async move { try_send(proxy, req).await });
    let chunk = Bytes::from(vec![b'x'; 32 * 1024]);
    for _ in 0..8 {
        tx.send(Ok(chunk.clone())).await.unwrap();
    }
    // 256 KiB is past spool_memory: the body is now in a temp file.
    eventually("the body spools to disk", || open_files_in(&spool) == 1).await;
    exchange.abort();
    drop(tx);
    eventually("the spool file is closed after the disconnect", || {
        open_files_in(&spool) == 0
    })
    .await;
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 0);
    assert!(upstream.received().is_empty());
}
