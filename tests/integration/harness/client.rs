//! The app's side: requests through the proxy or a route listener, bodies
//! fed chunk by chunk, and HTTPS through a CONNECT tunnel.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

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
    read_answer(resp).await
}

/// A response read to its end.
async fn read_answer(resp: http::Response<hyper::body::Incoming>) -> Result<Answer, String> {
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
    let tls = tls_over(stream, server_name, ca_pem, None).await?;
    exchange(tls, req).await
}

/// Like `https_over`, offering only h2 by ALPN, and speaking HTTP/2 when
/// the server chose it (an error otherwise). `req` needs an absolute URI.
pub async fn h2_over(
    stream: TcpStream,
    server_name: &str,
    ca_pem: &str,
    req: Request<Full<Bytes>>,
) -> Result<Answer, String> {
    let tls = tls_over(stream, server_name, ca_pem, Some(b"h2")).await?;
    if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
        return Err("the server did not choose h2".into());
    }
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        TokioIo::new(tls),
    )
    .await
    .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    assert_eq!(resp.version(), http::Version::HTTP_2);
    read_answer(resp).await
}

/// TLS over `stream` to `server_name`, trusting only `ca_pem`, offering
/// `alpn` (or no ALPN at all).
pub async fn tls_over(
    stream: TcpStream,
    server_name: &str,
    ca_pem: &str,
    alpn: Option<&[u8]>,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.into_iter().map(<[u8]>::to_vec).collect();
    let name = rustls_pki_types::ServerName::try_from(server_name.to_string()).unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .map_err(|e| format!("TLS: {e}"))
}
