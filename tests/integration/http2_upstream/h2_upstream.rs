//! An HTTP/2 upstream on the h2 crate that misbehaves on its first
//! connection as a test asks (refuses or resets the first stream, drains
//! after the first request), or, for a GOAWAY below the request's stream,
//! speaks just enough raw HTTP/2 to send one. Later connections serve and
//! record every request.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use bytes::Bytes;
use md5::Digest as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::harness::*;

/// What the first connection does with its first request.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum First {
    /// RST_STREAM REFUSED_STREAM: not processed.
    Refuse,
    /// RST_STREAM INTERNAL_ERROR: it may have been acted on.
    Reset,
    /// GOAWAY with last-stream-id 0, below the request's stream.
    GoAway,
    /// Serves its first request and shuts down gracefully (GOAWAY), as a
    /// server does at its requests-per-connection limit.
    Drain,
}

pub struct H2Upstream {
    pub port: u16,
    /// Every request an h2 connection accepted (a refused one with no body).
    seen: Arc<Mutex<Vec<Recorded>>>,
    /// HEADERS frames the raw GOAWAY connection read.
    pub goaway_headers: Arc<AtomicUsize>,
    /// TCP connections accepted.
    pub accepted: Arc<AtomicUsize>,
}

impl H2Upstream {
    pub async fn start(ca: &TestCa, first: First) -> H2Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut config = (*ca.server_config()).clone();
        config.alpn_protocols = vec![b"h2".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let goaway_headers = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (log, frames, count) = (
            Arc::clone(&seen),
            Arc::clone(&goaway_headers),
            Arc::clone(&accepted),
        );
        tokio::spawn(async move {
            for n in 1.. {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                count.fetch_add(1, Ordering::Relaxed);
                let Ok(tls) = acceptor.accept(tcp).await else {
                    continue;
                };
                let (log, frames) = (Arc::clone(&log), Arc::clone(&frames));
                tokio::spawn(async move {
                    if n == 1 && first == First::GoAway {
                        goaway_on_first_headers(tls, frames).await;
                    } else {
                        let misbehave = (n == 1).then_some(first);
                        serve(tls, n, misbehave, log).await;
                    }
                });
            }
        });
        H2Upstream {
            port,
            seen,
            goaway_headers,
            accepted,
        }
    }

    pub fn seen(&self) -> Vec<Recorded> {
        self.seen.lock().unwrap().clone()
    }
}

/// Serves h2 with the h2 crate, recording each request; on connection 1
/// the first stream is reset as `misbehave` says.
async fn serve<T>(tls: T, n: usize, misbehave: Option<First>, log: Arc<Mutex<Vec<Recorded>>>)
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let Ok(mut conn) = h2::server::handshake(tls).await else {
        return;
    };
    let mut first = true;
    let mut accepted = 0;
    while let Some(Ok((req, mut respond))) = conn.accept().await {
        accepted += 1;
        if misbehave == Some(First::Drain) && accepted == 1 {
            conn.graceful_shutdown();
        }
        let (parts, mut body) = req.into_parts();
        let reset = match misbehave {
            Some(First::Refuse) if first => Some(h2::Reason::REFUSED_STREAM),
            Some(First::Reset) if first => Some(h2::Reason::INTERNAL_ERROR),
            _ => None,
        };
        first = false;
        if let Some(reason) = reset {
            log.lock()
                .unwrap()
                .push(recorded(parts, Vec::new(), n, String::new()));
            respond.send_reset(reason);
            continue;
        }
        let log = Arc::clone(&log);
        tokio::spawn(async move {
            let mut md5 = md5::Md5::new();
            if let Some(ct) = parts.headers.get(http::header::CONTENT_TYPE) {
                md5.update(ct.as_bytes());
            }
            let mut kept = Vec::new();
            while let Some(Ok(chunk)) = body.data().await {
                let _ = body.flow_control().release_capacity(chunk.len());
                md5.update(&chunk);
                kept.extend_from_slice(&chunk);
            }
            let md5 = base64::engine::general_purpose::STANDARD.encode(md5.finalize());
            log.lock().unwrap().push(recorded(parts, kept, n, md5));
            let resp = http::Response::builder().status(200).body(()).unwrap();
            if let Ok(mut stream) = respond.send_response(resp, false) {
                let _ = stream.send_data(Bytes::from_static(b"ok"), true);
            }
        });
    }
}

fn recorded(parts: http::request::Parts, body: Vec<u8>, n: usize, opa_md5: String) -> Recorded {
    Recorded {
        method: parts.method,
        uri: parts.uri,
        headers: parts.headers,
        body_len: body.len() as u64,
        body,
        opa_md5,
        peer: None,
        version: parts.version,
        connection: n,
    }
}

/// Speaks just enough HTTP/2 to answer the first HEADERS frame with a
/// GOAWAY whose last-stream-id is 0: the upstream processed no stream.
async fn goaway_on_first_headers<T>(mut tls: T, headers: Arc<AtomicUsize>)
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    const SETTINGS: [u8; 9] = [0, 0, 0, 4, 0, 0, 0, 0, 0];
    const SETTINGS_ACK: [u8; 9] = [0, 0, 0, 4, 1, 0, 0, 0, 0];
    // Length 8, type GOAWAY, stream 0; last-stream-id 0, NO_ERROR.
    const GOAWAY: [u8; 17] = [0, 0, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let mut preface = [0u8; 24];
    if tls.write_all(&SETTINGS).await.is_err() || tls.read_exact(&mut preface).await.is_err() {
        return;
    }
    assert_eq!(&preface, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    loop {
        let mut head = [0u8; 9];
        if tls.read_exact(&mut head).await.is_err() {
            return;
        }
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let mut payload = vec![0u8; len];
        if tls.read_exact(&mut payload).await.is_err() {
            return;
        }
        let reply: &[u8] = match (head[3], head[4] & 1) {
            (4, 0) => &SETTINGS_ACK,
            (1, _) => {
                headers.fetch_add(1, Ordering::Relaxed);
                &GOAWAY
            }
            _ => continue,
        };
        if tls.write_all(reply).await.is_err() || tls.flush().await.is_err() {
            return;
        }
    }
}
