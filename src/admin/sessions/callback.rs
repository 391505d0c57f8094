//! The provider's answer, however it arrives at `/oauth2/NAME/callback`:
//!
//! - `GET ?state=..&code=..` (the code flow's query);
//! - `POST` with the same as a form: `response_mode = "form_post"`, where
//!   the provider's page posts it, or the page below;
//! - any of these holding one JARM `response` (`response_mode = "jwt"` or
//!   `"form_post.jwt"`), whose claims are the answer once it is checked;
//! - `code id_token` in the URL fragment, which never reaches a server: a
//!   `GET` without parameters gets a small page whose script (served from
//!   the same path, `?countersign-script`, so a strict CSP with
//!   `script-src 'self'` allows it and no inline script is needed) reads
//!   the fragment, takes it off the address bar, and POSTs it back here.
//!
//! Then the authorization is finished: `state` and the browser binding
//! checked, the ID token checked where one is expected, the code
//! exchanged.

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};

use super::super::text;
use super::{cookie, cookie_attributes, status_of};
use crate::body::{self, ProxyBody};
use crate::creds::oauth2::{cookie_name, JarmError, SessionError, SessionManager};
use crate::creds::query::first as param;

/// `x-countersign-error` of a refused ID token, and of a refused JARM
/// response (rows of docs/errors.md's table, the only two not made by
/// `ProxyError`).
const ID_TOKEN_INVALID: &str = "id-token-invalid";
const JARM_INVALID: &str = "jarm-invalid";

/// The query that asks for the page's script.
const SCRIPT_QUERY: &str = "countersign-script";

/// The page a fragment answer lands on. No inline script, no style.
const PAGE: &str = "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Finishing authorization</title>\n<script src=\"?countersign-script\" defer></script></head>\n<body><p>Finishing the authorization&hellip;</p>\n<noscript><p>This step needs JavaScript: the bank's answer is in the address bar's fragment, which only this page can send on.</p></noscript></body></html>\n";

/// Posts the fragment's parameters back to this path as a form (a
/// navigation, so the answer shows in this tab). The fragment is removed
/// from the address bar and history first.
const SCRIPT: &str = "(function () {\n  var fragment = window.location.hash.replace(/^#/, '');\n  window.history.replaceState(null, '', window.location.pathname);\n  var form = document.createElement('form');\n  form.method = 'post';\n  form.action = window.location.pathname;\n  new URLSearchParams(fragment).forEach(function (value, name) {\n    var input = document.createElement('input');\n    input.type = 'hidden';\n    input.name = name;\n    input.value = value;\n    form.appendChild(input);\n  });\n  document.body.appendChild(form);\n  form.submit();\n})();\n";

/// The page may run only its own script, load nothing else, post only to
/// its own origin, and not be framed.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// `GET` (with the answer in `query`, or none: the fragment page) or
/// `POST` (`form` holds the answer).
pub(super) async fn callback(
    sessions: &SessionManager,
    name: &str,
    query: &str,
    form: Option<&Bytes>,
    headers: &HeaderMap,
) -> Response<ProxyBody> {
    let answer = match form {
        Some(f) => String::from_utf8_lossy(f).into_owned(),
        None => query.to_string(),
    };
    if form.is_none() && sessions.fragment_callback() {
        if query == SCRIPT_QUERY {
            return asset(SCRIPT, "text/javascript; charset=utf-8");
        }
        if ["state", "error", "response"]
            .iter()
            .all(|n| param(query, n).is_none())
        {
            return asset(PAGE, "text/html; charset=utf-8");
        }
    }
    // The answer's parameters: as sent, or out of a checked JARM response.
    let fields = match (sessions.jarm_callback(), param(&answer, "response")) {
        (true, Some(response)) => match sessions.open_response(&response).await {
            Ok(claims) => Fields::Jarm(claims),
            Err(e) => return refusal(name, &e),
        },
        (true, None) => return refusal(name, &SessionError::Jarm(JarmError::Missing)),
        (false, _) => Fields::Plain(answer),
    };
    if let Some(error) = fields.get("error") {
        let safe: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(40)
            .collect();
        return text(
            StatusCode::BAD_REQUEST,
            &format!("the provider refused the authorization: {safe}\n"),
        );
    }
    let (Some(state), Some(code)) = (fields.get("state"), fields.get("code")) else {
        return text(
            StatusCode::BAD_REQUEST,
            "the callback needs `state` and `code`\n",
        );
    };
    let id_token = fields.get("id_token");
    let cookie_name = cookie_name(&state);
    let nonce = cookie(headers, &cookie_name);
    let completed = sessions
        .complete(&state, &code, id_token.as_deref(), nonce.as_deref())
        .await;
    let mut resp = match completed {
        Ok(session) => text(
            StatusCode::OK,
            &format!("Session `{session}` is authorized for `{name}`. You can close this page.\n"),
        ),
        Err(e) => refusal(name, &e),
    };
    // Spent either way.
    let clear = format!(
        "{cookie_name}=; {}",
        cookie_attributes(sessions).replace("Max-Age=600", "Max-Age=0")
    );
    if let Ok(v) = HeaderValue::from_str(&clear) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// The answer's parameters.
enum Fields {
    /// A query or form, encoded.
    Plain(String),
    /// A JARM response's claims.
    Jarm(serde_json::Map<String, serde_json::Value>),
}

impl Fields {
    fn get(&self, name: &str) -> Option<String> {
        match self {
            Fields::Plain(encoded) => param(encoded, name),
            Fields::Jarm(claims) => claims.get(name).and_then(|v| v.as_str()).map(String::from),
        }
    }
}

/// A failed callback: logged, and answered with the reason; a refused ID
/// token or JARM response also says so in `x-countersign-error`.
fn refusal(name: &str, e: &SessionError) -> Response<ProxyBody> {
    let chain = crate::causes::chain(e);
    tracing::warn!(credential = %name, error = %chain, "authorization callback failed");
    let mut resp = text(status_of(e), &format!("{chain}\n"));
    let code = match e {
        SessionError::IdToken(_) | SessionError::IdTokenIssued(..) => Some(ID_TOKEN_INVALID),
        SessionError::Jarm(_) => Some(JARM_INVALID),
        _ => None,
    };
    if let Some(code) = code {
        resp.headers_mut()
            .insert("x-countersign-error", HeaderValue::from_static(code));
    }
    resp
}

fn asset(content: &'static str, content_type: &'static str) -> Response<ProxyBody> {
    let mut resp = Response::new(body::full(Bytes::from_static(content.as_bytes())));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::creds::oauth2::IdTokenError;

    /// The table of docs/errors.md lists both refusals with their status
    /// (src/error/tests.rs holds the rest of the table to `ProxyError`).
    #[test]
    fn refusals_carry_their_reason_and_the_error_table_lists_them() {
        let doc = include_str!("../../../docs/errors.md");
        for (e, reason) in [
            (SessionError::IdToken(IdTokenError::Nonce), ID_TOKEN_INVALID),
            (SessionError::Jarm(JarmError::Signature), JARM_INVALID),
        ] {
            let resp = refusal("bank", &e);
            assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
            assert_eq!(resp.headers()["x-countersign-error"], reason);
            let row = format!("| {} ", resp.status().as_u16());
            assert!(
                doc.lines()
                    .any(|l| l.starts_with(&row) && l.contains(&format!("`{reason}`"))),
                "docs/errors.md has no row for 400 {reason}"
            );
        }
    }
}
