//! Dials upstreams: resolve, TCP connect with a deadline, then TLS when the
//! URI scheme is `https`. Plugged into hyper-util's pooled client, which is
//! told when ALPN chose h2 (`Connected::negotiated_h2`) and then speaks
//! HTTP/2 on the connection and shares it; dials to an upstream known to
//! pick h2 go one at a time (`gate.rs`).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;

use super::gate::{self, DialGate, Turn};
use super::protocol::{Opened, Protocol};
use super::usage::ConnUsage;
use crate::egress::{EgressError, EgressPolicy, Trust};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

#[derive(Clone)]
pub struct Connector {
    pub tls: TlsConnector,
    pub connect_timeout: Duration,
    /// Server name sent instead of the URI's host.
    pub sni: Option<String>,
    pub egress: Arc<EgressPolicy>,
    pub trust: Trust,
    /// Connections opened, by protocol.
    pub opened: Arc<Opened>,
    /// For a pooled client that offers h2: one dial at a time to an
    /// upstream known to pick it (`gate.rs`).
    pub gate: Option<Arc<DialGate>>,
}

/// Which step of reaching the upstream failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectErrorKind {
    Resolve,
    Refused,
    Timeout,
    Tls,
    /// Egress policy refused the destination.
    Forbidden,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", describe(*kind, detail))]
pub struct ConnectError {
    pub kind: ConnectErrorKind,
    detail: String,
}

fn describe(kind: ConnectErrorKind, detail: &str) -> String {
    let step = match kind {
        ConnectErrorKind::Resolve => "name resolution failed",
        ConnectErrorKind::Refused => "TCP connection failed",
        ConnectErrorKind::Timeout => "connection timed out",
        ConnectErrorKind::Tls => "TLS handshake failed",
        ConnectErrorKind::Forbidden => "destination refused",
    };
    format!("{step}: {detail}")
}

impl ConnectError {
    pub fn new(kind: ConnectErrorKind, detail: impl ToString) -> Self {
        ConnectError {
            kind,
            detail: detail.to_string(),
        }
    }
}

/// A name that does not resolve is unreachable (502); an address the
/// egress policy refuses is forbidden (403).
impl From<EgressError> for ConnectError {
    fn from(e: EgressError) -> Self {
        let kind = match e {
            EgressError::Resolve { .. } | EgressError::NoAddress { .. } => {
                ConnectErrorKind::Resolve
            }
            EgressError::Blocked { .. } | EgressError::SelfLoop { .. } => {
                ConnectErrorKind::Forbidden
            }
        };
        ConnectError::new(kind, e)
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<UpstreamStream>;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { this.connect(uri).await.map(TokioIo::new) })
    }
}

impl Connector {
    async fn connect(self, uri: Uri) -> Result<UpstreamStream, ConnectError> {
        let Some(gate) = self.gate.clone() else {
            return self.open(uri).await;
        };
        let authority = uri.authority().map(|a| a.to_string()).unwrap_or_default();
        let ticket = match gate.turn(&authority) {
            Turn::Free => None,
            Turn::Dial(ticket) => Some(ticket),
            Turn::Wait(rx) => {
                if gate::gave_h2(rx).await {
                    // The pool hands that connection to this request, which
                    // then drops this dial; give up only if it has not.
                    tokio::time::sleep(self.connect_timeout).await;
                    return Err(ConnectError::new(
                        ConnectErrorKind::Timeout,
                        format!("the h2 connection to {authority} made meanwhile was not handed over within {:?}", self.connect_timeout),
                    ));
                }
                None
            }
        };
        let stream = self.open(uri).await;
        if let Ok(s) = &stream {
            let h2 = s.protocol == Protocol::H2;
            gate.learn(&authority, h2);
            if let Some(ticket) = ticket {
                ticket.done(h2);
            }
        }
        stream
    }

    async fn open(self, uri: Uri) -> Result<UpstreamStream, ConnectError> {
        let https = uri.scheme_str() == Some("https");
        let host = uri
            .host()
            .ok_or_else(|| ConnectError::new(ConnectErrorKind::Resolve, "URI has no host"))?
            .trim_matches(['[', ']'])
            .to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let deadline = self.connect_timeout;
        let addrs = self
            .egress
            .resolve(&host, port, self.trust)
            .await
            .map_err(ConnectError::from)?;
        let tcp = tokio::time::timeout(deadline, dial(&addrs))
            .await
            .map_err(|_| {
                ConnectError::new(
                    ConnectErrorKind::Timeout,
                    format!("no connection to {host}:{port} within {deadline:?}"),
                )
            })??;
        let _ = tcp.set_nodelay(true);
        if !https {
            return Ok(self.opened(Transport::Plain(tcp), &host, port));
        }
        let name = ServerName::try_from(self.sni.clone().unwrap_or_else(|| host.clone())).map_err(
            |e| {
                ConnectError::new(
                    ConnectErrorKind::Tls,
                    format!("`{host}` is not a valid TLS server name: {e}"),
                )
            },
        )?;
        let tls = tokio::time::timeout(deadline, self.tls.connect(name, tcp))
            .await
            .map_err(|_| {
                ConnectError::new(
                    ConnectErrorKind::Timeout,
                    format!("TLS handshake with {host}:{port} took longer than {deadline:?}"),
                )
            })?
            .map_err(|e| ConnectError::new(ConnectErrorKind::Tls, tls_detail(&e)))?;
        Ok(self.opened(Transport::Tls(Box::new(tls)), &host, port))
    }

    /// A new connection, counted and logged with its protocol.
    fn opened(&self, transport: Transport, host: &str, port: u16) -> UpstreamStream {
        let protocol = match &transport {
            Transport::Plain(_) => Protocol::Http1,
            Transport::Tls(tls) => Protocol::from_alpn(tls.get_ref().1.alpn_protocol()),
        };
        self.opened.count(protocol);
        tracing::debug!(
            upstream = %format_args!("{host}:{port}"),
            protocol = protocol.label(),
            "upstream connection opened"
        );
        UpstreamStream {
            transport,
            usage: Arc::new(ConnUsage::new(protocol)),
            protocol,
        }
    }
}

/// rustls reports through io::Error; its inner error says what was wrong
/// with the certificate.
fn tls_detail(e: &io::Error) -> String {
    match e.get_ref() {
        Some(inner) => inner.to_string(),
        None => e.to_string(),
    }
}

/// Connects to the first of the checked addresses that answers.
pub async fn dial(addrs: &[SocketAddr]) -> Result<TcpStream, ConnectError> {
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(format!("{addr}: {e}")),
        }
    }
    Err(ConnectError::new(
        ConnectErrorKind::Refused,
        last.unwrap_or_else(|| "no address to connect to".to_string()),
    ))
}

/// A plain or TLS connection to an upstream, and what it has carried
/// (handed to hyper-util's pool as the connection's extra info, so answers
/// and failed sends can find it).
pub struct UpstreamStream {
    transport: Transport,
    usage: Arc<ConnUsage>,
    protocol: Protocol,
}

enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Connection for UpstreamStream {
    fn connected(&self) -> Connected {
        let connected = Connected::new().extra(Arc::clone(&self.usage));
        match self.protocol {
            Protocol::H2 => connected.negotiated_h2(),
            Protocol::Http1 => connected,
        }
    }
}

impl AsyncRead for UpstreamStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = match &mut this.transport {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        };
        if let Poll::Ready(Ok(())) = polled {
            this.usage.read(buf.filled().len() - before);
        }
        polled
    }
}

impl AsyncWrite for UpstreamStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.usage.writing();
        match &mut this.transport {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    /// hyper writes a request's headers and body chunks with one call when
    /// the transport takes several buffers; otherwise it copies every body
    /// byte into its own buffer first.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.usage.writing();
        match &mut this.transport {
            Transport::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.transport {
            Transport::Plain(s) => s.is_write_vectored(),
            Transport::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().transport {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().transport {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
