//! The request path: classify (absolute-form, origin-form on a route's own
//! listener, CONNECT), route, sign, send, stream the response back.
//!
//! ```text
//! accept -> load snapshot once -> classify -> route (miss: unmatched policy)
//!        -> strip hop-by-hop -> rewrite URI + Host -> route headers
//!        -> credential (may spool + hash the body) -> upstream (TLS) -> response
//! ```

mod access;
mod appliance;
pub(crate) mod conn;
mod connect;
mod headers;
mod in_span;
pub(crate) mod prepared;
mod replay;
mod target;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::HOST;
use http::request::Parts;
use http::{Method, Request, Response, Version};
use http_body::Body;
use tracing::Span;

use crate::body::{self, BoxError, DeadlineBody, ProxyBody};
use crate::config::Unmatched;
use crate::error::ProxyError;
use crate::metrics::Metrics;
use crate::snapshot::{ListenerRole, Route, Snapshot};
use access::{Access, CountedBody, LoggedBody};
pub(crate) use conn::Context;
use in_span::InSpan;

pub use headers::strip_hop_by_hop;

/// What the proxy decided to do with a request.
enum Decision<'a> {
    Route(&'a Arc<Route>),
    Passthrough,
}

/// Serves one request on the snapshot current at its start, and never fails:
/// errors become responses. Everything logged while it is handled (waiting
/// for a token, spooling, resending) is inside its `http` span, which names
/// the method, the host, and once known the route and the user session.
pub(crate) async fn handle<B>(
    ctx: &Context,
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
    let span = tracing::info_span!(
        "http",
        %method,
        %host,
        route = tracing::field::Empty,
        session = tracing::field::Empty,
    );
    let served = std::pin::pin!(Some(serve(ctx, role, req, method, host, &span)));
    InSpan {
        span: &span,
        future: served,
    }
    .await
}

async fn serve<B>(
    ctx: &Context,
    role: &ListenerRole,
    req: Request<B>,
    method: Method,
    host: String,
    span: &Span,
) -> Response<ProxyBody>
where
    B: Body<Data = Bytes> + Send + Sync + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let snapshot = ctx.cell.load_full();
    let mut access = Access::new(Arc::clone(&ctx.metrics), method.clone(), host);
    let result = if method == Method::CONNECT {
        connect::open(ctx, &snapshot, role, req).await
    } else {
        forward(&snapshot, role, req, &mut access, &ctx.metrics, span).await
    };
    let resp = match result {
        Ok(resp) => resp,
        Err(e) => {
            let reason = e.reason();
            ctx.metrics.error(reason);
            if let Some(limit) = e.limit() {
                ctx.metrics.limit_rejected(limit);
            }
            tracing::warn!(route = %access.route_name(), %method, host = %access.host, reason, error = %e.chain(), "request failed");
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
    span: &Span,
) -> Result<Response<ProxyBody>, ProxyError>
where
    B: Body<Data = Bytes> + Send + Sync + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let (mut parts, body) = req.into_parts();
    let limits = &snapshot.proxy.limits;
    let body = DeadlineBody::new(
        CountedBody::new(body, Arc::clone(&access.bytes_in)),
        limits.body_idle_timeout,
        limits.body_timeout,
    );
    // An appliance's own endpoint on a route listener is answered here.
    if let ListenerRole::Reverse(name) = role {
        if let Some(route) = snapshot.route_named(name) {
            if appliance::is_own(route, &parts) {
                span.record("route", tracing::field::display(&route.config.name));
                access.route = Some(Arc::clone(&route.metrics));
                return appliance::authorization(snapshot, route, &parts, body).await;
            }
        }
    }
    let resp = match decide(snapshot, role, &parts, metrics)? {
        Decision::Route(route) => {
            span.record("route", tracing::field::display(&route.config.name));
            access.route = Some(Arc::clone(&route.metrics));
            access.upstream = Some(route.target.authority().clone());
            access.credential = route.credential.as_ref().map_or("", |c| c.kind());
            let limits = snapshot.spool_limits();
            let sent = Instant::now();
            let resp = replay::send(route, parts, body, &limits, Some(metrics)).await?;
            metrics.upstream_latency(&route.metrics, sent.elapsed());
            resp
        }
        Decision::Passthrough => {
            if let ListenerRole::Tunnel { host, port } = role {
                parts.uri = target::inside_tunnel(host, *port, &parts.uri)?;
            }
            access.upstream = parts.uri.authority().cloned();
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

/// Whose rules a request is matched against.
enum Wanted<'r> {
    /// The proxy listener and tunnels: whichever route takes this host.
    Host(Cow<'r, str>, u16),
    /// A route's own listener: that route.
    Route(&'r str),
}

/// The one place every listener decides what a request is: the path check,
/// then the route (by host for the proxy and tunnels, fixed for a route's
/// own listener, whose `path_prefix` and `methods` hold all the same), then
/// the unmatched policy.
fn decide<'a>(
    snapshot: &'a Snapshot,
    role: &ListenerRole,
    parts: &Parts,
    metrics: &Metrics,
) -> Result<Decision<'a>, ProxyError> {
    let (path, method) = (parts.uri.path(), &parts.method);
    let wanted = match role {
        ListenerRole::Forward => {
            let dest = target::absolute(&parts.uri)?;
            Wanted::Host(dest.host, dest.port)
        }
        // The CONNECT target, not the Host header, says where a tunnelled
        // request goes: the app cannot steer it elsewhere.
        ListenerRole::Tunnel { host, port } => Wanted::Host(Cow::Borrowed(host), *port),
        ListenerRole::Reverse(name) => Wanted::Route(name),
        ListenerRole::Admin | ListenerRole::Control | ListenerRole::Browser => {
            return Err(ProxyError::BadRequest("not a proxy listener".into()))
        }
    };
    crate::paths::check(path).map_err(|p| ProxyError::BadRequest(p.to_string()))?;
    let (host, port) = match wanted {
        Wanted::Host(host, port) => (host, port),
        // A route's own listener serves that route or nothing: no other
        // route, no passthrough.
        Wanted::Route(name) => {
            return match snapshot.route_named(name) {
                Some(route) if crate::route::takes(&route.config, path, method) => {
                    Ok(Decision::Route(route))
                }
                found => {
                    metrics.unmatched("denied");
                    Err(ProxyError::OutsideRoute {
                        route: name.to_string(),
                        method: method.to_string(),
                        path: path.to_string(),
                        rule: found.map_or("it is no longer in the config".into(), |r| {
                            rule_text(&r.config)
                        }),
                    })
                }
            };
        }
    };
    if let Some(i) = snapshot.router.lookup(&host, port, path, method) {
        return Ok(Decision::Route(&snapshot.routes[i]));
    }
    if snapshot.proxy.unmatched == Unmatched::Passthrough {
        metrics.unmatched("passthrough");
        return Ok(Decision::Passthrough);
    }
    metrics.unmatched("denied");
    Err(ProxyError::NoRoute {
        host: host.into_owned(),
        port,
        path: path.to_string(),
    })
}

/// What a route takes, for the refusal of a request it does not.
fn rule_text(route: &crate::config::RouteConfig) -> String {
    let methods = route.methods.as_ref().map(|ms| {
        let names: Vec<&str> = ms.iter().map(Method::as_str).collect();
        format!("methods {}", names.join(", "))
    });
    let prefix = route
        .path_prefix
        .as_ref()
        .map(|p| format!("paths under `{p}`"));
    let parts: Vec<String> = methods.into_iter().chain(prefix).collect();
    format!("it takes only {}", parts.join(" and "))
}
