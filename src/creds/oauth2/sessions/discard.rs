//! When the token response's ID token is refused after the code was spent,
//! the tokens the provider just issued are thrown away at the provider too
//! (RFC 7009), best effort: the refresh token first (which revokes its
//! grant at most servers), then the access token. The endpoint is the
//! credential's `revocation_url`, or the discovered `revocation_endpoint`
//! (its mTLS alias with a client certificate). The outcome is told in the
//! refusal; nothing here holds up the answer beyond the request timeouts.

use super::super::endpoint::Issued;
use super::SessionManager;
use crate::creds::form::Form;

/// What became of the tokens issued with a refused ID token (shown in the
/// refusal; never a token).
#[derive(Debug, PartialEq, Eq)]
pub enum Discarded {
    /// The provider confirmed (200) every revocation.
    Revoked,
    /// The provider names no revocation endpoint (nor is one configured).
    NoEndpoint,
    /// A revocation was not confirmed: why (status or failure, no token).
    Failed(String),
}

impl std::fmt::Display for Discarded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Discarded::Revoked => {
                f.write_str("the tokens issued with it were revoked at the provider")
            }
            Discarded::NoEndpoint => f.write_str(
                "the provider names no revocation endpoint, so the tokens issued with it were only dropped",
            ),
            Discarded::Failed(why) => write!(
                f,
                "revoking the tokens issued with it failed ({why}); they were dropped"
            ),
        }
    }
}

impl SessionManager {
    /// Revokes what `issued` holds at the provider, best effort.
    pub(super) async fn discard(&self, issued: &Issued) -> Discarded {
        let url = match (&self.flow.revocation_url, self.endpoint.discovery()) {
            (Some(url), _) => Some(url.clone()),
            (None, Some(discovery)) => match discovery.metadata().await {
                Ok(meta) => meta.revocation_endpoint(self.endpoint.mtls()).cloned(),
                Err(e) => return Discarded::Failed(format!("discovery: {e}")),
            },
            (None, None) => None,
        };
        let Some(url) = url else {
            return Discarded::NoEndpoint;
        };
        let access = issued
            .value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .map(|(_, token)| token);
        let refresh = issued.refresh_token.as_ref().map(|t| t.expose());
        let mut failures = Vec::new();
        for (token, hint) in [(refresh, "refresh_token"), (access, "access_token")] {
            let Some(token) = token else { continue };
            let mut form = Form::default();
            form.push("token", token);
            form.push("token_type_hint", hint);
            let failed = match self.endpoint.post_authenticated(&url, form).await {
                Ok((status, _)) if status == http::StatusCode::OK => continue,
                Ok((status, _)) => format!("the {hint} answered {status}"),
                Err(e) => format!("the {hint}: {e}"),
            };
            tracing::warn!(credential = %self.name, "revocation after a refused ID token failed: {failed}");
            failures.push(failed);
        }
        match failures.is_empty() {
            true => Discarded::Revoked,
            false => Discarded::Failed(failures.join("; ")),
        }
    }
}
