//! Sends a routed request, and once more when the upstream answers 401 to a
//! credential that can renew itself (oauth2, issued-key) and the request
//! can be sent again as it was: only bodyless requests are replayed (a
//! streamed body is gone once sent). The second answer, whatever it is,
//! goes to the app.

use bytes::Bytes;
use http::request::Parts;
use http::StatusCode;
use http_body::Body;
use hyper::body::Incoming;

use std::sync::Arc;

use super::prepare;
use crate::body::{self, BoxError, SpoolLimits};
use crate::creds::SignParams;
use crate::error::ProxyError;
use crate::metrics::Metrics;
use crate::snapshot::Route;

pub(super) async fn send<B>(
    route: &Route,
    parts: Parts,
    body: B,
    limits: &SpoolLimits,
    metrics: Option<&Arc<Metrics>>,
) -> Result<http::Response<Incoming>, ProxyError>
where
    B: Body<Data = Bytes> + Send + Sync + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let params = SignParams::default();
    let replayable = route
        .credential
        .as_ref()
        .is_some_and(|c| c.renews_on_unauthorized())
        && body.is_end_stream();
    let again = replayable.then(|| parts.clone());
    let req = prepare(route, parts, body, limits, &params, metrics).await?;
    let sent = route
        .credential
        .as_ref()
        .and_then(|c| c.presented(req.headers(), req.uri()));
    let resp = route.client.send(req).await?;
    if resp.status() != StatusCode::UNAUTHORIZED {
        return Ok(resp);
    }
    let (Some(cred), Some(sent)) = (&route.credential, &sent) else {
        return Ok(resp);
    };
    // Told even when not replaying: the next request then gets a new token.
    let renewed = cred.unauthorized(sent);
    let Some(again) = again.filter(|_| renewed) else {
        return Ok(resp);
    };
    drop(resp);
    tracing::debug!(route = %route.config.name, "replaying the request with a renewed token");
    let req = prepare(route, again, body::empty(), limits, &params, metrics).await?;
    Ok(route.client.send(req).await?)
}
