//! A raw HTTP/1.1 upstream on 127.0.0.1:0, written over a bare TcpListener
//! so it can misbehave the way real servers do with keep-alive: close a
//! connection right after each response (without `Connection: close`), or
//! close it after a short idle time. It records every request it read in
//! full, as the harness's `Recorded`, so signatures can be checked.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use http::{HeaderMap, HeaderName, HeaderValue};
use md5::Digest as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::harness::Recorded;

#[derive(Clone, Copy, Debug)]
pub enum Closing {
    /// Close a connection that has been idle this long after an answer
    /// (the first request of a connection may take its time).
    IdleAfter(Duration),
    /// Answer the first request of each connection; close the connection
    /// the moment a second one arrives, without reading it: the keep-alive
    /// race, every time.
    WhenReused,
    /// Read the first request of each connection, then close without a
    /// word.
    WithoutAnswer,
    /// Answer the first request; read the second, send half a status line
    /// and close.
    HalfAnswerWhenReused,
}

pub struct RawUpstream {
    pub addr: std::net::SocketAddr,
    received: Arc<Mutex<Vec<Recorded>>>,
    connections: Arc<std::sync::atomic::AtomicUsize>,
}

impl RawUpstream {
    pub async fn start(closing: Closing) -> RawUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (log, accepted) = (Arc::clone(&received), Arc::clone(&connections));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                accepted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(serve(stream, closing, Arc::clone(&log)));
            }
        });
        RawUpstream {
            addr,
            received,
            connections,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.addr.port())
    }

    pub fn received(&self) -> Vec<Recorded> {
        self.received.lock().unwrap().clone()
    }

    pub fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }
}

const REPLY: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Upstream: raw\r\n\r\nok";

async fn serve(mut stream: TcpStream, closing: Closing, log: Arc<Mutex<Vec<Recorded>>>) {
    let mut buf = Vec::new();
    let record = |r: Recorded| log.lock().unwrap().push(r);
    match closing {
        Closing::IdleAfter(idle) => {
            for wait in std::iter::once(Duration::from_secs(10)).chain(std::iter::repeat(idle)) {
                let read = tokio::time::timeout(wait, read_request(&mut stream, &mut buf)).await;
                let Ok(Ok(Some(r))) = read else { return };
                record(r);
                if stream.write_all(REPLY).await.is_err() {
                    return;
                }
            }
        }
        Closing::WhenReused => {
            let Ok(Some(r)) = read_request(&mut stream, &mut buf).await else {
                return;
            };
            record(r);
            if stream.write_all(REPLY).await.is_err() {
                return;
            }
            // Dropped with the next request unread: the kernel resets.
            let _ = stream.readable().await;
        }
        Closing::WithoutAnswer => {
            if let Ok(Some(r)) = read_request(&mut stream, &mut buf).await {
                record(r);
            }
        }
        Closing::HalfAnswerWhenReused => {
            for reply in [REPLY, b"HTTP/1.1 2"] {
                let Ok(Some(r)) = read_request(&mut stream, &mut buf).await else {
                    return;
                };
                record(r);
                if stream.write_all(reply).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// One whole request (head and a Content-Length body), or `None` at a clean
/// end of the connection.
async fn read_request(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<Recorded>> {
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut start = lines.next().unwrap_or_default().split(' ');
    let method: http::Method = start.next().unwrap_or("GET").parse().unwrap();
    let uri: http::Uri = start.next().unwrap_or("/").parse().unwrap();
    let mut headers = HeaderMap::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').unwrap();
        headers.append(
            HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
            HeaderValue::from_str(value.trim()).unwrap(),
        );
    }
    let len: usize = headers
        .get("content-length")
        .map_or(0, |v| v.to_str().unwrap().parse().unwrap());
    while buf.len() < head_end + len {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[head_end..head_end + len].to_vec();
    buf.drain(..head_end + len);
    let mut md5 = md5::Md5::new();
    if let Some(ct) = headers.get("content-type") {
        md5.update(ct.as_bytes());
    }
    md5.update(&body);
    Ok(Some(Recorded {
        method,
        uri,
        headers,
        body_len: body.len() as u64,
        body,
        opa_md5: base64::engine::general_purpose::STANDARD.encode(md5.finalize()),
        peer: None,
        version: http::Version::HTTP_11,
        connection: 0,
    }))
}
