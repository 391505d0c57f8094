//! The GMO Aozora appliance's own endpoint on a route listener with
//! `appliance = "gmo-aozora"`, so that an app written for the appliance
//! moves over with only a base URL change:
//!
//! ```text
//! app  POST /v1/authorization/   form sessionId=ID  (curl --form, or urlencoded)
//!      <- 302 Location: https://BROWSER-HOST/oauth2/NAME/start?ticket=T
//! browser follows it: the usual start (binding cookie) -> bank -> callback
//! app  GET /corporation/v1/accounts?sessionId=ID  -> forwarded with ID's token
//! ```
//!
//! It is today's ticket flow under the appliance's names: the POST gets a
//! one-time ticket (as `POST /oauth2/NAME/authorize` does), and answers
//! with a redirect to the browser's start, not to the bank, so that the
//! authorization stays bound to the browser that finishes it. The listener
//! is the app's (on loopback, or `countersign check` wants the
//! credential's `authorize_secret`, which the POST must then carry).

mod form_field;

use bytes::Bytes;
use http::header::{ALLOW, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE};
use http::request::Parts;
use http::{HeaderValue, Method, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use serde_json::json;

use crate::body::{self, BoxError, ProxyBody};
use crate::config::Appliance;
use crate::creds::oauth2::SessionError;
use crate::error::ProxyError;
use crate::snapshot::{Route, Snapshot};

/// The appliance's form is one short field.
const MAX_FORM: usize = 16 * 1024;
/// The appliance's form field, and its API calls' query parameter.
const FIELD: &str = "sessionId";

/// Whether a request to `route`'s listener is the appliance's own (and so
/// answered here, before the route's `path_prefix` and `methods`).
pub fn is_own(route: &Route, parts: &Parts) -> bool {
    route.config.appliance == Some(Appliance::GmoAozora)
        && matches!(parts.uri.path(), "/v1/authorization/" | "/v1/authorization")
}

/// `POST /v1/authorization/`: a ticket for the session the form names,
/// and the browser sent to start with it.
pub async fn authorization<B>(
    snapshot: &Snapshot,
    route: &Route,
    parts: &Parts,
    body: B,
) -> Result<Response<ProxyBody>, ProxyError>
where
    B: Body<Data = Bytes> + Send + Unpin,
    B::Error: Into<BoxError>,
{
    if parts.method != Method::POST {
        let mut resp = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "start an authorization with POST /v1/authorization/ and form field sessionId\n",
        );
        resp.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST"));
        return Ok(resp);
    }
    let sessions = route
        .config
        .credential
        .first()
        .and_then(|name| snapshot.credentials.get(name))
        .and_then(|c| c.sessions())
        .ok_or(ProxyError::Internal)?;
    if !sessions.may_start(parts.headers.get(AUTHORIZATION)) {
        let mut resp = text(
            StatusCode::UNAUTHORIZED,
            &format!(
                "starting an authorization for `{}` needs `Authorization: Bearer` with its authorize_secret\n",
                sessions.name()
            ),
        );
        resp.headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return Ok(resp);
    }
    let form = Limited::new(body, MAX_FORM)
        .collect()
        .await
        .map_err(|_| {
            ProxyError::BadRequest(format!(
                "the form could not be read, or is larger than {MAX_FORM} bytes"
            ))
        })?
        .to_bytes();
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let session = form_field::field(content_type, &form, FIELD)
        .map_err(|e| ProxyError::BadRequest(format!("POST /v1/authorization/: {e}")))?
        .ok_or_else(|| {
            ProxyError::BadRequest(format!(
                "POST /v1/authorization/ needs form field `{FIELD}` naming the user's session"
            ))
        })?;
    let ticket = match sessions.ticket(&session, None).await {
        Ok(t) => t,
        Err(e) => return refused(&e),
    };
    let location = sessions.start_url(&ticket.value);
    let mut resp = Response::new(body::full(
        json!({
            "session": session,
            "start": location,
            "expires_in": ticket.expires_in.as_secs(),
        })
        .to_string(),
    ));
    *resp.status_mut() = StatusCode::FOUND;
    let h = resp.headers_mut();
    h.insert(
        LOCATION,
        HeaderValue::from_str(&location).map_err(|_| ProxyError::Internal)?,
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}

/// A ticket refused: a bad id (400 `bad-request`, like the form's other
/// faults), the shared store (503), the OS random source (500), or
/// countersign stopping (503).
fn refused(e: &SessionError) -> Result<Response<ProxyBody>, ProxyError> {
    let status = match e {
        SessionError::Random(_) => StatusCode::INTERNAL_SERVER_ERROR,
        SessionError::Pending(_) | SessionError::Stopping => StatusCode::SERVICE_UNAVAILABLE,
        _ => {
            return Err(ProxyError::BadRequest(format!(
                "POST /v1/authorization/: {e}"
            )))
        }
    };
    Ok(text(status, &format!("{e}\n")))
}

fn text(status: StatusCode, message: &str) -> Response<ProxyBody> {
    let mut resp = Response::new(body::full(Bytes::from(message.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}
