//! Global bounds (issue 9, item 4): memory held by stalled uploads, body
//! read deadlines, connection and file-descriptor limits. Most tests run
//! the compiled binary, so its memory and its file descriptors are its own.

mod connections;
mod deadline;
mod h2;
mod max_body;
mod memory;
mod signing_memory;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::harness::*;

/// Opens a connection to the forward proxy and sends the head of a signed
/// upload of `declared` bytes plus its first `sent` bytes, then stalls. The
/// stream is returned so the caller decides when the client goes away.
pub async fn stalled_upload(
    proxy: SocketAddr,
    host: &str,
    declared: u64,
    sent: usize,
) -> std::io::Result<TcpStream> {
    let mut stream = TcpStream::connect(proxy).await?;
    let head = format!(
        "POST http://{host}/v2/upload HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/octet-stream\r\nContent-Length: {declared}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await?;
    let chunk = vec![b'u'; 64 << 10];
    let mut left = sent;
    while left > 0 {
        let n = left.min(chunk.len());
        stream.write_all(&chunk[..n]).await?;
        left -= n;
    }
    stream.flush().await?;
    Ok(stream)
}

/// The value of the sample `name{labels}` in a metrics text, if present.
pub fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The admin listener's metrics text.
pub async fn scrape(admin: SocketAddr) -> String {
    let answer = send(admin, get("/metrics")).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    answer.body
}

/// A signed route (paypay-opa hashes every body) to `upstream`.
pub fn signed_route(upstream: &str) -> String {
    format!(
        r#"
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

/// How long a test waits for something that must happen soon.
pub const SOON: Duration = Duration::from_secs(20);
