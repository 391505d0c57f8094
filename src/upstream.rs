//! Upstream clients: pooled HTTP/1.1 keep-alive connections, or one shared
//! HTTP/2 connection per upstream when the client offers h2 and the upstream
//! picks it by ALPN (`protocol.rs`); TLS originated with rustls whenever the
//! route's upstream says `https`, whatever the app spoke. Each client owns
//! one pool and one set of trust roots, so routes with different roots or
//! client identities never share a connection. Connections are dialled
//! directly: `HTTP_PROXY` in countersign's own environment is never consulted.

pub(crate) mod connector;
mod gate;
mod protocol;
mod tls;
mod usage;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls_pki_types::CertificateDer;

use crate::body::{ClientBodyError, ProxyBody};
use crate::egress::{EgressPolicy, Trust};
use crate::pki::identity::ClientIdentity;
pub use connector::{ConnectError, ConnectErrorKind};
pub use protocol::{Opened, Protocol};
use usage::ConnUsage;

/// What makes two upstream clients different: each has its own pool, so
/// connections with different roots or client identities are never shared.
#[derive(Debug, Clone, Default)]
pub struct ClientSpec {
    pub extra_roots: Vec<CertificateDer<'static>>,
    pub identity: Option<ClientIdentity>,
    pub sni: Option<String>,
    /// `Trust::Named` for a route's upstream, `Untrusted` for passthrough.
    pub trust: Option<Trust>,
    /// Offer h2 by ALPN over TLS (a route's `http2`); off: HTTP/1.1 only.
    pub http2: bool,
}

/// Timeouts shared by every upstream client of a snapshot.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamSettings {
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    pub idle_timeout: Duration,
    /// Idle connections the pool keeps per upstream; one more is closed
    /// when its exchange ends.
    pub max_idle: usize,
}

pub struct UpstreamClient {
    client: Client<connector::Connector, ProxyBody>,
    /// Keeps no idle connection: every request it sends dials anew.
    fresh: Client<connector::Connector, ProxyBody>,
    response_timeout: Duration,
    opened: Arc<Opened>,
    /// Offers h2 over TLS: see `protocol::leave_host_to_connection`.
    http2: bool,
}

impl std::fmt::Debug for UpstreamClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamClient").finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot connect to upstream {authority}")]
    Connect {
        authority: String,
        #[source]
        source: ConnectError,
    },
    #[error("upstream {authority} sent no response headers within {timeout:?}")]
    Timeout {
        authority: String,
        timeout: Duration,
    },
    #[error("exchange with upstream {authority} failed")]
    Exchange {
        authority: String,
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    /// The keep-alive race: the upstream closed a connection that had
    /// answered an earlier request, before any byte of an answer to this
    /// one. Worth sending again on a new connection, if the body allows.
    #[error("upstream {authority} closed a reused connection before answering")]
    Closed {
        authority: String,
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    /// HTTP/2: the upstream said it did not process the request (it
    /// refused the stream, or its GOAWAY stopped below it). Safe to send
    /// again through the pool, whatever the method, if the body allows.
    #[error("upstream {authority} did not process the request (HTTP/2: stream refused, or above its GOAWAY)")]
    Unprocessed {
        authority: String,
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    /// The app's request body broke while it streamed upstream: the app's
    /// fault, not the upstream's.
    #[error("reading the request body from the app failed while sending it to {authority}")]
    ClientBody {
        authority: String,
        #[source]
        source: hyper_util::client::legacy::Error,
    },
}

impl UpstreamClient {
    /// A client that trusts the webpki roots plus `spec.extra_roots`, presents
    /// `spec.identity` when asked, and dials only what `egress` allows.
    pub fn new(
        spec: &ClientSpec,
        egress: Arc<EgressPolicy>,
        settings: UpstreamSettings,
    ) -> Result<Self, String> {
        UpstreamClient::counted(spec, egress, settings, Arc::default())
    }

    /// Like `new`, counting the connections it opens into `opened`.
    pub fn counted(
        spec: &ClientSpec,
        egress: Arc<EgressPolicy>,
        settings: UpstreamSettings,
        opened: Arc<Opened>,
    ) -> Result<Self, String> {
        let tls = tls::client_config(&spec.extra_roots, spec.identity.as_ref(), spec.http2)?;
        let connector = connector::Connector {
            tls: tokio_rustls::TlsConnector::from(tls),
            connect_timeout: settings.connect_timeout,
            sni: spec.sni.clone(),
            egress,
            trust: spec.trust.unwrap_or(Trust::Untrusted),
            opened: Arc::clone(&opened),
            gate: None,
        };
        // The pooled client's dials to an h2 upstream go one at a time;
        // `fresh` has no pool to hand a connection over, so never waits.
        let pooled = connector::Connector {
            gate: spec.http2.then(Arc::default),
            ..connector.clone()
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(settings.idle_timeout)
            .pool_max_idle_per_host(settings.max_idle)
            .build(pooled);
        let fresh = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(connector);
        Ok(UpstreamClient {
            client,
            fresh,
            response_timeout: settings.response_timeout,
            opened,
            http2: spec.http2,
        })
    }

    /// The connections opened so far (shared with the other clients `Kept`
    /// made).
    pub fn opened(&self) -> &Arc<Opened> {
        &self.opened
    }

    /// Sends `req` (absolute URI) over a pooled keep-alive connection and
    /// waits for the response headers.
    pub fn send(
        &self,
        req: Request<ProxyBody>,
    ) -> impl Future<Output = Result<Response<Incoming>, UpstreamError>> + Send + 'static {
        self.send_with(&self.client, req)
    }

    /// Like `send`, over a connection of its own: for a request sent again
    /// after the upstream closed the pooled connection it went out on (the
    /// other idle connections may be just as stale).
    pub fn send_fresh(
        &self,
        req: Request<ProxyBody>,
    ) -> impl Future<Output = Result<Response<Incoming>, UpstreamError>> + Send + 'static {
        self.send_with(&self.fresh, req)
    }

    /// Hands `req` to `client` at once; the future returned holds only the
    /// exchange and its timeout (not the request: hyper-util's own future
    /// has it), so the request path's future stays small.
    fn send_with(
        &self,
        client: &Client<connector::Connector, ProxyBody>,
        mut req: Request<ProxyBody>,
    ) -> impl Future<Output = Result<Response<Incoming>, UpstreamError>> + Send + 'static {
        if self.http2 {
            protocol::leave_host_to_connection(&mut req);
        }
        // A shared clone; formatted only if the exchange fails.
        let authority = req.uri().authority().cloned();
        let authority = move || {
            authority
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default()
        };
        let timeout = self.response_timeout;
        let sent = tokio::time::timeout(timeout, client.request(req));
        async move {
            match sent.await {
                Err(_) => Err(UpstreamError::Timeout {
                    authority: authority(),
                    timeout,
                }),
                Ok(Ok(mut resp)) => {
                    if let Some(usage) = resp.extensions().get::<Arc<ConnUsage>>() {
                        usage.answered();
                    }
                    // An h2 answer goes back to the app as HTTP/1.1 (or on
                    // the app's own h2 connection, which ignores the
                    // version).
                    if resp.version() == http::Version::HTTP_2 {
                        *resp.version_mut() = http::Version::HTTP_11;
                    }
                    Ok(resp)
                }
                Ok(Err(e)) => Err(classify(authority(), e)),
            }
        }
    }
}

/// Whether `e` ended the exchange as a closed or reset connection, on a
/// reused connection that sent no byte of an answer.
fn closed_before_answer(e: &hyper_util::client::legacy::Error) -> bool {
    let unanswered = e.connect_info().is_some_and(|info| {
        let mut extras = http::Extensions::new();
        info.get_extras(&mut extras);
        extras
            .get::<Arc<ConnUsage>>()
            .is_some_and(|u| u.reused_and_unanswered())
    });
    unanswered
        && causes(e).any(|c| {
            c.downcast_ref::<hyper::Error>()
                .is_some_and(hyper::Error::is_incomplete_message)
                || c.downcast_ref::<std::io::Error>().is_some_and(|io| {
                    use std::io::ErrorKind::*;
                    matches!(
                        io.kind(),
                        ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
                    )
                })
        })
}

/// Pulls our own connect error out of hyper-util's wrapper, so a refused
/// connection, a TLS failure and a broken exchange get distinct answers. A
/// rustls error during the exchange is a TLS failure too: with TLS 1.3 a
/// server rejects a missing client certificate only after the client's
/// handshake has finished.
fn classify(authority: String, e: hyper_util::client::legacy::Error) -> UpstreamError {
    if causes(&e).any(|s| s.is::<ClientBodyError>()) {
        return UpstreamError::ClientBody {
            authority,
            source: e,
        };
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&e);
    while let Some(s) = source {
        if let Some(c) = s.downcast_ref::<ConnectError>() {
            return UpstreamError::Connect {
                authority,
                source: c.clone(),
            };
        }
        let tls = s.downcast_ref::<rustls::Error>().or_else(|| {
            s.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(tls) = tls {
            return UpstreamError::Connect {
                authority,
                source: ConnectError::new(ConnectErrorKind::Tls, tls),
            };
        }
        source = s.source();
    }
    if protocol::unprocessed(&e) {
        return UpstreamError::Unprocessed {
            authority,
            source: e,
        };
    }
    if closed_before_answer(&e) {
        return UpstreamError::Closed {
            authority,
            source: e,
        };
    }
    UpstreamError::Exchange {
        authority,
        source: e,
    }
}

/// The causes of `e`, outermost first (not `e` itself).
fn causes<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(e.source(), |s| s.source())
}
