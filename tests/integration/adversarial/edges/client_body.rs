//! The app's body, the app's fault: a malformed chunked body is answered
//! 400 `client-body`, also on a route that streams it upstream (it was 502
//! `upstream-failed`, blaming the upstream); and a body that cannot be
//! signed is refused before `100 Continue` invites it.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::*;

fn config(upstream: &str) -> String {
    format!(
        r#"
[proxy]
listen = "127.0.0.1:0"

[credential.paypay]
type = "paypay-opa"
api_key = "key"
api_secret = "secret"

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

/// Reads until the end of the first response head (status line and
/// headers), or the connection's end.
async fn first_head(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut byte)).await {
            Ok(Ok(1)) => got.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Writes `bytes` to `addr`; the stream and the first response head.
async fn raw(addr: SocketAddr, bytes: &[u8]) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let head = first_head(&mut stream).await;
    (stream, head)
}

#[tokio::test]
async fn a_malformed_chunked_body_is_the_apps_fault_on_every_route() {
    let upstream = Upstream::http().await;
    let sidecar = Sidecar::start(&config(&upstream.http_url())).await;
    for (host, content_type) in [
        ("plain.test", "text/plain"),
        ("api.paypay.test", "application/json"),
    ] {
        let request = format!(
            "POST http://{host}/up HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZ\r\n"
        );
        let (_, head) = raw(sidecar.proxy(), request.as_bytes()).await;
        assert!(head.starts_with("HTTP/1.1 400"), "{host}: {head}");
        assert!(
            head.contains("x-countersign-error: client-body"),
            "{host}: {head}"
        );
    }
}

/// The refusal comes first: `100 Continue` would tell the app to send a
/// body countersign is about to refuse.
#[tokio::test]
async fn a_body_that_cannot_be_signed_is_refused_before_100_continue() {
    let upstream = Upstream::http().await;
    let sidecar = Sidecar::start(&config(&upstream.http_url())).await;
    for framing in ["Content-Length: 10", "Transfer-Encoding: chunked"] {
        let request = format!(
            "POST http://api.paypay.test/v2/codes HTTP/1.1\r\nHost: api.paypay.test\r\n{framing}\r\nExpect: 100-continue\r\n\r\n"
        );
        let (_, head) = raw(sidecar.proxy(), request.as_bytes()).await;
        assert!(head.starts_with("HTTP/1.1 400"), "{framing}: {head}");
        assert!(
            head.contains("x-countersign-error: unsignable-request"),
            "{framing}: {head}"
        );
    }
    assert!(upstream.received().is_empty());
}

/// A request that can be signed still gets `100 Continue`, then its answer.
#[tokio::test]
async fn a_signable_body_still_gets_100_continue_then_the_answer() {
    let upstream = Upstream::http().await;
    let sidecar = Sidecar::start(&config(&upstream.http_url())).await;
    let head = "POST http://api.paypay.test/v2/codes HTTP/1.1\r\nHost: api.paypay.test\r\nContent-Type: application/json\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n";
    let (mut stream, first) = raw(sidecar.proxy(), head.as_bytes()).await;
    assert!(first.starts_with("HTTP/1.1 100"), "{first}");
    stream.write_all(b"{}").await.unwrap();
    let answer = first_head(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let got = upstream.last();
    assert_eq!(got.body, b"{}");
    assert!(got.header("expect").is_none());
    verify_opa(&got, "key", "secret").unwrap();
}
