//! Real upstreams on 127.0.0.1:0, plain or TLS, that record exactly what
//! they received; and the PayPay check of a recorded request.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use md5::Digest as _;
use tokio::net::TcpListener;

use super::*;

/// How much of each body an upstream keeps (the rest is only counted/hashed).
const KEEP: usize = 1 << 20;

/// What an upstream received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: http::Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub body_len: u64,
    /// base64(MD5(Content-Type ++ body)), computed while receiving.
    pub opa_md5: String,
    /// Common name of the client certificate presented, if any (mTLS).
    pub peer: Option<String>,
    /// HTTP/1.1, or HTTP/2 when the upstream offered h2 and it was chosen.
    pub version: http::Version,
    /// Which of the upstream's connections (counted from 1) carried it.
    pub connection: usize,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A real upstream on 127.0.0.1:0, plain or TLS.
pub struct Upstream {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Recorded>>>,
    connections: Arc<std::sync::atomic::AtomicUsize>,
}

#[derive(Clone, Default)]
pub struct Behaviour {
    /// Wait this long before answering.
    pub delay: Option<Duration>,
    /// Answer with this redirect instead of 200.
    pub redirect_to: Option<String>,
    /// Answer only once this gate lets the request pass (after the request
    /// is recorded, so a test can look at countersign mid-request).
    pub gate: Option<gate::Gate>,
}

impl Upstream {
    pub async fn http() -> Upstream {
        Upstream::start(None, Behaviour::default()).await
    }

    pub async fn https(ca: &TestCa) -> Upstream {
        Upstream::start(Some(ca.server_config()), Behaviour::default()).await
    }

    pub async fn http_with(behaviour: Behaviour) -> Upstream {
        Upstream::start(None, behaviour).await
    }

    /// A TLS upstream that demands a client certificate issued by `clients`.
    pub async fn https_mtls(ca: &TestCa, clients: &TestCa) -> Upstream {
        Upstream::start(
            Some(ca.server_config_requiring(clients)),
            Behaviour::default(),
        )
        .await
    }

    /// A TLS upstream that offers `alpn` (most wanted first) and speaks
    /// HTTP/2 on a connection where the client chose h2.
    pub async fn https_alpn(config: Arc<rustls::ServerConfig>, alpn: &[&[u8]]) -> Upstream {
        let mut config = (*config).clone();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Upstream::start(Some(Arc::new(config)), Behaviour::default()).await
    }

    /// A TLS upstream that offers h2 then http/1.1.
    pub async fn https_h2(ca: &TestCa) -> Upstream {
        Upstream::https_alpn(ca.server_config(), &[b"h2", b"http/1.1"]).await
    }

    async fn start(tls: Option<Arc<rustls::ServerConfig>>, behaviour: Behaviour) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&received);
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let accepted = Arc::clone(&connections);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let connection = accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                let log = Arc::clone(&log);
                let acceptor = acceptor.clone();
                let behaviour = behaviour.clone();
                tokio::spawn(async move {
                    let service = |peer: Option<String>| {
                        service_fn(move |req| {
                            let log = Arc::clone(&log);
                            let behaviour = behaviour.clone();
                            let peer = peer.clone();
                            async move {
                                Ok::<_, Infallible>(
                                    record(req, log, behaviour, peer, connection).await,
                                )
                            }
                        })
                    };
                    let builder = hyper::server::conn::http1::Builder::new();
                    match acceptor {
                        Some(a) => {
                            if let Ok(tls) = a.accept(stream).await {
                                let peer = tls
                                    .get_ref()
                                    .1
                                    .peer_certificates()
                                    .and_then(|c| common_name(&c[0]));
                                if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                                    let _ = hyper::server::conn::http2::Builder::new(
                                        hyper_util::rt::TokioExecutor::new(),
                                    )
                                    .serve_connection(TokioIo::new(tls), service(peer))
                                    .await;
                                    return;
                                }
                                let _ = builder
                                    .serve_connection(TokioIo::new(tls), service(peer))
                                    .await;
                            }
                        }
                        None => {
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service(None))
                                .await;
                        }
                    }
                });
            }
        });
        Upstream {
            addr,
            received,
            connections,
        }
    }

    /// How many connections the upstream has accepted.
    pub fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.addr.port())
    }

    pub fn https_url(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }

    pub fn received(&self) -> Vec<Recorded> {
        self.received.lock().unwrap().clone()
    }

    pub fn last(&self) -> Recorded {
        self.received()
            .pop()
            .expect("the upstream received a request")
    }
}

fn common_name(cert: &rustls_pki_types::CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert).ok()?;
    let cn = parsed
        .subject()
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    Some(cn)
}

async fn record(
    req: Request<Incoming>,
    log: Arc<Mutex<Vec<Recorded>>>,
    behaviour: Behaviour,
    peer: Option<String>,
    connection: usize,
) -> Response<Full<Bytes>> {
    let (parts, mut body) = req.into_parts();
    let mut md5 = md5::Md5::new();
    if let Some(ct) = parts.headers.get(http::header::CONTENT_TYPE) {
        md5.update(ct.as_bytes());
    }
    let mut kept = Vec::new();
    let mut len = 0u64;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Response::builder()
                .status(400)
                .body(Full::new(Bytes::from("broken body")))
                .unwrap();
        };
        if let Ok(data) = frame.into_data() {
            md5.update(&data);
            len += data.len() as u64;
            let room = KEEP.saturating_sub(kept.len());
            kept.extend_from_slice(&data[..room.min(data.len())]);
        }
    }
    log.lock().unwrap().push(Recorded {
        version: parts.version,
        connection,
        method: parts.method,
        uri: parts.uri,
        headers: parts.headers,
        body: kept,
        body_len: len,
        opa_md5: base64::engine::general_purpose::STANDARD.encode(md5.finalize()),
        peer,
    });
    if let Some(location) = behaviour.redirect_to {
        return Response::builder()
            .status(302)
            .header("location", location)
            .body(Full::new(Bytes::new()))
            .unwrap();
    }
    if let Some(d) = behaviour.delay {
        tokio::time::sleep(d).await;
    }
    if let Some(gate) = behaviour.gate {
        gate.pass().await;
    }
    Response::builder()
        .header("x-upstream", "yes")
        .header("connection", "keep-alive, x-hop")
        .header("x-hop", "must not reach the app")
        .body(Full::new(Bytes::from(format!("upstream saw {len} bytes"))))
        .unwrap()
}

/// Checks an `Authorization: hmac OPA-Auth:...` header against what the
/// upstream received, the way PayPay's server does: recompute and compare.
pub fn verify_opa(r: &Recorded, api_key: &str, api_secret: &str) -> Result<(), String> {
    use hmac::Mac;
    let auth = r.header("authorization").ok_or("no Authorization header")?;
    let fields = auth
        .strip_prefix("hmac OPA-Auth:")
        .ok_or_else(|| format!("not an OPA-Auth header: {auth}"))?;
    let parts: Vec<&str> = fields.split(':').collect();
    let [key, mac, nonce, epoch, hash] = parts[..] else {
        return Err(format!("expected 5 fields, got {}", parts.len()));
    };
    if key != api_key {
        return Err(format!("api key {key}"));
    }
    let (content_type, expected_hash) = if r.body_len == 0 {
        ("empty".to_string(), "empty".to_string())
    } else {
        (
            r.header("content-type").unwrap_or_default().to_string(),
            r.opa_md5.clone(),
        )
    };
    if hash != expected_hash {
        return Err(format!("body hash {hash}, recomputed {expected_hash}"));
    }
    let input = format!(
        "{}\n{}\n{nonce}\n{epoch}\n{content_type}\n{hash}",
        r.uri.path(),
        r.method
    );
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(api_secret.as_bytes()).unwrap();
    m.update(input.as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes());
    if mac != expected {
        return Err(format!("mac {mac}, recomputed {expected} over {input:?}"));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let epoch: u64 = epoch.parse().map_err(|_| "epoch is not a number")?;
    if now.abs_diff(epoch) > 120 {
        return Err(format!(
            "epoch {epoch} is more than 2 minutes from now ({now})"
        ));
    }
    Ok(())
}
