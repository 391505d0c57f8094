//! The request path: classify (absolute-form, origin-form on a route's own
//! listener, CONNECT), route, sign, send, stream the response back.
//!
//! ```text
//! accept -> load snapshot once -> classify -> route (miss: unmatched policy)
//!        -> strip hop-by-hop -> rewrite URI + Host -> route headers
//!        -> credential (may spool + hash the body) -> upstream (TLS) -> response
//! ```

mod access;
mod connect;
mod headers;
mod prepared;
mod replay;
mod target;

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::HOST;
use http::request::Parts;
use http::{Method, Request, Response, Version};
use http_body::Body;

use crate::body::{self, BoxError, ProxyBody, SpoolLimits};
use crate::config::Unmatched;
use crate::creds::SignParams;
use crate::error::ProxyError;
use crate::listener::ServeContext;
use crate::metrics::Metrics;
use crate::snapshot::{ListenerRole, Route, Snapshot};
use access::{Access, CountedBody, LoggedBody};
use prepared::Prepared;

pub use headers::strip_hop_by_hop;

/// What the proxy decided to do with a request.
enum Decision<'a> {
    Route(&'a Arc<Route>),
    Passthrough,
}

/// Serves one request on the snapshot current at its start, and never fails:
/// errors become responses.
pub(crate) async fn handle<B>(
    ctx: &ServeContext,
    role: &ListenerRole,
    req: Request<B>,
) -> Response<ProxyBody>
where
    B: Body<Data = Bytes> + Send + Sync + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let method = req.method().clone();
    let host = req
        .uri()
        .host()
        .map(str::to_owned)
        .or_else(|| {
            req.headers()
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let snapshot = ctx.cell.load_full();
    let mut access = Access::new(Arc::clone(&ctx.metrics), method.clone(), host);
    let result = if method == Method::CONNECT {
        connect::open(ctx, &snapshot, role, req).await
    } else {
        forward(&snapshot, role, req, &mut access, &ctx.metrics).await
    };
    let resp = match result {
        Ok(resp) => resp,
        Err(e) => {
            let reason = e.reason();
            ctx.metrics.error(reason);
            tracing::warn!(route = %access.route, %method, host = %access.host, reason, error = %e.chain(), "request failed");
            access.error = Some(reason);
            e.into_response()
        }
    };
    access.status = resp.status().as_u16();
    let (parts, body) = resp.into_parts();
    Response::from_parts(parts, body::boxed(LoggedBody::new(body, access)))
}

async fn forward<B>(
    snapshot: &Snapshot,
    role: &ListenerRole,
    req: Request<B>,
    access: &mut Access,
    metrics: &Arc<Metrics>,
) -> Result<Response<ProxyBody>, ProxyError>
where
    B: Body<Data = Bytes> + Send + Sync + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let (mut parts, body) = req.into_parts();
    let body = CountedBody::new(body, Arc::clone(&access.bytes_in));
    let resp = match decide(snapshot, role, &parts, metrics)? {
        Decision::Route(route) => {
            access.route.clone_from(&route.config.name);
            access.upstream = route.config.upstream.authority();
            access.credential = route.credential.as_ref().map_or("", |c| c.kind());
            let limits = snapshot.spool_limits();
            let sent = Instant::now();
            let resp = replay::send(route, parts, body, &limits, Some(metrics)).await?;
            metrics.upstream_latency(&route.config.name, sent.elapsed());
            resp
        }
        Decision::Passthrough => {
            if let ListenerRole::Tunnel { host, port } = role {
                parts.uri = target::inside_tunnel(host, *port, &parts.uri)?;
            }
            access.upstream = parts
                .uri
                .authority()
                .map(|a| a.to_string())
                .unwrap_or_default();
            strip_hop_by_hop(&mut parts.headers);
            // hyper answers `Expect: 100-continue` to the app as soon as the
            // body is read; passing it on would make the upstream answer it
            // a second time. (Routed requests drop it in `Prepared`.)
            parts.headers.remove(http::header::EXPECT);
            parts.version = Version::HTTP_11;
            let req = Request::from_parts(parts, body::boxed(body));
            snapshot.passthrough.send(req).await?
        }
    };
    let (mut parts, body) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Ok(Response::from_parts(parts, body::boxed(body)))
}

fn decide<'a>(
    snapshot: &'a Snapshot,
    role: &ListenerRole,
    parts: &Parts,
    metrics: &Metrics,
) -> Result<Decision<'a>, ProxyError> {
    match role {
        ListenerRole::Reverse(name) => {
            snapshot
                .route_named(name)
                .map(Decision::Route)
                .ok_or_else(|| ProxyError::NoRoute {
                    host: name.clone(),
                    port: 0,
                    path: parts.uri.path().to_string(),
                })
        }
        ListenerRole::Forward => {
            let dest = target::absolute(&parts.uri)?;
            lookup(snapshot, &dest.host, dest.port, parts, metrics)
        }
        // The CONNECT target, not the Host header, says where a tunnelled
        // request goes: the app cannot steer it elsewhere.
        ListenerRole::Tunnel { host, port } => lookup(snapshot, host, *port, parts, metrics),
        ListenerRole::Admin => Err(ProxyError::BadRequest("not a proxy listener".into())),
    }
}

fn lookup<'a>(
    snapshot: &'a Snapshot,
    host: &str,
    port: u16,
    parts: &Parts,
    metrics: &Metrics,
) -> Result<Decision<'a>, ProxyError> {
    let path = parts.uri.path();
    if crate::route::has_dot_segment(path) {
        return Err(ProxyError::BadRequest(
            "the path has a `.` or `..` segment (perhaps percent-encoded); send it with dot segments removed (RFC 3986 section 5.2.4)".into(),
        ));
    }
    if let Some(i) = snapshot.router.lookup(host, port, path, &parts.method) {
        return Ok(Decision::Route(&snapshot.routes[i]));
    }
    if snapshot.proxy.unmatched == Unmatched::Passthrough {
        metrics.unmatched("passthrough");
        return Ok(Decision::Passthrough);
    }
    metrics.unmatched("denied");
    Err(ProxyError::NoRoute {
        host: host.to_string(),
        port,
        path: path.to_string(),
    })
}

/// Turns the app's request into exactly what goes upstream for `route`: the
/// upstream URI and Host, hygiene, route headers, then the credential. Also
/// used by `countersign sign`, so what it prints is what the proxy sends.
pub async fn prepare<B>(
    route: &Route,
    parts: Parts,
    body: B,
    limits: &SpoolLimits,
    params: &SignParams,
    metrics: Option<&Arc<Metrics>>,
) -> Result<Request<ProxyBody>, ProxyError>
where
    B: Body<Data = Bytes> + Send + Sync + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let mut prepared = Prepared::new(route, parts, body, limits, metrics).await?;
    // A first request always has its body.
    prepared
        .signed(route, params)
        .await?
        .ok_or(ProxyError::Internal)
}
