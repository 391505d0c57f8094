//! OpenID Provider discovery for a credential with `issuer`: the
//! configuration document (`ISSUER/.well-known/openid-configuration`,
//! OpenID Connect Discovery 1.0 section 4) and the provider's JWKS, fetched
//! when first needed and kept for `REFRESH`; after that the next use reads
//! them again. A signature whose key is not in the set (a `kid` the
//! provider rotated in) makes both be read again at once, at most every
//! `MISS_INTERVAL`, so forged `kid`s cannot make countersign hammer the
//! provider.
//!
//! The endpoints the document names are reached like the configured ones
//! (the credential's trust roots; the provider chose them, as it chose its
//! own issuer).

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::creds::form_post::{FormEndpoint, PostError, Reach};
use crate::egress::EgressPolicy;
use crate::pki::identity::ClientIdentity;
use crate::upstream::{UpstreamError, UpstreamSettings};

mod jwks;
mod metadata;

#[cfg(test)]
pub use jwks::parse as parse_jwks;
pub use jwks::Jwk;
pub use metadata::{Metadata, Wanted};

/// How long a document or key set is used before it is read again.
pub const REFRESH: Duration = Duration::from_secs(3600);
/// A key set is read again for an unknown key at most this often.
pub const MISS_INTERVAL: Duration = Duration::from_secs(10);

/// Why the provider's configuration or keys could not be had. No message
/// quotes more of the provider's answer than its `issuer`.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("the discovery document could not be fetched")]
    Unreachable(#[source] UpstreamError),
    #[error("the discovery document or JWKS did not arrive within {0:?}")]
    Timeout(Duration),
    #[error("the discovery document or JWKS could not be read (or is larger than 64 KiB)")]
    Body,
    #[error("the discovery document answered {0}")]
    Status(StatusCode),
    #[error("the discovery document is not a JSON object")]
    NotJson,
    #[error("the discovery document is for issuer `{0}`, not the configured `issuer` (they must be identical)")]
    WrongIssuer(String),
    #[error("the discovery document's `{0}` is not an absolute http(s) URL")]
    BadField(&'static str),
    #[error("the discovery document names no `{0}`; set it in the credential")]
    Missing(&'static str),
    #[error("the provider's JWKS answered {0}")]
    JwksStatus(StatusCode),
    #[error("the provider's JWKS is not a JSON object with `keys`")]
    JwksNotJson,
    #[error("the provider's JWKS has no key for `kid` {0} and alg {1}")]
    NoKey(String, String),
}

impl From<PostError> for DiscoveryError {
    fn from(e: PostError) -> DiscoveryError {
        match e {
            PostError::Timeout(d) => DiscoveryError::Timeout(d),
            PostError::Transport(e) => DiscoveryError::Unreachable(e),
            PostError::Body => DiscoveryError::Body,
        }
    }
}

#[derive(Default)]
struct Cached {
    metadata: Option<(Arc<Metadata>, Instant)>,
    keys: Option<(Arc<Vec<Jwk>>, Instant)>,
}

pub struct Discovery {
    issuer: String,
    well_known: Uri,
    http: FormEndpoint,
    /// One reader at a time: concurrent first uses fetch once.
    cached: Mutex<Cached>,
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// Where the document of `issuer` is: any trailing `/` removed, then the
/// well-known path appended (section 4.1).
pub fn well_known(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

impl Discovery {
    pub fn new(
        issuer: &str,
        roots: &[rustls_pki_types::CertificateDer<'static>],
        identity: Option<&ClientIdentity>,
        settings: UpstreamSettings,
        egress: Arc<EgressPolicy>,
    ) -> Result<Discovery, String> {
        let well_known: Uri = well_known(issuer)
            .parse()
            .map_err(|_| "the issuer does not make a discovery URL".to_string())?;
        let reach = Reach {
            url: &well_known,
            url_key: "issuer",
            roots,
            identity,
        };
        Ok(Discovery {
            issuer: issuer.to_string(),
            http: FormEndpoint::new(reach, settings, egress)?,
            well_known,
            cached: Mutex::default(),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The provider's configuration, read again once older than `REFRESH`.
    pub async fn metadata(&self) -> Result<Arc<Metadata>, DiscoveryError> {
        let mut cached = self.cached.lock().await;
        self.fresh_metadata(&mut cached, false).await
    }

    /// The key that verifies a JWS with header `kid` and `alg`: with a
    /// `kid`, the key of that id; without, the only key that suits `alg`.
    /// A miss reads the document and key set again (at most every
    /// `MISS_INTERVAL`) before it is an error.
    pub async fn key(&self, kid: Option<&str>, alg: &str) -> Result<Jwk, DiscoveryError> {
        let mut cached = self.cached.lock().await;
        let keys = self.fresh_keys(&mut cached, false).await?;
        if let Some(k) = pick(&keys, kid, alg) {
            return Ok(k);
        }
        let recent = cached
            .keys
            .as_ref()
            .is_some_and(|(_, at)| at.elapsed() < MISS_INTERVAL);
        if !recent {
            tracing::info!(issuer = %self.issuer, "unknown signing key: reading the provider's discovery document and JWKS again");
            let keys = self.fresh_keys(&mut cached, true).await?;
            if let Some(k) = pick(&keys, kid, alg) {
                return Ok(k);
            }
        }
        Err(DiscoveryError::NoKey(
            kid.map_or("(none)".into(), |k| format!("`{}`", shown(k))),
            shown(alg),
        ))
    }

    async fn fresh_metadata(
        &self,
        cached: &mut Cached,
        force: bool,
    ) -> Result<Arc<Metadata>, DiscoveryError> {
        if let Some((m, at)) = &cached.metadata {
            if !force && at.elapsed() < REFRESH {
                return Ok(Arc::clone(m));
            }
        }
        let (status, body) = self.http.get_at(&self.well_known, accept_json()).await?;
        let m = Arc::new(metadata::parse(&self.issuer, status, &body)?);
        cached.metadata = Some((Arc::clone(&m), Instant::now()));
        Ok(m)
    }

    async fn fresh_keys(
        &self,
        cached: &mut Cached,
        force: bool,
    ) -> Result<Arc<Vec<Jwk>>, DiscoveryError> {
        if let Some((k, at)) = &cached.keys {
            if !force && at.elapsed() < REFRESH {
                return Ok(Arc::clone(k));
            }
        }
        let m = self.fresh_metadata(cached, force).await?;
        let uri = m
            .jwks_uri
            .as_ref()
            .ok_or(DiscoveryError::Missing("jwks_uri"))?;
        let (status, body) = self.http.get_at(uri, accept_json()).await?;
        if !status.is_success() {
            return Err(DiscoveryError::JwksStatus(status));
        }
        let keys = Arc::new(jwks::parse(&body)?);
        cached.keys = Some((Arc::clone(&keys), Instant::now()));
        Ok(keys)
    }
}

#[cfg(test)]
impl Discovery {
    /// Makes what is kept look `by` older (tests of the refresh rules,
    /// without a paused clock racing real sockets).
    async fn age_by(&self, by: Duration) {
        let mut cached = self.cached.lock().await;
        let older = |at: &mut Instant| *at = at.checked_sub(by).unwrap_or(*at);
        if let Some((_, at)) = cached.metadata.as_mut() {
            older(at);
        }
        if let Some((_, at)) = cached.keys.as_mut() {
            older(at);
        }
    }
}

fn pick(keys: &[Jwk], kid: Option<&str>, alg: &str) -> Option<Jwk> {
    let mut fit = keys
        .iter()
        .filter(|k| k.suits(alg) && (kid.is_none() || k.kid.as_deref() == kid));
    let first = fit.next()?;
    // Without a `kid`, only an unambiguous key is used.
    (kid.is_some() || fit.next().is_none()).then(|| first.clone())
}

fn accept_json() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        http::header::ACCEPT,
        HeaderValue::from_static("application/json"),
    );
    h
}

fn shown(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests;
