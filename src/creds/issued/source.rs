//! Where an `issued-key` credential's keys come from: its issuer, asked by
//! the lifecycle of `creds::token` like any other token source. A key's
//! lifetime, for the lifecycle, is its usable life (lifetime minus margin),
//! so it is renewed at `refresh_at` of that and never used past it.
//!
//! With `[store]`, the issuer is asked once per expiry for the whole fleet:
//! the source is wrapped in `Fleet` (as OAuth2 credentials are), so only
//! the replica holding the credential's lease issues a key, publishes it,
//! and the others serve it. Nothing rotates: while the store cannot be
//! reached, `store.local_fallback` decides whether a replica issues its
//! own key meanwhile.

use std::sync::Arc;

use super::issuer::Issuer;
use crate::causes::chain;
use crate::config::IssuedKeyConfig;
use crate::creds::token::store::StoreKey;
use crate::creds::token::{Fetch, Fleet, NewToken, SourceError, TokenManager, TokenSource};
use crate::egress::EgressPolicy;
use crate::upstream::UpstreamSettings;

struct IssuedSource(Issuer);

impl TokenSource for IssuedSource {
    /// The published value is the raw key; the credential places it.
    fn fetch<'a>(&'a self, _label: &'a str) -> Fetch<'a> {
        Box::pin(async move {
            let key = self
                .0
                .issue()
                .await
                .map_err(|e| SourceError::new(chain(&e)))?;
            Ok(NewToken {
                value: key.key,
                lifetime: key.usable,
            })
        })
    }

    fn noun(&self) -> &'static str {
        "issued key"
    }
}

/// An `issued-key` credential's manager; it starts fetching the first key
/// at once. Errors are `(key, message)`, the key under `credential.NAME`.
pub fn start(
    label: &str,
    config: &IssuedKeyConfig,
    settings: UpstreamSettings,
    egress: Arc<EgressPolicy>,
) -> Result<TokenManager, (&'static str, String)> {
    let issuer = Issuer::new(config, settings, egress).map_err(|e| ("", e))?;
    let source: Box<dyn TokenSource> = match config.shared_store.as_deref() {
        Some(shared) => Box::new(
            Fleet::wrap(
                Box::new(IssuedSource(issuer)),
                StoreKey::credential(label),
                shared,
                settings.connect_timeout + settings.response_timeout,
                0,
                config.refresh_at,
                shared.local_fallback,
            )
            .map_err(|e| ("", e.to_string()))?,
        ),
        None => Box::new(IssuedSource(issuer)),
    };
    Ok(TokenManager::start(
        label,
        source,
        config.refresh_at,
        config.wait_for_token,
        None,
    ))
}
