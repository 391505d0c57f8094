//! `GET` and `DELETE /oauth2/NAME/sessions/ID`, for the app once a session
//! is authorized (the caller was admitted by `super::control`, under
//! the rules of `authorize`):
//!
//! - `GET`: the session's facts as JSON: whether it is authorized, its
//!   scope, when it was authorized and last renewed, how long the access
//!   token this process holds is still valid, and the token response
//!   fields `session_facts` selects. Never a token.
//! - `DELETE`: ends the session, and says what became of its refresh
//!   token at the provider.

use http::{Method, Response, StatusCode};
use serde_json::json;

use super::super::{json_response, text};
use super::{no_store, refused, with_allow};
use crate::body::ProxyBody;
use crate::creds::form;
use crate::creds::oauth2::{Revocation, SessionManager};

/// Answers `method` on session `raw_id` (as it stands in the path) of
/// credential `name`.
pub(super) async fn answer(
    sessions: &SessionManager,
    name: &str,
    method: &Method,
    raw_id: &str,
) -> Response<ProxyBody> {
    // An id is plain, but a client may percent-encode its `@`.
    let id = String::from_utf8(form::decode(raw_id)).unwrap_or_default();
    match *method {
        Method::GET => match sessions.facts(&id).await {
            Ok(f) => no_store(json_response(
                StatusCode::OK,
                &json!({
                    "credential": name,
                    "session": id,
                    "authorized": f.authorized,
                    "scope": f.scope,
                    "authorized_at": f.authorized_at,
                    "renewed_at": f.renewed_at,
                    "token_expires_in": f.token_expires_in.map(|d| d.as_secs()),
                    "facts": f.fields,
                }),
            )),
            Err(e) => refused(&e),
        },
        Method::DELETE => match sessions.end(&id).await {
            Ok(ended) => {
                let (word, error) = match ended.revocation {
                    Revocation::Revoked => ("revoked", None),
                    Revocation::NotOffered => ("not_offered", None),
                    Revocation::Failed(why) => ("failed", Some(why)),
                };
                no_store(json_response(
                    StatusCode::OK,
                    &json!({
                        "credential": name,
                        "session": id,
                        "ended": true,
                        "revocation": word,
                        "revocation_error": error,
                    }),
                ))
            }
            Err(e) => refused(&e),
        },
        _ => with_allow(
            text(
                StatusCode::METHOD_NOT_ALLOWED,
                "a session is read with GET and ended with DELETE\n",
            ),
            "GET, DELETE",
        ),
    }
}
