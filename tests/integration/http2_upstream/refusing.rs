//! h2's own failures, played by an upstream built on the h2 crate (and, for
//! a GOAWAY below the request's stream, by raw frames): a request the
//! upstream says it never processed is sent once more, signed afresh,
//! through the pool (after a GOAWAY, on a new connection); a stream reset
//! otherwise, or one whose streamed body is spent, is not.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use bytes::Bytes;
use md5::Digest as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::{metric, KEY, SECRET};
use crate::harness::*;

/// What the first connection does with its first request.
#[derive(Clone, Copy, PartialEq, Eq)]
enum First {
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

struct H2Upstream {
    port: u16,
    /// Every request an h2 connection accepted (a refused one with no body).
    seen: Arc<Mutex<Vec<Recorded>>>,
    /// HEADERS frames the raw GOAWAY connection read.
    goaway_headers: Arc<AtomicUsize>,
    /// TCP connections accepted.
    accepted: Arc<AtomicUsize>,
}

impl H2Upstream {
    async fn start(ca: &TestCa, first: First) -> H2Upstream {
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

    fn seen(&self) -> Vec<Recorded> {
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
