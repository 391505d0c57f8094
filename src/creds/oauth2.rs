//! The `oauth2` credential: `Authorization: Bearer <token>` with a token
//! obtained from a token endpoint (client_credentials, refresh_token or
//! authorization_code grant, see `source` and `sessions`) and kept fresh by
//! a `creds::token::TokenManager` that lives outside the snapshot.
//!
//! ```text
//! request -> manager.bearer(): current valid token, or wait <= wait_for_token
//!            (none: 503 token-unavailable + Retry-After, never unauthenticated)
//! upstream 401 -> manager.unauthorized(sent): discard if still current,
//!            renew (at most once per 5s), replay a bodyless request once
//! dpop = true -> `Authorization: DPoP <token>` and a fresh `DPoP` proof
//!            (`dpop`) on every request; a 401 `use_dpop_nonce` replays
//!            once with the server's nonce
//! background task -> endpoint (single-flight), backoff on failure,
//!            refresh token rotated into the store before the token is used
//! ```

mod client_auth;
mod discovery;
mod dpop;
mod endpoint;
mod facts;
mod fingerprint;
mod id_token;
mod jarm;
mod jwt;
mod pkce;
mod refresh;
mod revoke;
mod sessions;
mod signed;
mod source;

use std::sync::Arc;

use http::header::AUTHORIZATION;
use http::request::Parts;
use http::HeaderValue;

use super::token::{TokenManager, TokenRegistry, TokenStats, Unavailable};
use super::CredError;
use crate::config::{Grant, OAuth2Config};
use crate::egress::EgressPolicy;
use crate::upstream::UpstreamSettings;
use dpop::Dpop;
use endpoint::Endpoint;
use fingerprint::fingerprint;

/// The request header of a DPoP proof.
pub const DPOP_HEADER: &str = dpop::HEADER;

pub use id_token::IdTokenError;
pub use jarm::JarmError;
pub use sessions::{cookie_name, Ended, Revocation, SessionError, SessionFacts, SessionManager};

#[derive(Debug)]
pub struct OAuth2 {
    name: String,
    tokens: Tokens,
    /// The DPoP key the tokens are bound to, with `dpop = true`.
    dpop: Option<Arc<Dpop>>,
}

/// One token for every request, or one per user session.
#[derive(Debug)]
enum Tokens {
    One(Arc<TokenManager>),
    Sessions(Arc<SessionManager>),
}

impl OAuth2 {
    /// Builds credential `name`. Its token manager (or, for the
    /// authorization_code grant, its sessions) comes from `tokens`, which
    /// keeps it across reloads while the content is unchanged. Errors are
    /// `(key, message)` under `credential.NAME`.
    pub fn build(
        name: &str,
        config: &OAuth2Config,
        tokens: &TokenRegistry,
        settings: UpstreamSettings,
        egress: &Arc<EgressPolicy>,
    ) -> Result<OAuth2, (&'static str, String)> {
        let key = fingerprint(name, config, settings);
        let egress = Arc::clone(egress);
        // Kept beside the tokens (under a key derived from theirs), so a
        // reload that keeps the tokens keeps the key they are bound to.
        let dpop = match config.dpop {
            Some(alg) => Some(tokens.keep(dpop_key(&key), || {
                Dpop::generate(alg).map_err(|e| ("dpop", e))
            })?),
            None => None,
        };
        let tokens = match &config.grant {
            Grant::AuthorizationCode(flow) => Tokens::Sessions(tokens.keep(key, || {
                let endpoint = Endpoint::new(config, settings, Arc::clone(&egress), dpop.clone())
                    .map_err(|e| ("", e))?;
                let revoker = match &flow.revocation_url {
                    Some(url) => Some(
                        revoke::Revoker::new(config, url, settings, egress)
                            .map_err(|e| ("revocation_url", e))?,
                    ),
                    None => None,
                };
                let request_bound = settings.connect_timeout + settings.response_timeout;
                SessionManager::new(name, config, flow, endpoint, revoker, request_bound)
            })?),
            Grant::ClientCredentials | Grant::RefreshToken { .. } => {
                Tokens::One(tokens.keep(key, || {
                    source::start(name, config, settings, egress, dpop.clone())
                })?)
            }
        };
        Ok(OAuth2 {
            name: name.to_string(),
            tokens,
            dpop,
        })
    }

    /// Whether requests carry a DPoP proof.
    pub fn has_dpop(&self) -> bool {
        self.dpop.is_some()
    }

    /// The thumbprint of the DPoP key (the tokens' `cnf.jkt`), for
    /// `countersign token`.
    pub fn dpop_thumbprint(&self) -> Option<&str> {
        self.dpop.as_deref().map(Dpop::thumbprint)
    }

    /// Remembers a resource server's `DPoP-Nonce` from its answer to a
    /// request to `uri`; returns whether the answer asks to try again
    /// with it (`401`, `WWW-Authenticate: DPoP error="use_dpop_nonce"`).
    pub fn answered(
        &self,
        uri: &http::Uri,
        status: http::StatusCode,
        headers: &http::HeaderMap,
    ) -> bool {
        let Some(dpop) = &self.dpop else {
            return false;
        };
        let fresh = dpop.nonces.remember(uri, headers);
        fresh && dpop::resource_wants_nonce(status, headers)
    }

    /// The authorization-code sessions, when this credential has them.
    pub fn sessions(&self) -> Option<&Arc<SessionManager>> {
        match &self.tokens {
            Tokens::Sessions(s) => Some(s),
            Tokens::One(_) => None,
        }
    }

    pub async fn apply(&self, parts: &mut Parts) -> Result<(), CredError> {
        let manager = match &self.tokens {
            Tokens::One(m) => Arc::clone(m),
            Tokens::Sessions(s) => session_manager(s, parts)?,
        };
        let bearer = manager
            .current()
            .await
            .map_err(|u| CredError::unavailable(&self.name, "OAuth2 token", u))?;
        if let Some(dpop) = &self.dpop {
            // A fresh proof for each copy of the request, `ath` over the
            // token it carries.
            let value = bearer.to_str().unwrap_or("");
            let token = value.split_once(' ').map_or(value, |(_, t)| t);
            // Signing fails only when the OS generator does (the jti, the
            // ECDSA nonce).
            let proof = dpop
                .proof(&parts.method, &parts.uri, Some(token), endpoint::unix_now())
                .map_err(|_| CredError::Random(crate::random::RandomError))?;
            parts.headers.insert(dpop::HEADER, proof);
        }
        parts.headers.insert(AUTHORIZATION, bearer);
        Ok(())
    }

    /// Token counts and times (for a session credential: none, as each
    /// session has its own).
    pub fn stats(&self) -> Option<TokenStats> {
        match &self.tokens {
            Tokens::One(m) => Some(m.stats()),
            Tokens::Sessions(_) => None,
        }
    }

    /// The token in use now (`Bearer ...`), when there is one credential-wide.
    pub fn peek(&self) -> Option<HeaderValue> {
        match &self.tokens {
            Tokens::One(m) => m.peek(),
            Tokens::Sessions(_) => None,
        }
    }

    /// Ready once a valid token is held; a session credential is ready at
    /// once (each person authorizes their own session).
    pub fn is_ready(&self) -> bool {
        match &self.tokens {
            Tokens::One(m) => m.has_valid_token(),
            Tokens::Sessions(_) => true,
        }
    }

    /// See `TokenManager::unauthorized`.
    pub fn unauthorized(&self, sent: &HeaderValue) -> bool {
        match &self.tokens {
            Tokens::One(m) => m.unauthorized(|bearer| bearer == sent),
            Tokens::Sessions(s) => s.unauthorized(sent),
        }
    }
}

/// Where the DPoP key of the credential with tokens under `key` is kept.
fn dpop_key(key: &[u8; 32]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::new()
        .chain_update(b"dpop key of ")
        .chain_update(key)
        .finalize()
        .into()
}

/// Takes the session header off the request (it never goes upstream) and
/// finds that session's manager: a missing header is the app's mistake, an
/// unknown session is refused, and no other session's token is ever used.
fn session_manager(
    sessions: &SessionManager,
    parts: &mut Parts,
) -> Result<Arc<TokenManager>, CredError> {
    let header = sessions.session_header().clone();
    let values: Vec<_> = parts.headers.get_all(&header).iter().cloned().collect();
    parts.headers.remove(&header);
    let from_query = match sessions.session_param() {
        Some(p) => crate::creds::query::take(&mut parts.uri, p).ok_or_else(|| {
            CredError::Request(format!(
                "the `{p}` parameter cannot be taken out of the URL"
            ))
        })?,
        None => Vec::new(),
    };
    let id = match (values.as_slice(), from_query.as_slice()) {
        ([value], []) => value
            .to_str()
            .map_err(|_| CredError::Request(format!("the `{header}` header is not text")))?
            .to_string(),
        ([], [id]) => id.clone(),
        _ => {
            let or_param = sessions
                .session_param()
                .map(|p| format!(" or one `{p}` query parameter (not both)"))
                .unwrap_or_default();
            return Err(CredError::Request(format!(
                "this route's credential keeps a token per user session; send exactly one `{header}` header{or_param} naming the session"
            )));
        }
    };
    let found = sessions.manager(&id);
    if !matches!(found, Err(SessionError::BadId)) {
        // A well-formed id names the user in the app, never a secret: the
        // request's log lines carry it (its span has the field).
        tracing::Span::current().record("session", tracing::field::display(&id));
    }
    found.map_err(|e| match e {
        SessionError::BadId => CredError::Request(format!("`{header}`: {e}")),
        SessionError::Stopping => CredError::unavailable(
            sessions.name(),
            "OAuth2 token",
            Unavailable {
                waited: std::time::Duration::ZERO,
                retry_after: std::time::Duration::from_secs(1),
                cause: Some(e.to_string()),
            },
        ),
        SessionError::Random(e) => CredError::Random(e),
        other => CredError::Session(other.to_string()),
    })
}
