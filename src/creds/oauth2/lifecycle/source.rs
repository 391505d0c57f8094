//! Where a token manager's tokens come from: an OAuth2 token endpoint (the
//! client_credentials grant, or a rotating refresh token). Any other source
//! of short-lived tokens gets the same lifecycle by adding a variant: one
//! fetch at a time, renewal ahead of expiry, backoff, 401 renewal.

use std::sync::Arc;

use super::super::endpoint::{Endpoint, FetchError, Issued};
use super::super::refresh::RefreshGrant;
use super::TokenManager;
use crate::config::{Grant, OAuth2Config};
use crate::egress::EgressPolicy;
use crate::upstream::UpstreamSettings;

pub(super) enum Source {
    ClientCredentials(Endpoint),
    Refresh(Endpoint, RefreshGrant),
    #[cfg(test)]
    Scripted(super::tests::Script),
}

impl Source {
    pub(super) async fn fetch(&self, label: &str) -> Result<Issued, FetchError> {
        match self {
            Source::ClientCredentials(endpoint) => {
                endpoint
                    .request(&[("grant_type", "client_credentials")])
                    .await
            }
            Source::Refresh(endpoint, grant) => grant.refresh(endpoint, label).await,
            #[cfg(test)]
            Source::Scripted(script) => script.next().await,
        }
    }

    /// What the source hands out, for log lines.
    pub(super) fn noun(&self) -> &'static str {
        "OAuth2 token"
    }
}

impl TokenManager {
    /// An OAuth2 credential's manager; it starts fetching the first token at
    /// once. Errors are `(key, message)`, the key under `credential.NAME`.
    pub fn start(
        label: &str,
        config: &OAuth2Config,
        settings: UpstreamSettings,
        egress: Arc<EgressPolicy>,
    ) -> Result<TokenManager, (&'static str, String)> {
        let endpoint = Endpoint::new(config, settings, egress).map_err(|e| ("", e))?;
        let source = match &config.grant {
            Grant::ClientCredentials => Source::ClientCredentials(endpoint),
            Grant::RefreshToken { seed } => Source::Refresh(
                endpoint,
                RefreshGrant::open(config.token_store.as_ref(), seed.clone())?,
            ),
        };
        Ok(TokenManager::with_source(
            label,
            source,
            config.refresh_at,
            config.wait_for_token,
        ))
    }
}
