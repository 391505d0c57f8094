//! The request path: classify (absolute-form, origin-form on a route's own
//! listener, CONNECT), route, sign, send, stream the response back.
//!
//! ```text
//! accept -> load snapshot once -> classify -> route (miss: unmatched policy)
//!        -> strip hop-by-hop -> rewrite URI + Host -> route headers
//!        -> credential (may spool + hash the body) -> upstream (TLS) -> response
//! ```

mod headers;
mod replay;
mod target;

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_LENGTH, HOST};
use http::request::Parts;
use http::{HeaderValue, Method, Request, Response, Version};
use http_body::Body;

use crate::body::{self, BoxError, ProxyBody, SpoolError, SpoolLimits};
use crate::creds::{BodyDigest, SignParams};
use crate::error::ProxyError;
use crate::snapshot::{ListenerRole, Route, Snapshot};

pub use headers::strip_hop_by_hop;

/// What the proxy decided to do with a request.
enum Decision<'a> {
    Route(&'a Arc<Route>),
    Passthrough,
}

/// Serves one request on `snapshot` and never fails: errors become responses.
pub async fn handle<B>(
    snapshot: Arc<Snapshot>,
    role: &ListenerRole,
    req: Request<B>,
) -> Response<ProxyBody>
where
    B: Body<Data = Bytes> + Send + Sync + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let started = Instant::now();
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
    let mut route_name = String::new();
    let result = forward(&snapshot, role, req, &mut route_name).await;
    let (resp, reason) = match result {
        Ok(resp) => (resp, None),
        Err(e) => {
            let reason = e.reason();
            tracing::warn!(route = %route_name, %method, %host, reason, error = %e.chain(), "request failed");
            (e.into_response(), Some(reason))
        }
    };
    tracing::info!(
        route = %route_name,
        %method,
        %host,
        status = resp.status().as_u16(),
        duration_ms = started.elapsed().as_millis() as u64,
        error = reason.unwrap_or(""),
        "request"
    );
    resp
}

async fn forward<B>(
    snapshot: &Snapshot,
    role: &ListenerRole,
    req: Request<B>,
    route_name: &mut String,
) -> Result<Response<ProxyBody>, ProxyError>
where
    B: Body<Data = Bytes> + Send + Sync + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    if req.method() == Method::CONNECT {
        return Err(ProxyError::ConnectUnsupported);
    }
    let (mut parts, body) = req.into_parts();
    // hyper answers `Expect: 100-continue` to the app as soon as the body is
    // read; passing it on would make the upstream answer it a second time.
    parts.headers.remove(http::header::EXPECT);
    let resp = match decide(snapshot, role, &parts)? {
        Decision::Route(route) => {
            route_name.clone_from(&route.config.name);
            let limits = snapshot.spool_limits();
            replay::send(route, parts, body, &limits).await?
        }
        Decision::Passthrough => {
            strip_hop_by_hop(&mut parts.headers);
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
            let path = parts.uri.path();
            match snapshot
                .router
                .lookup(&dest.host, dest.port, path, &parts.method)
            {
                Some(i) => Ok(Decision::Route(&snapshot.routes[i])),
                None if snapshot.proxy.unmatched == crate::config::Unmatched::Passthrough => {
                    Ok(Decision::Passthrough)
                }
                None => Err(ProxyError::NoRoute {
                    host: dest.host,
                    port: dest.port,
                    path: path.to_string(),
                }),
            }
        }
    }
}

/// Turns the app's request into exactly what goes upstream for `route`: the
/// upstream URI and Host, hygiene, route headers, then the credential. Also
/// used by `countersign sign`, so what it prints is what the proxy sends.
pub async fn prepare<B>(
    route: &Route,
    mut parts: Parts,
    body: B,
    limits: &SpoolLimits,
    params: &SignParams,
) -> Result<Request<ProxyBody>, ProxyError>
where
    B: Body<Data = Bytes> + Send + Sync + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let config = &route.config;
    strip_hop_by_hop(&mut parts.headers);
    parts.uri = target::upstream_uri(&config.upstream, &parts.uri)?;
    parts.version = Version::HTTP_11;
    let host = HeaderValue::from_str(&config.upstream.authority())
        .map_err(|_| ProxyError::BadRequest("upstream authority is not a valid Host".into()))?;
    parts.headers.insert(HOST, host);
    if let Some(cred) = &route.credential {
        parts.headers.remove(AUTHORIZATION);
        for name in cred.header_names() {
            parts.headers.remove(name);
        }
    }
    for (name, value) in &config.headers {
        parts.headers.insert(name.clone(), value.clone());
    }
    let Some(cred) = &route.credential else {
        return Ok(Request::from_parts(parts, body::boxed(body)));
    };
    let (digest, body) = match cred.body_hash(&parts) {
        None => (BodyDigest::Absent, body::boxed(body)),
        Some(mut hash) => {
            refuse_declared_oversize(&parts, limits.max_body)?;
            let spooled = body::spool(body, limits, |chunk| hash.update(chunk)).await?;
            if !spooled.is_empty() {
                parts
                    .headers
                    .insert(CONTENT_LENGTH, HeaderValue::from(spooled.len()));
            }
            (hash.finish(), spooled.into_body())
        }
    };
    cred.apply(&mut parts, digest, params).await?;
    Ok(Request::from_parts(parts, body))
}

/// A Content-Length over the limit is refused before any byte is read.
fn refuse_declared_oversize(parts: &Parts, max_body: u64) -> Result<(), ProxyError> {
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(len) if len > max_body => Err(SpoolError::TooLarge { limit: max_body }.into()),
        _ => Ok(()),
    }
}
