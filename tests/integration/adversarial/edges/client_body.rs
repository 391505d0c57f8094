//! The app's body, the app's fault: a malformed chunked body is answered
//! 400 `client-body`, also on a route that streams it upstream (it was 502
//! `upstream-failed`, blaming the upstream).

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
