//! Credentials: what a route adds to a request so the upstream accepts it.
//! Each kind lives in its own module behind the small interface below; the
//! proxy asks whether the body is needed, feeds it through the hash the
//! credential starts, and then lets the credential write its headers.

mod digest;
pub(crate) mod form;
mod form_post;
mod header;
mod hmac;
pub mod httpsig;
pub mod issued;
pub mod jws;
pub mod oauth2;
mod paypay;
pub(crate) mod query;
pub mod sigv4;
mod stack;
pub mod token;

use std::time::Duration;

use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Uri};

use crate::config::{CredentialConfig, Problem};
use std::sync::Arc;

use crate::egress::EgressPolicy;
use crate::upstream::UpstreamSettings;

pub use digest::{BodyDigest, BodyHash, Digests, MemorySpent, Running, Stream};
pub use paypay::PayPayOpa;
pub use stack::Stack;
pub use token::TokenRegistry;

/// A credential built from its validated config.
#[derive(Debug)]
pub enum Credential {
    PayPayOpa(PayPayOpa),
    Header(header::StaticHeaders),
    OAuth2(oauth2::OAuth2),
    IssuedKey(issued::IssuedKey),
    AwsSigV4(sigv4::AwsSigV4),
    JwsDetached(jws::JwsDetached),
    Hmac(Box<hmac::HmacCred>),
    HttpSignature(httpsig::HttpSignature),
}

/// Values fixed by the caller instead of drawn at signing time, so that
/// `countersign sign` can reproduce a known signature.
#[derive(Debug, Default, Clone)]
pub struct SignParams {
    pub nonce: Option<String>,
    pub epoch: Option<u64>,
}

/// Put in a request's extensions by `countersign sign`: a credential that
/// can tell what it signed puts `Explained` in them too.
#[derive(Debug, Clone, Copy)]
pub struct Explain;

/// What a credential signed, part by part, for `countersign sign` to show
/// when a signature does not match: never a secret, never the body.
#[derive(Debug, Clone)]
pub struct Explained(pub Vec<String>);

/// The time and nonce one signature was made with, fixed when a signer
/// had to start before the body (see `digest::Stream`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drawn {
    /// Unix time in milliseconds.
    pub millis: u64,
    pub nonce: String,
}

/// Why a credential could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum CredError {
    /// The request lacks something the scheme signs; the app must send it.
    #[error("{0}")]
    Request(String),
    /// No valid token (`what` kind of token) could be had in time; the app
    /// should retry later.
    #[error("no valid {what} for credential `{credential}` within {waited:?}{}", cause.as_deref().map(|c| format!("; last failure: {c}")).unwrap_or_default())]
    TokenUnavailable {
        what: &'static str,
        credential: String,
        waited: Duration,
        retry_after: Duration,
        cause: Option<String>,
    },
    /// The user session the request names is unknown or must be authorized
    /// again; never answered with another session's token.
    #[error("{0}")]
    Session(String),
    /// The OS random source failed, so the signature's nonce or the
    /// assertion's id could not be made: countersign's fault (500).
    #[error(transparent)]
    Random(#[from] crate::random::RandomError),
}

impl CredError {
    /// `credential` found no valid `what` within its wait.
    pub fn unavailable(credential: &str, what: &'static str, u: token::Unavailable) -> CredError {
        CredError::TokenUnavailable {
            what,
            credential: credential.to_string(),
            waited: u.waited,
            retry_after: u.retry_after,
            cause: u.cause,
        }
    }

    /// For `Retry-After`: when trying again may succeed.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            CredError::TokenUnavailable { retry_after, .. } => Some(*retry_after),
            CredError::Request(_) | CredError::Session(_) | CredError::Random(_) => None,
        }
    }
}

impl Credential {
    /// Builds credential `name`. Credentials that fetch tokens get their
    /// token manager from `tokens`, which keeps it across reloads while the
    /// content is unchanged. Problems carry the key path under
    /// `credential.NAME`.
    pub fn build(
        name: &str,
        config: &CredentialConfig,
        tokens: &TokenRegistry,
        settings: UpstreamSettings,
        egress: &Arc<EgressPolicy>,
    ) -> Result<Credential, Problem> {
        let problem = |(key, message): (&str, String)| problem_at(name, key, message);
        Ok(match config {
            CredentialConfig::PayPayOpa {
                api_key,
                api_secret,
                nonce_length,
            } => Credential::PayPayOpa(PayPayOpa::new(
                api_key.clone(),
                api_secret.clone(),
                *nonce_length,
            )),
            CredentialConfig::Header { headers } => {
                Credential::Header(header::StaticHeaders::new(headers.clone()))
            }
            CredentialConfig::OAuth2(o) => Credential::OAuth2(
                oauth2::OAuth2::build(name, o, tokens, settings, egress).map_err(problem)?,
            ),
            CredentialConfig::IssuedKey(k) => Credential::IssuedKey(
                issued::IssuedKey::build(name, k, tokens, settings, egress).map_err(problem)?,
            ),
            CredentialConfig::AwsSigV4(a) => Credential::AwsSigV4(
                sigv4::AwsSigV4::build(name, a, tokens, settings, egress).map_err(problem)?,
            ),
            CredentialConfig::JwsDetached(j) => {
                Credential::JwsDetached(jws::JwsDetached::build(name, j).map_err(problem)?)
            }
            CredentialConfig::Hmac(h) => Credential::Hmac(Box::new(hmac::HmacCred::new(name, h))),
            CredentialConfig::HttpSignature(h) => {
                Credential::HttpSignature(httpsig::HttpSignature::build(name, h).map_err(problem)?)
            }
        })
    }

    /// The short type name used in logs and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Credential::PayPayOpa(_) => "paypay-opa",
            Credential::Header(_) => "header",
            Credential::OAuth2(_) => "oauth2",
            Credential::IssuedKey(_) => "issued-key",
            Credential::AwsSigV4(_) => "aws-sigv4",
            Credential::JwsDetached(_) => "jws-detached",
            Credential::Hmac(_) => "hmac",
            Credential::HttpSignature(_) => "http-signature",
        }
    }

    /// Whether the credential can sign now. Static kinds always can; kinds
    /// that fetch a token are ready once they hold one.
    pub fn is_ready(&self) -> bool {
        match self {
            Credential::PayPayOpa(_)
            | Credential::Header(_)
            | Credential::JwsDetached(_)
            | Credential::Hmac(_)
            | Credential::HttpSignature(_) => true,
            Credential::AwsSigV4(a) => a.is_ready(),
            Credential::OAuth2(o) => o.is_ready(),
            Credential::IssuedKey(k) => k.is_ready(),
        }
    }

    /// The per-user sessions of an authorization-code credential.
    pub fn sessions(&self) -> Option<&Arc<oauth2::SessionManager>> {
        match self {
            Credential::OAuth2(o) => o.sessions(),
            Credential::PayPayOpa(_)
            | Credential::Header(_)
            | Credential::IssuedKey(_)
            | Credential::AwsSigV4(_)
            | Credential::JwsDetached(_) => None,
            Credential::Hmac(_) => None,
            Credential::HttpSignature(_) => None,
        }
    }

    /// Token counts and times, for kinds that fetch tokens (or keys).
    pub fn token_stats(&self) -> Option<token::TokenStats> {
        match self {
            Credential::OAuth2(o) => o.stats(),
            Credential::IssuedKey(k) => Some(k.stats()),
            Credential::AwsSigV4(a) => a.stats(),
            Credential::PayPayOpa(_)
            | Credential::Header(_)
            | Credential::JwsDetached(_)
            | Credential::Hmac(_)
            | Credential::HttpSignature(_) => None,
        }
    }

    /// The token or key in use now, as the issuer gave it (no `Bearer `),
    /// for `countersign token --reveal`. Never logged.
    pub fn reveal(&self) -> Option<String> {
        let text = |v: HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned();
        match self {
            Credential::OAuth2(o) => {
                let bearer = text(o.peek()?);
                bearer
                    .strip_prefix("Bearer ")
                    .or_else(|| bearer.strip_prefix("DPoP "))
                    .map(str::to_string)
            }
            Credential::IssuedKey(k) => k.peek().map(text),
            Credential::PayPayOpa(_)
            | Credential::Header(_)
            | Credential::AwsSigV4(_)
            | Credential::JwsDetached(_) => None,
            Credential::Hmac(_) => None,
            Credential::HttpSignature(_) => None,
        }
    }

    /// Headers this credential writes; any the app sent are removed first so
    /// they are replaced, never duplicated.
    pub fn header_names(&self) -> Vec<HeaderName> {
        match self {
            Credential::OAuth2(o) if o.has_dpop() => vec![
                http::header::AUTHORIZATION,
                HeaderName::from_static(oauth2::DPOP_HEADER),
            ],
            Credential::PayPayOpa(_) | Credential::OAuth2(_) => vec![http::header::AUTHORIZATION],
            Credential::Header(h) => h.names(),
            Credential::IssuedKey(k) => k.header_names(),
            Credential::AwsSigV4(a) => a.header_names(),
            Credential::JwsDetached(j) => j.header_names(),
            Credential::Hmac(h) => h.header_names(),
            Credential::HttpSignature(h) => h.header_names(),
        }
    }

    /// Asks `hash` for the digests the scheme signs; a credential that asks
    /// for none lets the body stream straight through. `params` fixes the
    /// time and nonce of a signature that starts before the body (`hmac`).
    pub fn body_hash(
        &self,
        parts: &Parts,
        hash: &mut BodyHash,
        params: &SignParams,
    ) -> Result<(), CredError> {
        match self {
            Credential::PayPayOpa(p) => p.want_body(parts, hash),
            Credential::AwsSigV4(a) => a.body_hash(hash),
            Credential::JwsDetached(j) => j.body_hash(parts, hash),
            Credential::Hmac(h) => h.body_hash(parts, hash, params)?,
            Credential::HttpSignature(h) => h.body_hash(hash),
            Credential::Header(_) | Credential::OAuth2(_) | Credential::IssuedKey(_) => {}
        }
        Ok(())
    }

    /// Whether `body_hash` may ask for anything: false for the kinds that
    /// never sign the body, whose requests then stream without a hash.
    pub fn may_read_body(&self) -> bool {
        match self {
            Credential::PayPayOpa(_)
            | Credential::AwsSigV4(_)
            | Credential::JwsDetached(_)
            | Credential::Hmac(_)
            | Credential::HttpSignature(_) => true,
            Credential::Header(_) | Credential::OAuth2(_) | Credential::IssuedKey(_) => false,
        }
    }

    /// Refuses, before any byte of the body is read, a request the scheme
    /// can already tell it cannot sign.
    pub fn refuse_early(&self, parts: &Parts) -> Result<(), CredError> {
        match self {
            Credential::PayPayOpa(p) => p.refuse_early(parts),
            Credential::JwsDetached(j) => j.refuse_early(parts),
            Credential::Hmac(h) => h.refuse_early(parts),
            Credential::Header(_)
            | Credential::OAuth2(_)
            | Credential::IssuedKey(_)
            | Credential::AwsSigV4(_)
            | Credential::HttpSignature(_) => Ok(()),
        }
    }

    /// Writes the credential's headers. `digest` is what `body_hash` was fed
    /// (or `BodyDigest::Absent` for kinds that do not need the body). Nothing
    /// may change the request after this returns.
    pub async fn apply(
        &self,
        parts: &mut Parts,
        digest: BodyDigest,
        params: &SignParams,
    ) -> Result<(), CredError> {
        match self {
            Credential::PayPayOpa(p) => p.apply(parts, digest, params),
            Credential::Header(h) => {
                h.apply(parts);
                Ok(())
            }
            Credential::OAuth2(o) => o.apply(parts).await,
            Credential::IssuedKey(k) => k.apply(parts).await,
            Credential::AwsSigV4(a) => a.apply(parts, digest, params).await,
            Credential::JwsDetached(j) => j.apply(parts, digest.clone(), params),
            Credential::Hmac(h) => h.apply(parts, &digest, params),
            Credential::HttpSignature(h) => h.apply(parts, digest, params),
        }
    }

    /// The signature base an http-signature credential signed on `parts`
    /// (for `countersign sign`); `None` for every other kind.
    pub fn signature_base(&self, parts: &Parts) -> Option<String> {
        match self {
            Credential::HttpSignature(h) => h.signature_base(parts),
            _ => None,
        }
    }

    /// Whether a 401 from the upstream can be cured by a fresh credential
    /// (and so a replayable request is worth sending once more).
    pub fn renews_on_unauthorized(&self) -> bool {
        matches!(self, Credential::OAuth2(_) | Credential::IssuedKey(_))
    }

    /// Whether it writes the same headers on every request, whatever the
    /// request (`header`).
    pub fn is_fixed(&self) -> bool {
        matches!(self, Credential::Header(_))
    }

    /// Whether `answered` may act on an answer (OAuth2: DPoP nonces).
    pub fn hears_answers(&self) -> bool {
        matches!(self, Credential::OAuth2(_))
    }

    /// What a signed request (its `headers` and `uri`) carries of this
    /// credential, to tell `unauthorized` which token the upstream refused:
    /// the Authorization header, or where an issued key was placed.
    pub fn presented(&self, headers: &HeaderMap, uri: &Uri) -> Option<HeaderValue> {
        match self {
            Credential::IssuedKey(k) => k.presented(headers, uri),
            _ => headers.get(http::header::AUTHORIZATION).cloned(),
        }
    }

    /// Removes what a request carried (`sent`, see `presented`) from the
    /// upstream's response headers where it must not reach the app: an
    /// issued key the upstream echoed (a redirect to the request URI).
    pub fn scrub_response(&self, sent: &HeaderValue, headers: &mut HeaderMap) {
        match self {
            Credential::IssuedKey(k) => k.scrub(sent, headers),
            Credential::PayPayOpa(_)
            | Credential::Header(_)
            | Credential::OAuth2(_)
            | Credential::AwsSigV4(_)
            | Credential::JwsDetached(_) => {}
            Credential::Hmac(_) => {}
            Credential::HttpSignature(_) => {}
        }
    }

    /// Shows the credential the upstream's answer to a request to `uri`
    /// (a DPoP credential keeps the server's latest nonce). Returns whether
    /// the answer asks for the request once more with that nonce.
    pub fn answered(&self, uri: &Uri, status: http::StatusCode, headers: &HeaderMap) -> bool {
        match self {
            Credential::OAuth2(o) => o.answered(uri, status, headers),
            _ => false,
        }
    }

    /// The upstream answered 401 to a request that carried `sent` (see
    /// `presented`). Returns whether to replay the request once.
    pub fn unauthorized(&self, sent: &HeaderValue) -> bool {
        match self {
            Credential::OAuth2(o) => o.unauthorized(sent),
            Credential::IssuedKey(k) => k.unauthorized(sent),
            Credential::PayPayOpa(_)
            | Credential::Header(_)
            | Credential::AwsSigV4(_)
            | Credential::JwsDetached(_) => false,
            Credential::Hmac(_) => false,
            Credential::HttpSignature(_) => false,
        }
    }
}

/// A problem at `credential.NAME` or `credential.NAME.KEY`.
fn problem_at(name: &str, key: &str, message: String) -> Problem {
    let path = match key {
        "" => format!("credential.{name}"),
        key => format!("credential.{name}.{key}"),
    };
    Problem { path, message }
}
