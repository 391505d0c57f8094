//! RFC 7009 token revocation: when a session ends, its refresh token is
//! POSTed to the credential's `revocation_url` (`token`, and
//! `token_type_hint=refresh_token`) with the same client authentication
//! as its token requests. A 200 means revoked (RFC 7009 section 2.2: also
//! for a token the server no longer knows); anything else is an error
//! that is safe to show (status and OAuth error code only).

use std::sync::Arc;
use std::time::Duration;

use http::header::ACCEPT;
use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use serde_json::Value;

use super::client_auth::ClientAuthenticator;
use super::endpoint::unix_now;
use super::jwt::SignError;
use crate::config::{OAuth2Config, Secret};
use crate::creds::form::Form;
use crate::creds::form_post::{FormEndpoint, PostError, Reach};
use crate::egress::EgressPolicy;
use crate::upstream::{UpstreamError, UpstreamSettings};

/// Why the provider did not confirm a revocation. No token in any message.
#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    #[error("revocation endpoint answered {status}{}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Status {
        status: StatusCode,
        code: Option<String>,
    },
    #[error("revocation endpoint did not answer within {0:?}")]
    Timeout(Duration),
    #[error("revocation request failed")]
    Transport(#[source] UpstreamError),
    #[error("reading the revocation endpoint's answer failed")]
    Body,
    #[error(transparent)]
    Sign(#[from] SignError),
}

#[derive(Debug)]
pub struct Revoker {
    post: FormEndpoint,
    client_id: String,
    auth: ClientAuthenticator,
}

impl Revoker {
    /// The revoker of `config`'s credential at `url`: its trust roots,
    /// client certificate and client authentication.
    pub fn new(
        config: &OAuth2Config,
        url: &Uri,
        settings: UpstreamSettings,
        egress: Arc<EgressPolicy>,
    ) -> Result<Revoker, String> {
        let reach = Reach {
            url,
            url_key: "revocation_url",
            roots: &config.ca_roots,
            identity: config.client_identity.as_ref(),
        };
        Ok(Revoker {
            post: FormEndpoint::new(reach, settings, egress)?,
            client_id: config.client_id.clone(),
            auth: ClientAuthenticator::new(&config.client_auth, &config.client_id)?,
        })
    }

    /// Revokes `refresh_token` (and, as RFC 7009 asks servers to, the
    /// access tokens of its grant).
    pub async fn revoke(&self, refresh_token: &Secret) -> Result<(), RevokeError> {
        let mut form = Form::default();
        form.push("token", refresh_token.expose());
        form.push("token_type_hint", "refresh_token");
        let mut headers = HeaderMap::new();
        self.auth
            .authenticate(&self.client_id, unix_now(), &mut form, &mut headers)?;
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let (status, body) =
            self.post
                .post(headers, form.into_string())
                .await
                .map_err(|e| match e {
                    PostError::Timeout(d) => RevokeError::Timeout(d),
                    PostError::Transport(e) => RevokeError::Transport(e),
                    PostError::Body => RevokeError::Body,
                })?;
        if status == StatusCode::OK {
            return Ok(());
        }
        let code = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|j| j.get("error").and_then(Value::as_str).map(safe));
        Err(RevokeError::Status { status, code })
    }
}

/// A server-chosen word, cut down to characters that cannot smuggle anything.
fn safe(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        .take(40)
        .collect()
}
