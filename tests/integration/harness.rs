//! Test servers, a test CA, a sidecar started from a TOML string, and a
//! client that talks to it the way an app behind HTTP_PROXY does.

#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use countersign::{App, StartOptions};
use http::{HeaderMap, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use md5::Digest as _;
use tokio::net::{TcpListener, TcpStream};

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
                accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let log = Arc::clone(&log);
                let acceptor = acceptor.clone();
                let behaviour = behaviour.clone();
                tokio::spawn(async move {
                    let service = |peer: Option<String>| {
                        service_fn(move |req| {
                            let log = Arc::clone(&log);
                            let behaviour = behaviour.clone();
                            let peer = peer.clone();
                            async move { Ok::<_, Infallible>(record(req, log, behaviour, peer).await) }
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
    Response::builder()
        .header("x-upstream", "yes")
        .header("connection", "keep-alive, x-hop")
        .header("x-hop", "must not reach the app")
        .body(Full::new(Bytes::from(format!("upstream saw {len} bytes"))))
        .unwrap()
}

/// A throwaway CA and a `localhost`/127.0.0.1 server certificate it signed.
pub struct TestCa {
    pub ca_pem: String,
    leaf_pem: String,
    leaf_key_der: Vec<u8>,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    pub fn new() -> TestCa {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
        let mut ca_params = CertificateParams::new(Vec::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "countersign test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let mut leaf =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        leaf.distinguished_name
            .push(rcgen::DnType::CommonName, "localhost");
        let leaf_key = KeyPair::generate().unwrap();
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
        TestCa {
            ca_pem: ca_cert.pem(),
            leaf_pem: leaf_cert.pem(),
            leaf_key_der: leaf_key.serialize_der(),
            issuer,
        }
    }

    /// The `localhost` server certificate and its key, as PEM.
    pub fn server_cert_pem(&self) -> (String, String) {
        let key = rustls_pki_types::PrivatePkcs8KeyDer::from(self.leaf_key_der.clone());
        let key = rcgen::KeyPair::try_from(&key).unwrap();
        (self.leaf_pem.clone(), key.serialize_pem())
    }

    /// A client certificate and key (PEM) with common name `cn`, valid
    /// until `not_after` days from now (negative: already expired).
    pub fn client_cert(&self, cn: &str, not_after_days: i64) -> (String, String) {
        let mut params = rcgen::CertificateParams::new(Vec::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(30);
        params.not_after = now + time::Duration::days(not_after_days);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// Like `server_config`, but a client certificate from `clients` is required.
    pub fn server_config_requiring(&self, clients: &TestCa) -> Arc<rustls::ServerConfig> {
        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_pki_types::CertificateDer::pem_slice_iter(clients.ca_pem.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::clone(&provider),
        )
        .build()
        .unwrap();
        let certs = rustls_pki_types::CertificateDer::pem_slice_iter(self.leaf_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = rustls_pki_types::PrivateKeyDer::Pkcs8(self.leaf_key_der.clone().into());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
            .unwrap();
        Arc::new(config)
    }

    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        use rustls_pki_types::pem::PemObject;
        let certs = rustls_pki_types::CertificateDer::pem_slice_iter(self.leaf_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = rustls_pki_types::PrivateKeyDer::Pkcs8(self.leaf_key_der.clone().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        Arc::new(config)
    }

    /// Writes the CA certificate into `dir` and returns the path.
    pub fn write_ca(&self, dir: &Path) -> PathBuf {
        let path = dir.join("upstream-ca.pem");
        std::fs::write(&path, &self.ca_pem).unwrap();
        path
    }
}

/// countersign started in-process from a config file in its own temp folder.
pub struct Sidecar {
    pub app: App,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
}

impl Sidecar {
    /// `toml` may say `DIR` for the sidecar's temp folder.
    pub async fn start(toml: &str) -> Sidecar {
        let dir = tempfile::tempdir().unwrap();
        Sidecar::start_in(dir, toml).await
    }

    pub async fn start_in(dir: tempfile::TempDir, toml: &str) -> Sidecar {
        let config_path = dir.path().join("proxy.toml");
        write_atomically(
            &config_path,
            &with_free_admin_port(&toml.replace("DIR", &dir.path().display().to_string())),
        );
        let options = StartOptions {
            watch_files: true,
            reload_on_sighup: false,
        };
        let app = App::start(&config_path, options)
            .await
            .expect("countersign starts");
        Sidecar {
            app,
            dir,
            config_path,
        }
    }

    pub fn proxy(&self) -> SocketAddr {
        self.app.proxy_addr()
    }

    /// Replaces the config file the way editors and Kubernetes do (new file,
    /// then rename), so no reader ever sees half a file.
    pub fn rewrite(&self, toml: &str) {
        write_atomically(
            &self.config_path,
            &with_free_admin_port(&toml.replace("DIR", &self.dir.path().display().to_string())),
        );
    }

    /// Waits (bounded) until the generation passes `after`.
    pub async fn wait_for_generation(&self, after: u64) -> u64 {
        let mut rx = self.app.generations();
        let wait = rx.wait_for(|g| *g > after);
        let g = tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .expect("a reload happened within 10s")
            .expect("the app is running");
        *g
    }
}

/// Tests run in parallel: unless a config says otherwise, its admin
/// listener takes a port the OS picks instead of the fixed default.
pub fn with_free_admin_port(toml: &str) -> String {
    if toml.contains("[admin]") {
        toml.to_string()
    } else {
        format!("{toml}\n[admin]\nlisten = \"127.0.0.1:0\"\n")
    }
}

pub fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp-write");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A response read to its end.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Sends one request over a fresh connection to `addr` (the proxy or a route
/// listener), with the URI exactly as given (absolute-form for the proxy).
pub async fn send<B>(addr: SocketAddr, req: Request<B>) -> Answer
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    try_send(addr, req)
        .await
        .expect("the exchange with countersign succeeds")
}

pub async fn try_send<B>(addr: SocketAddr, req: Request<B>) -> Result<Answer, String>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    exchange(stream, req).await
}

/// One HTTP/1.1 request over `io`, the response read to its end.
async fn exchange<I, B>(io: I, req: Request<B>) -> Result<Answer, String>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(Answer {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

pub fn get(url: &str) -> Request<Full<Bytes>> {
    Request::get(url).body(Full::new(Bytes::new())).unwrap()
}

pub fn post(url: &str, content_type: &str, body: &str) -> Request<Full<Bytes>> {
    Request::post(url)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body.to_string())))
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

/// A request body the test feeds chunk by chunk; dropping the sender ends it
/// cleanly, `abort` ends it with an error (a client that went away).
pub struct ChannelBody {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
}

pub fn channel_body() -> (
    tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    ChannelBody,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    (tx, ChannelBody { rx })
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        self.rx
            .poll_recv(cx)
            .map(|o| o.map(|r| r.map(hyper::body::Frame::data)))
    }
}

/// Open file descriptors of this process that point into `dir` (spool files
/// show up as `DIR/#123 (deleted)` or `DIR/.tmpXYZ (deleted)`).
pub fn open_files_in(dir: &Path) -> usize {
    let prefix = dir.display().to_string();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.display().to_string().starts_with(&prefix))
        .count()
}

/// Polls `condition` every 10ms for up to 10s.
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// Opens a CONNECT tunnel through the proxy the way an HTTPS_PROXY client
/// does. Returns the stream after a 200, or the status line.
pub async fn connect_tunnel(proxy: SocketAddr, target: &str) -> Result<TcpStream, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(proxy).await.map_err(|e| e.to_string())?;
    let head = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    // Byte by byte, so nothing after the response head is consumed.
    while !buf.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!("proxy closed: {}", String::from_utf8_lossy(&buf)));
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    if head.starts_with("HTTP/1.1 200") {
        Ok(stream)
    } else {
        Err(head)
    }
}

/// TLS over `stream` to `server_name`, trusting only `ca_pem`, then one
/// HTTP/1.1 request.
pub async fn https_over(
    stream: TcpStream,
    server_name: &str,
    ca_pem: &str,
    req: Request<Full<Bytes>>,
) -> Result<Answer, String> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from(server_name.to_string()).unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .map_err(|e| format!("TLS: {e}"))?;
    exchange(tls, req).await
}
