//! The authorization-code endpoints on the admin listener:
//! `GET /oauth2/NAME/authorize?session=ID` redirects a person's browser to
//! the provider, and `GET /oauth2/NAME/callback` receives the code. They are
//! never served on the proxy listener.

use http::{header, HeaderValue, Response, StatusCode, Uri};

use super::text;
use crate::body::{self, ProxyBody};
use crate::creds::query::first as param;
use crate::snapshot::Snapshot;

/// Serves `/oauth2/...`; `None` when the path is not one of these.
pub async fn handle(snapshot: &Snapshot, uri: &Uri) -> Option<Response<ProxyBody>> {
    let rest = uri.path().strip_prefix("/oauth2/")?;
    let (name, action) = rest.split_once('/')?;
    let Some(sessions) = snapshot.credentials.get(name).and_then(|c| c.sessions()) else {
        return Some(text(
            StatusCode::NOT_FOUND,
            &format!("no authorization_code credential named `{name}`\n"),
        ));
    };
    let query = uri.query().unwrap_or("");
    Some(match action {
        "authorize" => match param(query, "session") {
            None => text(
                StatusCode::BAD_REQUEST,
                "add ?session=ID naming the user's session\n",
            ),
            Some(session) => match sessions.authorize_url(&session) {
                Ok(location) => redirect(&location),
                Err(e) => text(StatusCode::BAD_REQUEST, &format!("{e}\n")),
            },
        },
        "callback" => {
            if let Some(error) = param(query, "error") {
                let safe: String = error
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                return Some(text(
                    StatusCode::BAD_REQUEST,
                    &format!("the provider refused the authorization: {safe}\n"),
                ));
            }
            match (param(query, "state"), param(query, "code")) {
                (Some(state), Some(code)) => match sessions.complete(&state, &code).await {
                    Ok(session) => text(
                        StatusCode::OK,
                        &format!("Session `{session}` is authorized for `{name}`. You can close this page.\n"),
                    ),
                    Err(e) => {
                        tracing::warn!(credential = %name, error = %crate::error::chain(&e), "authorization callback failed");
                        text(StatusCode::BAD_REQUEST, &format!("{}\n", crate::error::chain(&e)))
                    }
                },
                _ => text(StatusCode::BAD_REQUEST, "the callback needs `state` and `code`\n"),
            }
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "use /oauth2/NAME/authorize or /oauth2/NAME/callback\n",
        ),
    })
}

fn redirect(location: &str) -> Response<ProxyBody> {
    let mut resp = Response::new(body::empty());
    *resp.status_mut() = StatusCode::FOUND;
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
