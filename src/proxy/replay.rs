//! Sends a routed request, and at most once more, signed afresh (a new
//! nonce and epoch, the credential's current token or key):
//!
//! - when the upstream closed a reused keep-alive connection before any
//!   byte of an answer (it timed the connection out just as the request
//!   went out), and the body can be produced again (no body, or a spooled
//!   one): on a new connection;
//! - when an HTTP/2 upstream refused the stream or sent a GOAWAY below it
//!   (it says it never processed the request) and the body can be produced
//!   again: through the pool, whatever the method;
//! - when the upstream answers 401 to a credential that can renew itself
//!   (oauth2, issued-key) and the request has no body;
//! - when a DPoP resource server answers 401 `use_dpop_nonce` with a nonce
//!   (RFC 9449 section 9) and the body can be produced again: with a fresh
//!   proof that carries the nonce.
//!
//! The second answer, whatever it is, goes to the app. Whatever the
//! request carried of its credential is taken out of the answer's headers
//! where it must not reach the app (an issued key echoed in a redirect).

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Request, StatusCode};
use http_body::Body;
use hyper::body::Incoming;

use std::sync::Arc;

use super::prepared::Prepared;
use crate::body::{BoxError, ProxyBody, SpoolLimits};
use crate::creds::SignParams;
use crate::error::ProxyError;
use crate::metrics::{Metrics, Retry};
use crate::snapshot::Route;
use crate::upstream::UpstreamError;

type Answer = http::Response<Incoming>;

pub(super) async fn send<B>(
    route: &Route,
    parts: Parts,
    body: B,
    limits: &SpoolLimits,
    metrics: Option<&Arc<Metrics>>,
) -> Result<Answer, ProxyError>
where
    B: Body<Data = Bytes> + Send + Sync + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let params = SignParams::default();
    let mut prepared = Prepared::new(route, parts, body, limits, &params, metrics).await?;
    let req = signed(route, &mut prepared, &params).await?;
    // Kept only for a credential that reads answers (DPoP nonces).
    let uri = route
        .credential
        .as_ref()
        .filter(|c| c.hears_answers())
        .map(|_| req.uri().clone());
    let mut sent = presented(route, &req);
    let mut sent_again = false;
    let mut resp = match route.client.send(req).await {
        Err(UpstreamError::Closed { authority, .. })
            if prepared.can_send() && prepared.resend_closed() =>
        {
            tracing::debug!(route = %route.config.name, %authority, "the upstream closed a reused connection before answering; sending the request again on a new connection");
            retried(metrics, route, Retry::ConnectionClosed);
            sent_again = true;
            let req = signed(route, &mut prepared, &params).await?;
            sent = presented(route, &req);
            route.client.send_fresh(req).await?
        }
        // HTTP/2 says the upstream never processed it: no risk of a
        // duplicate, whatever the method or `resend_closed`.
        // Through the pool: after a GOAWAY every request above it comes
        // back at once, and they share the one new connection.
        Err(UpstreamError::Unprocessed { authority, .. }) if prepared.can_send() => {
            tracing::debug!(route = %route.config.name, %authority, "the HTTP/2 upstream did not process the request; sending it again");
            retried(metrics, route, Retry::Unprocessed);
            sent_again = true;
            let req = signed(route, &mut prepared, &params).await?;
            sent = presented(route, &req);
            route.client.send(req).await?
        }
        resp => resp?,
    };
    if let (Some(cred), Some(uri)) = (&route.credential, &uri) {
        if cred.answered(uri, resp.status(), resp.headers()) && prepared.can_send() && !sent_again {
            drop(resp);
            tracing::debug!(route = %route.config.name, "the upstream asked for a DPoP proof with its nonce; sending the request once more");
            retried(metrics, route, Retry::DpopNonce);
            sent_again = true;
            let req = signed(route, &mut prepared, &params).await?;
            sent = presented(route, &req);
            resp = route.client.send(req).await?;
            // A nonce in the second answer is kept for the next request.
            cred.answered(uri, resp.status(), resp.headers());
        }
    }
    if resp.status() == StatusCode::UNAUTHORIZED {
        if let (Some(cred), Some(refused)) = (&route.credential, &sent) {
            // Told even when not replaying: the next request then gets a
            // new token.
            let renewed = cred.unauthorized(refused);
            if renewed && cred.renews_on_unauthorized() && prepared.is_bodyless() && !sent_again {
                drop(resp);
                tracing::debug!(route = %route.config.name, "replaying the request with a renewed token");
                retried(metrics, route, Retry::Unauthorized);
                let req = signed(route, &mut prepared, &params).await?;
                sent = presented(route, &req);
                resp = route.client.send(req).await?;
                if let Some(uri) = &uri {
                    cred.answered(uri, resp.status(), resp.headers());
                }
            }
        }
    }
    if let (Some(cred), Some(sent)) = (&route.credential, &sent) {
        cred.scrub_response(sent, resp.headers_mut());
    }
    Ok(resp)
}

/// The next copy of the request; callers ask for a second one only when
/// `Prepared` says it can make one.
async fn signed(
    route: &Route,
    prepared: &mut Prepared,
    params: &SignParams,
) -> Result<Request<ProxyBody>, ProxyError> {
    prepared
        .signed(route, params)
        .await?
        .ok_or(ProxyError::Internal)
}

/// What the request carries of its credential, to name a refused token
/// and to keep it out of the answer: only a credential that renews on a
/// 401 (the one that acts on either) needs it.
fn presented(route: &Route, req: &Request<ProxyBody>) -> Option<HeaderValue> {
    route
        .credential
        .as_ref()
        .filter(|c| c.renews_on_unauthorized())
        .and_then(|c| c.presented(req.headers(), req.uri()))
}

fn retried(metrics: Option<&Arc<Metrics>>, route: &Route, reason: Retry) {
    if let Some(m) = metrics {
        m.upstream_retry(&route.metrics, reason);
    }
}
