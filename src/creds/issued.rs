//! The `issued-key` credential: a short-lived key obtained from an issuing
//! endpoint (AmiVoice's one-time APPKEY, and anything like it) and placed in
//! a header or a query parameter of every matched request. The long-lived
//! secret (sid and spw, or a master key) stays in countersign.
//!
//! ```text
//! request -> manager.current(): the current key, or wait <= wait_for_token
//!            (none: 503 token-unavailable + Retry-After, never unauthenticated)
//!         -> placement: `header: <prefix><key>`, or `?query=<key>` (replaced)
//! upstream 401 -> the key it carried is discarded if still current, renewed
//!            (at most once per 5s), a bodyless request replayed once
//! background task (the token lifecycle of `creds::token`, fed by
//!            `source`) -> issuer, single-flight, backoff; renewed at
//!            refresh_at of the key's usable life (lifetime - margin),
//!            never used past it
//! ```

mod echo;
mod issuer;
mod placement;
mod source;

use std::sync::Arc;

use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Uri};

use super::token::{Fingerprint, TokenManager, TokenRegistry, TokenStats};
use super::CredError;
use crate::config::{IssuedKeyConfig, KeyPlacement, KeyResponse};
use crate::egress::EgressPolicy;
use crate::upstream::UpstreamSettings;
use placement::Placement;

pub use issuer::{IssueError, Issuer, NewKey};

#[derive(Debug)]
pub struct IssuedKey {
    name: String,
    manager: Arc<TokenManager>,
    placement: Placement,
}

impl IssuedKey {
    /// Builds credential `name`. Its token manager comes from `tokens`,
    /// which keeps it (and so its key) across reloads while the content is
    /// unchanged. Errors are `(key, message)` under `credential.NAME`.
    pub fn build(
        name: &str,
        config: &IssuedKeyConfig,
        tokens: &TokenRegistry,
        settings: UpstreamSettings,
        egress: &Arc<EgressPolicy>,
    ) -> Result<IssuedKey, (&'static str, String)> {
        let key = fingerprint(name, config, settings);
        let egress = Arc::clone(egress);
        let manager = tokens.keep(key, || source::start(name, config, settings, egress))?;
        Ok(IssuedKey::new(name, manager, &config.placement))
    }

    fn new(name: &str, manager: Arc<TokenManager>, placement: &KeyPlacement) -> IssuedKey {
        IssuedKey {
            name: name.to_string(),
            manager,
            placement: Placement::new(placement),
        }
    }

    pub async fn apply(&self, parts: &mut Parts) -> Result<(), CredError> {
        let key = self
            .manager
            .current()
            .await
            .map_err(|u| CredError::unavailable(&self.name, "issued key", u))?;
        self.placement.put(parts, &key)
    }

    pub fn header_names(&self) -> Vec<HeaderName> {
        self.placement.header_name().into_iter().collect()
    }

    pub fn presented(&self, headers: &HeaderMap, uri: &Uri) -> Option<HeaderValue> {
        self.placement.presented(headers, uri)
    }

    /// Takes the key `sent` carried out of the upstream's response headers:
    /// the app never sees a key.
    pub fn scrub(&self, sent: &HeaderValue, headers: &mut HeaderMap) {
        for name in self.placement.scrub(sent, headers) {
            tracing::debug!(credential = %self.name, header = %name, "removed the issued key the upstream echoed in a response header");
        }
    }

    /// See `TokenManager::unauthorized`: the refused key is the one whose
    /// placement is what the request carried.
    pub fn unauthorized(&self, sent: &HeaderValue) -> bool {
        self.manager
            .unauthorized(|key| self.placement.render(key).is_some_and(|v| v == sent))
    }

    pub fn stats(&self) -> TokenStats {
        self.manager.stats()
    }

    /// The key in use now, as issued.
    pub fn peek(&self) -> Option<HeaderValue> {
        self.manager.peek()
    }

    /// Ready once a valid key is held.
    pub fn is_ready(&self) -> bool {
        self.manager.has_valid_token()
    }
}

/// Every field that shapes an issued-key credential's keys, for the token
/// registry: an unchanged credential keeps its key across reloads, any
/// change (a rotated spw, a new epi) gets a new key at once.
pub fn fingerprint(name: &str, c: &IssuedKeyConfig, s: UpstreamSettings) -> [u8; 32] {
    let mut h = Fingerprint::default();
    h.feed("kind", b"issued-key");
    h.feed("name", name.as_bytes());
    h.feed("issue_url", c.issue_url.to_string().as_bytes());
    for (field, value) in &c.form {
        h.feed("field", field.as_bytes());
        h.feed("value", value.expose().as_bytes());
    }
    if let Some(bearer) = &c.bearer {
        h.feed("bearer", bearer.expose().as_bytes());
    }
    match &c.response {
        KeyResponse::Text => h.feed("response", b"text"),
        KeyResponse::Json {
            key_field,
            expires_in_field,
        } => {
            h.feed("json_field", key_field.as_bytes());
            let expires = expires_in_field.as_deref().unwrap_or("");
            h.feed("expires_in_field", expires.as_bytes());
        }
    }
    for (tag, d) in [("lifetime", c.lifetime), ("margin", c.margin)] {
        h.feed(tag, &d.map_or(u128::MAX, |d| d.as_nanos()).to_le_bytes());
    }
    // Not the placement: where the key goes does not change the key.
    h.feed("refresh_at", &c.refresh_at.to_le_bytes());
    h.feed("wait", &c.wait_for_token.as_nanos().to_le_bytes());
    h.shared_store(c.shared_store.as_deref());
    h.connection(&c.ca_roots, c.client_identity.as_ref(), s);
    h.finish()
}
