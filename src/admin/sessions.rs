//! The authorization-code endpoints, never on the proxy listener; see
//! `creds::oauth2::sessions::authorize` for why there are three:
//!
//! - `POST /oauth2/NAME/authorize?session=ID[&intent=CONSENT_ID]`, from
//!   the app, a control: a one-time ticket, as JSON with the path to send
//!   the person's browser to (the intent goes into the signed request
//!   object);
//! - `GET /oauth2/NAME/start?ticket=T`, the browser: redirected to the
//!   provider, with a cookie that binds the authorization to it;
//! - `GET /oauth2/NAME/callback?state=..&code=..`, the provider's
//!   redirect; or its answer POSTed (`form_post`, or the fragment of a
//!   hybrid response sent on by a page, see `callback`).
//!
//! and, for the app once a session is authorized (controls, guarded like
//! `authorize`):
//!
//! - `GET /oauth2/NAME/sessions/ID`: the session's facts, never a token;
//! - `DELETE /oauth2/NAME/sessions/ID`: ends it (revoked at the provider
//!   where the credential has a `revocation_url` or its issuer names one).

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode, Uri};
use serde_json::json;

use super::audience::Caller;
use super::{json_response, text, unauthorized};
use crate::body::{self, ProxyBody};
use crate::creds::oauth2::{SessionError, SessionManager};
use crate::creds::query::first as param;
use crate::snapshot::Snapshot;

mod callback;
mod session;

/// The binding cookie lives as long as the authorization may take.
const COOKIE_ATTRIBUTES: &str = "Path=/; Max-Age=600; HttpOnly; SameSite=Lax";
/// With `response_mode = "form_post"` the provider's page POSTs across
/// sites, which a `Lax` cookie does not come with.
const CROSS_SITE_COOKIE_ATTRIBUTES: &str = "Path=/; Max-Age=600; HttpOnly; Secure; SameSite=None";

/// How `sessions`' binding cookie is set.
fn cookie_attributes(sessions: &SessionManager) -> &'static str {
    if sessions.cross_site_callback() {
        CROSS_SITE_COOKIE_ATTRIBUTES
    } else {
        COOKIE_ATTRIBUTES
    }
}

/// The largest callback form read (an ID token is a few KiB).
pub const MAX_CALLBACK_FORM: usize = 64 * 1024;

/// `/oauth2/NAME/ACTION` split, and NAME's sessions; `None` when the path
/// is not one of these.
fn parse<'a>(
    snapshot: &'a Snapshot,
    uri: &'a Uri,
) -> Option<(&'a str, &'a str, Option<&'a SessionManager>)> {
    let rest = uri.path().strip_prefix("/oauth2/")?;
    let (name, action) = rest.split_once('/')?;
    let sessions = snapshot.credentials.get(name).and_then(|c| c.sessions());
    Some((name, action, sessions.map(|s| &**s)))
}

fn no_such_credential(name: &str) -> Response<ProxyBody> {
    text(
        StatusCode::NOT_FOUND,
        &format!("no authorization_code credential named `{name}`\n"),
    )
}

/// The control side, `/oauth2/NAME/authorize` and
/// `/oauth2/NAME/sessions/ID` (and anything else under `/oauth2/` that is
/// not the browser's); `None` when the path is not under `/oauth2/`. The
/// app calls these with its credential's `authorize_secret`, when that is
/// set, or with `admin.control_secret`.
pub async fn control(
    snapshot: &Snapshot,
    caller: Caller,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Option<Response<ProxyBody>> {
    let (name, action, sessions) = parse(snapshot, uri)?;
    // Without an `authorize_secret` of its own, a credential is guarded by
    // the control secret alone. (`may_start(None)` is true exactly when
    // the credential has none.)
    let own_secret = sessions.is_some_and(|s| !s.may_start(None));
    let session = action.strip_prefix("sessions/");
    let apps = action == "authorize" || session.is_some();
    if caller == Caller::Stranger && !(apps && own_secret) {
        return Some(unauthorized());
    }
    let Some(sessions) = sessions else {
        return Some(no_such_credential(name));
    };
    let query = uri.query().unwrap_or("");
    let admitted =
        caller == Caller::Operator || sessions.may_start(headers.get(header::AUTHORIZATION));
    let refuse = |what: &str| {
        let or_control = if caller == Caller::Open {
            ""
        } else {
            " (or admin.control_secret)"
        };
        let mut resp = text(
            StatusCode::UNAUTHORIZED,
            &format!("{what} for `{name}` needs `Authorization: Bearer` with its authorize_secret{or_control}\n"),
        );
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        resp
    };
    if let Some(session) = session {
        if !admitted {
            return Some(refuse("reading or ending a session"));
        }
        return Some(session::answer(sessions, name, method, session).await);
    }
    Some(match (method, action) {
        (&Method::POST, "authorize") => {
            if !admitted {
                return Some(refuse("starting an authorization"));
            }
            ticket(sessions, name, query).await
        }
        (_, "authorize") => with_allow(
            text(
                StatusCode::METHOD_NOT_ALLOWED,
                "the app starts authorization with POST (it gets a ticket for the person's browser)\n",
            ),
            "POST",
        ),
        _ => text(
            StatusCode::NOT_FOUND,
            "use POST /oauth2/NAME/authorize, GET or DELETE /oauth2/NAME/sessions/ID here; GET /oauth2/NAME/start and GET /oauth2/NAME/callback are the browser's\n",
        ),
    })
}

/// The browser side, `GET /oauth2/NAME/start` and `GET` or `POST
/// /oauth2/NAME/callback` (`form` is a POST's body); `None` when the path
/// is not one of these.
pub async fn browser(
    snapshot: &Snapshot,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    form: Option<&Bytes>,
) -> Option<Response<ProxyBody>> {
    let (name, action, sessions) = parse(snapshot, uri)?;
    let Some(sessions) = sessions else {
        return Some(no_such_credential(name));
    };
    let query = uri.query().unwrap_or("");
    Some(match (method, action) {
        (&Method::GET, "start") => start(sessions, query).await,
        (&Method::GET, "callback") => {
            callback::callback(sessions, name, query, None, headers).await
        }
        (&Method::POST, "callback") => {
            callback::callback(
                sessions,
                name,
                query,
                Some(form.unwrap_or(&Bytes::new())),
                headers,
            )
            .await
        }
        (_, "start") => with_allow(text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n"), "GET"),
        (_, "callback") => with_allow(
            text(StatusCode::METHOD_NOT_ALLOWED, "use GET or POST\n"),
            "GET, POST",
        ),
        _ => return None,
    })
}

async fn ticket(sessions: &SessionManager, name: &str, query: &str) -> Response<ProxyBody> {
    let Some(session) = param(query, "session") else {
        return text(
            StatusCode::BAD_REQUEST,
            "add ?session=ID naming the user's session\n",
        );
    };
    let intent = param(query, "intent");
    match sessions.ticket(&session, intent.as_deref()).await {
        Ok(t) => no_store(json_response(
            StatusCode::OK,
            &json!({
                "session": session,
                "start": format!("/oauth2/{name}/start?ticket={}", t.value),
                "expires_in": t.expires_in.as_secs(),
            }),
        )),
        Err(e) => refused(&e),
    }
}

async fn start(sessions: &SessionManager, query: &str) -> Response<ProxyBody> {
    let Some(ticket) = param(query, "ticket") else {
        return text(
            StatusCode::BAD_REQUEST,
            "add ?ticket=T from the app's POST /oauth2/NAME/authorize\n",
        );
    };
    match sessions.start(&ticket).await {
        Ok(started) => {
            // Path=/: the provider redirects to `redirect_uri`, whose path
            // the ingress may rewrite to /oauth2/NAME/callback.
            let cookie = format!(
                "{}={}; {}",
                started.cookie,
                started.browser_nonce.expose(),
                cookie_attributes(sessions)
            );
            let mut resp = redirect(&started.location);
            if let Ok(mut v) = HeaderValue::from_str(&cookie) {
                v.set_sensitive(true);
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            resp
        }
        Err(e) => refused(&e),
    }
}

/// A ticket, start or session request refused (see `status_of`).
fn refused(e: &SessionError) -> Response<ProxyBody> {
    text(status_of(e), &format!("{}\n", crate::causes::chain(e)))
}

/// The caller's mistake (400); 404 for a session nothing is stored for;
/// 500 when the OS random source or signing failed; 502 when the PAR
/// endpoint failed; 503 when a store or the discovery document cannot be
/// reached or countersign is stopping.
fn status_of(e: &SessionError) -> StatusCode {
    match e {
        SessionError::Random(_) | SessionError::Sign(_) => StatusCode::INTERNAL_SERVER_ERROR,
        SessionError::Par(_) | SessionError::ParRefused(..) | SessionError::NotOffered(_) => {
            StatusCode::BAD_GATEWAY
        }
        SessionError::Pending(_)
        | SessionError::StoreIo(_)
        | SessionError::Stopping
        | SessionError::Discovery(_) => StatusCode::SERVICE_UNAVAILABLE,
        SessionError::Unknown(..) => StatusCode::NOT_FOUND,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then(|| v.to_string())
        })
}

fn redirect(location: &str) -> Response<ProxyBody> {
    let mut resp = Response::new(body::empty());
    *resp.status_mut() = StatusCode::FOUND;
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    no_store(resp)
}

fn no_store(mut resp: Response<ProxyBody>) -> Response<ProxyBody> {
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn with_allow(mut resp: Response<ProxyBody>, allow: &'static str) -> Response<ProxyBody> {
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::creds::oauth2::cookie_name;

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; countersign-auth-s7=n0nce"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&h, &cookie_name("s7")).as_deref(), Some("n0nce"));
        assert_eq!(cookie(&h, "b").as_deref(), Some("2"));
        assert_eq!(cookie(&h, "countersign-auth-s"), None);
    }
}
