//! One exchange with the token endpoint: build the form (grant, client auth,
//! scope and extra parameters), POST it (`form_post`) with a DPoP proof
//! when the credential has a DPoP key (once more with the server's nonce
//! when it answers `use_dpop_nonce`), and turn the answer into an `Issued`
//! token or a `FetchError` that is safe to log (status and OAuth error code
//! only, never a body or a value).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::ACCEPT;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::Value;

use super::client_auth::ClientAuthenticator;
use super::discovery::{Discovery, DiscoveryError};
use super::dpop::Dpop;
use super::jwt::SignError;
use crate::config::{OAuth2Config, Secret};
use crate::creds::form::Form;
use crate::creds::form_post::{FormEndpoint, PostError, Reach, MAX_ANSWER};
use crate::creds::token::StoreError;
use crate::egress::EgressPolicy;
use crate::upstream::{UpstreamError, UpstreamSettings};

/// Assumed when the server omits `expires_in` (RFC 6749 makes it optional);
/// a 401 from the upstream discards such a token earlier.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);
/// Longer lifetimes are cut to this, so deadlines stay representable.
const MAX_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

/// A token the endpoint issued.
pub struct Issued {
    /// What requests carry, marked sensitive: the whole `Bearer <token>`
    /// (or `DPoP <token>`) header value.
    pub value: HeaderValue,
    pub lifetime: Duration,
    /// A rotated refresh token, when the server sent one.
    pub refresh_token: Option<Secret>,
    /// The OpenID Connect ID token, when the server sent one (checked by
    /// the hybrid flow; never kept).
    pub id_token: Option<Secret>,
    /// The other top-level fields of the answer (`scope`, `user_seq_no`,
    /// ...), for a session's facts: every field whose name ends in
    /// `token` is left out, so none of these is ever a token.
    pub fields: serde_json::Map<String, Value>,
}

/// Why no token was obtained. Every message is free of secrets.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("token endpoint answered {status}{}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Status {
        status: StatusCode,
        /// The OAuth `error` code, reduced to safe characters.
        code: Option<String>,
    },
    #[error("token endpoint did not answer within {0:?}")]
    Timeout(Duration),
    #[error("token request failed")]
    Transport(#[source] UpstreamError),
    #[error("reading the token response failed (or it is larger than {MAX_ANSWER} bytes)")]
    Body,
    #[error("token response is not a JSON object")]
    NotJson,
    #[error("token response has no access_token")]
    NoAccessToken,
    #[error("token response has token_type `{0}`; only Bearer is supported without dpop = true")]
    TokenType(String),
    #[error("token response has token_type `{0}`, but a DPoP-bound token was asked for (dpop = true): the authorization server did not bind it to countersign's key; enable DPoP for this client at the server, or remove dpop")]
    NotDpop(String),
    #[error("token response has an unusable expires_in")]
    Expiry,
    #[error("the access token holds characters that cannot go in a header")]
    BadToken,
    #[error(transparent)]
    Sign(#[from] SignError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "no refresh token to present: the store is empty and no `refresh_token` is configured"
    )]
    NoRefreshToken,
    #[error("the token fetch was interrupted")]
    Interrupted,
    #[error("cannot discover the provider's endpoints")]
    Discovery(#[source] DiscoveryError),
}

impl FetchError {
    /// The server refused the grant itself (revoked, expired or reused refresh
    /// token): only a person can fix this.
    pub fn is_invalid_grant(&self) -> bool {
        matches!(self, FetchError::Status { code: Some(c), .. } if c == "invalid_grant")
    }

    /// Only a person can fix this: the grant was refused, or nothing is
    /// left to present (a session ended with `DELETE`, or never stored),
    /// or the shared store lost the grant.
    pub fn needs_person(&self) -> bool {
        self.is_invalid_grant()
            || matches!(
                self,
                FetchError::NoRefreshToken
                    | FetchError::Store(StoreError::Lost { .. } | StoreError::Spent { .. })
            )
    }
}

#[derive(Debug)]
pub struct Endpoint {
    post: FormEndpoint,
    /// The configured `token_url`; without it, the discovered one.
    url: Option<http::Uri>,
    discovery: Option<Arc<Discovery>>,
    /// A client certificate is presented: RFC 8705 endpoint aliases apply.
    mtls: bool,
    client_id: String,
    auth: ClientAuthenticator,
    params: Vec<(String, Secret)>,
    dpop: Option<Arc<Dpop>>,
}

impl Endpoint {
    /// `dpop`: the credential's DPoP key, when its tokens are DPoP-bound.
    pub fn new(
        config: &OAuth2Config,
        settings: UpstreamSettings,
        egress: Arc<EgressPolicy>,
        dpop: Option<Arc<Dpop>>,
    ) -> Result<Endpoint, String> {
        let discovery = match &config.issuer {
            Some(issuer) => Some(Arc::new(Discovery::new(
                issuer,
                &config.ca_roots,
                None,
                settings,
                Arc::clone(&egress),
            )?)),
            None => None,
        };
        let base = match (&config.token_url, &config.issuer) {
            (Some(url), _) => url.clone(),
            (None, Some(issuer)) => issuer
                .parse()
                .map_err(|_| "the issuer is not a URL".to_string())?,
            (None, None) => return Err("no token_url and no issuer".into()),
        };
        let reach = Reach {
            url: &base,
            url_key: "token_url",
            roots: &config.ca_roots,
            identity: config.client_identity.as_ref(),
        };
        Ok(Endpoint {
            post: FormEndpoint::new(reach, settings, egress)?,
            url: config.token_url.clone(),
            discovery,
            mtls: config.client_identity.is_some(),
            client_id: config.client_id.clone(),
            auth: ClientAuthenticator::new(&config.client_auth, &config.client_id)?,
            params: config.params.clone(),
            dpop,
        })
    }

    /// POSTs `grant` (e.g. `grant_type=client_credentials`) with the
    /// configured parameters and client authentication. With a DPoP key, each attempt carries a fresh proof; a server that
    /// answers `use_dpop_nonce` with a `DPoP-Nonce` is asked once more.
    pub async fn request(&self, grant: &[(&str, &str)]) -> Result<Issued, FetchError> {
        let mut asked_again = false;
        loop {
            let mut form = Form::default();
            for (name, value) in grant {
                form.push(name, value);
            }
            for (name, value) in &self.params {
                form.push(name, value.expose());
            }
            let mut headers = HeaderMap::new();
            let now = unix_now();
            self.auth
                .authenticate(&self.client_id, now, &mut form, &mut headers)?;
            headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
            // The configured token endpoint, or the one the issuer's
            // discovery document names (its mTLS alias with a client
            // certificate).
            let url = match &self.url {
                Some(_) => self.post.url().clone(),
                None => {
                    let meta = self.metadata().await?;
                    meta.token_endpoint(self.mtls)
                        .ok_or(FetchError::Discovery(DiscoveryError::Missing(
                            "token_endpoint",
                        )))?
                        .clone()
                }
            };
            if let Some(dpop) = &self.dpop {
                let proof = dpop.proof(&http::Method::POST, &url, None, now)?;
                headers.insert(super::dpop::HEADER, proof);
            }
            let (status, answer, body) = self
                .post
                .post_answer_at(&url, headers, form.into_string())
                .await?;
            let fresh_nonce = self
                .dpop
                .as_ref()
                .is_some_and(|d| d.nonces.remember(&url, &answer));
            let issued = parse(status, &body, self.dpop.is_some());
            match issued {
                Err(FetchError::Status { code: Some(c), .. })
                    if c == "use_dpop_nonce" && fresh_nonce && !asked_again =>
                {
                    asked_again = true;
                }
                other => return other,
            }
        }
    }

    /// POSTs an already built form to `url` with the client's
    /// authentication added (a PAR request): the status and raw answer.
    pub async fn post_authenticated(
        &self,
        url: &http::Uri,
        mut form: Form,
    ) -> Result<(StatusCode, Bytes), FetchError> {
        let mut headers = HeaderMap::new();
        self.auth
            .authenticate(&self.client_id, unix_now(), &mut form, &mut headers)?;
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        Ok(self.post.post_at(url, headers, form.into_string()).await?)
    }

    /// The provider's discovery, when the credential has an `issuer`.
    pub fn discovery(&self) -> Option<&Arc<Discovery>> {
        self.discovery.as_ref()
    }

    /// Whether the client authentication names the client in the form.
    pub fn auth_names_client(&self) -> bool {
        self.auth.names_client()
    }

    /// The RFC 7638 thumbprint of the DPoP key, when tokens are DPoP-bound.
    pub fn dpop_thumbprint(&self) -> Option<&str> {
        self.dpop.as_deref().map(Dpop::thumbprint)
    }

    /// Whether a client certificate is presented (RFC 8705 aliases apply).
    pub fn mtls(&self) -> bool {
        self.mtls
    }

    async fn metadata(&self) -> Result<Arc<super::discovery::Metadata>, FetchError> {
        let discovery =
            self.discovery
                .as_ref()
                .ok_or(FetchError::Discovery(DiscoveryError::Missing(
                    "token_endpoint",
                )))?;
        discovery.metadata().await.map_err(FetchError::Discovery)
    }
}

impl From<PostError> for FetchError {
    fn from(e: PostError) -> FetchError {
        match e {
            PostError::Timeout(d) => FetchError::Timeout(d),
            PostError::Transport(e) => FetchError::Transport(e),
            PostError::Body => FetchError::Body,
        }
    }
}

/// Reads a token response (RFC 6749 section 5.1) or error (section 5.2);
/// with `dpop`, the token must be DPoP-bound (`token_type` `DPoP`, RFC
/// 9449 section 5), else it must be a bearer token.
pub fn parse(status: StatusCode, body: &Bytes, dpop: bool) -> Result<Issued, FetchError> {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    if !status.is_success() {
        let code = json
            .as_ref()
            .and_then(|j| j.get("error"))
            .and_then(Value::as_str)
            .map(safe);
        return Err(FetchError::Status { status, code });
    }
    let Some(Value::Object(json)) = json else {
        return Err(FetchError::NotJson);
    };
    let access = json
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or(FetchError::NoAccessToken)?;
    let kind = json.get("token_type").map(|k| k.as_str().unwrap_or("?"));
    let scheme = match (kind, dpop) {
        (Some(k), true) if k.eq_ignore_ascii_case("dpop") => "DPoP",
        (k, true) => return Err(FetchError::NotDpop(safe(k.unwrap_or("(none)")))),
        (None, false) => "Bearer",
        (Some(k), false) if k.eq_ignore_ascii_case("bearer") => "Bearer",
        (Some(k), false) => return Err(FetchError::TokenType(safe(k))),
    };
    let lifetime = match json.get("expires_in") {
        None | Some(Value::Null) => DEFAULT_LIFETIME,
        Some(v) => {
            let secs = v
                .as_f64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .filter(|s: &f64| s.is_finite() && *s >= 1.0)
                .ok_or(FetchError::Expiry)?;
            Duration::from_secs_f64(secs.min(MAX_LIFETIME.as_secs_f64()))
        }
    };
    let mut bearer =
        HeaderValue::from_str(&format!("{scheme} {access}")).map_err(|_| FetchError::BadToken)?;
    bearer.set_sensitive(true);
    let refresh_token = json
        .get("refresh_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(Secret::new);
    let id_token = json
        .get("id_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(Secret::new);
    let fields = json
        .into_iter()
        .filter(|(name, _)| !name.to_ascii_lowercase().ends_with("token"))
        .collect();
    Ok(Issued {
        value: bearer,
        lifetime,
        refresh_token,
        id_token,
        fields,
    })
}

/// A server-chosen word, cut down to characters that cannot smuggle anything.
fn safe(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        .take(40)
        .collect()
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests;
