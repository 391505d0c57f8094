//! CONNECT (what `HTTPS_PROXY` makes clients send). A routed host is
//! intercepted: countersign answers the app's TLS with a leaf minted from its
//! local CA and serves the requests inside like any other, so they are
//! signed. An unrouted host listed in `[connect] tunnel` gets an opaque
//! tunnel, never looked into. Anything else is refused.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::{Request, Response, StatusCode};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use super::conn::{self, Context};
use crate::body::{self, ProxyBody};
use crate::drain::DrainWatch;
use crate::egress::Trust;
use crate::error::ProxyError;
use crate::listener::Slot;
use crate::snapshot::{ListenerRole, Snapshot};
use crate::upstream::connector::dial;
use crate::upstream::{ConnectError, ConnectErrorKind};

/// Decides what a CONNECT becomes; the tunnel itself runs in its own task
/// once hyper hands over the connection.
pub(crate) async fn open<B>(
    ctx: &Context,
    snapshot: &Snapshot,
    role: &ListenerRole,
    req: Request<B>,
) -> Result<Response<ProxyBody>, ProxyError> {
    if *role != ListenerRole::Forward {
        return Err(ProxyError::BadRequest(
            "CONNECT is only accepted on the proxy listener".into(),
        ));
    }
    let (host, port) = target(&req)?;
    if snapshot.router.routes_host(&host, port) {
        let minter = snapshot
            .minter
            .as_ref()
            .ok_or_else(|| ProxyError::InterceptUnavailable {
                host: host.clone(),
                port,
            })?;
        let tls = minter
            .server_config(&host)
            .map_err(|detail| ProxyError::Intercept {
                host: host.clone(),
                detail,
            })?;
        let upgrade = hyper::upgrade::on(req);
        let role = ListenerRole::Tunnel { host, port };
        tokio::spawn(intercept(upgrade, tls, role, ctx.clone()));
        return Ok(established());
    }
    if snapshot.tunnel_allowed(&host, port) {
        let authority = format!("{host}:{port}");
        // A name that does not resolve is unreachable (502), not refused.
        let addrs = snapshot
            .egress
            .resolve(&host, port, Trust::Untrusted)
            .await
            .map_err(|e| ProxyError::Tunnel {
                authority: authority.clone(),
                source: ConnectError::from(e),
            })?;
        let timeout = snapshot.proxy.connect_timeout;
        let upstream = tokio::time::timeout(timeout, dial(&addrs))
            .await
            .map_err(|_| ProxyError::Tunnel {
                authority: authority.clone(),
                source: ConnectError::new(
                    ConnectErrorKind::Timeout,
                    format!("no connection within {timeout:?}"),
                ),
            })?
            .map_err(|source| ProxyError::Tunnel { authority, source })?;
        let upgrade = hyper::upgrade::on(req);
        // The drain watch keeps shutdown waiting while the tunnel is open.
        tokio::spawn(splice(
            upgrade,
            upstream,
            ctx.drain.clone(),
            ctx.slot.clone(),
        ));
        return Ok(established());
    }
    Err(ProxyError::ConnectDenied { host, port })
}

/// `host:port` from the CONNECT request target, normalised like routes.
fn target<B>(req: &Request<B>) -> Result<(String, u16), ProxyError> {
    let authority = req
        .uri()
        .authority()
        .ok_or_else(|| ProxyError::BadRequest("CONNECT needs a `host:port` target".into()))?;
    let port = authority
        .port_u16()
        .ok_or_else(|| ProxyError::BadRequest("the CONNECT target has no port".into()))?;
    let host = authority
        .host()
        .trim_matches(['[', ']'])
        .trim_end_matches('.')
        .to_ascii_lowercase();
    Ok((host, port))
}

fn established() -> Response<ProxyBody> {
    let mut resp = Response::new(body::empty());
    *resp.status_mut() = StatusCode::OK;
    resp
}

/// Requests inside the tunnel come back through `proxy::handle` (served
/// by `conn`, like the listeners' connections); returning a named boxed
/// future (not an `async fn`) keeps that recursion typeable.
fn intercept(
    upgrade: OnUpgrade,
    tls: Arc<rustls::ServerConfig>,
    role: ListenerRole,
    ctx: Context,
) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(serve_intercepted(upgrade, tls, role, ctx))
}

async fn serve_intercepted(
    upgrade: OnUpgrade,
    tls: Arc<rustls::ServerConfig>,
    role: ListenerRole,
    ctx: Context,
) {
    let upgraded = match upgrade.await {
        Ok(u) => u,
        Err(e) => {
            tracing::debug!(%role, error = %e, "CONNECT upgrade failed");
            return;
        }
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    // The handshake gets the time a request head gets: a tunnel that never
    // sends its ClientHello does not hold a task for ever.
    let deadline = ctx.cell.load().proxy.client_header_timeout;
    let handshake = tokio::time::timeout(deadline, acceptor.accept(TokioIo::new(upgraded)));
    let (metrics, kind) = (Arc::clone(&ctx.metrics), role.kind());
    match handshake.await {
        Ok(Ok(stream)) => {
            metrics.connection(kind, 1);
            if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
                conn::h2(stream, role, ctx).await;
            } else {
                conn::http1(stream, role, ctx).await;
            }
            metrics.connection(kind, -1);
        }
        Ok(Err(e)) => {
            // Usually the app does not trust countersign's CA yet.
            tracing::warn!(%role, error = %e, "TLS from the app failed inside CONNECT; does it trust countersign's CA?");
        }
        Err(_) => {
            tracing::warn!(%role, timeout = ?deadline, "no TLS handshake from the app inside CONNECT within client_header_timeout");
        }
    }
}

/// The tunnel keeps shutdown waiting (`_drain`) and keeps its CONNECT's
/// place in the listener's `max_connections` (`_slot`) while open.
async fn splice(
    upgrade: OnUpgrade,
    mut upstream: tokio::net::TcpStream,
    _drain: DrainWatch,
    _slot: Option<Arc<Slot>>,
) {
    match upgrade.await {
        Ok(upgraded) => {
            let mut app = TokioIo::new(upgraded);
            if let Err(e) = tokio::io::copy_bidirectional(&mut app, &mut upstream).await {
                tracing::debug!(error = %e, "tunnel closed with an error");
            }
        }
        Err(e) => tracing::debug!(error = %e, "CONNECT upgrade failed"),
    }
}
