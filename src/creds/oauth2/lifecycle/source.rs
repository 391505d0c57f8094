//! Where a token manager's tokens come from: an OAuth2 token endpoint (the
//! client_credentials grant, or a rotating refresh token), or an issuer of
//! short-lived keys (`creds::issued`). The lifecycle around them is the same:
//! one fetch at a time, renewal ahead of expiry, backoff, 401 renewal.

use std::sync::Arc;

use super::super::endpoint::{Endpoint, FetchError, Issued};
use super::super::refresh::RefreshGrant;
use super::TokenManager;
use crate::config::{Grant, IssuedKeyConfig, OAuth2Config};
use crate::creds::issued::Issuer;
use crate::egress::EgressPolicy;
use crate::upstream::UpstreamSettings;
use tokio::time::Instant;

pub(super) enum Source {
    ClientCredentials(Arc<Endpoint>),
    Refresh(Arc<Endpoint>, RefreshGrant),
    /// The published value is the raw key; the credential places it.
    Issued(Box<Issuer>),
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
            Source::Issued(issuer) => {
                let key = issuer.issue().await?;
                Ok(Issued {
                    value: key.key,
                    lifetime: key.usable,
                    refresh_token: None,
                })
            }
            #[cfg(test)]
            Source::Scripted(script) => script.next().await,
        }
    }

    /// At shutdown, after the last fetch: store what could not be stored.
    pub(super) async fn flush(&self, label: &str) {
        if let Source::Refresh(_, grant) = self {
            grant.flush(label).await;
        }
    }

    /// What the source hands out, for log lines.
    pub(super) fn noun(&self) -> &'static str {
        match self {
            Source::Issued(_) => "issued key",
            _ => "OAuth2 token",
        }
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
        let endpoint = Arc::new(Endpoint::new(config, settings, egress).map_err(|e| ("", e))?);
        let source = match &config.grant {
            Grant::ClientCredentials => Source::ClientCredentials(endpoint),
            Grant::RefreshToken { seed } => Source::Refresh(
                endpoint,
                RefreshGrant::open(config.token_store.as_ref(), seed.clone())?,
            ),
            Grant::AuthorizationCode(_) => {
                return Err(("grant", "each session has its own token manager".into()))
            }
        };
        Ok(TokenManager::with_source(
            label,
            source,
            config.refresh_at,
            config.wait_for_token,
            None,
        ))
    }

    /// The manager of one user's session: renews with the session's refresh
    /// token, starting from the access token the code exchange returned.
    pub fn for_session(
        label: &str,
        endpoint: Arc<Endpoint>,
        grant: RefreshGrant,
        config: &OAuth2Config,
        initial: Option<(Issued, Instant)>,
    ) -> TokenManager {
        TokenManager::with_source(
            label,
            Source::Refresh(endpoint, grant),
            config.refresh_at,
            config.wait_for_token,
            initial,
        )
    }

    /// An `issued-key` credential's manager: its tokens are raw keys, each
    /// valid for its lifetime minus the margin.
    pub fn start_issued(
        label: &str,
        config: &IssuedKeyConfig,
        settings: UpstreamSettings,
        egress: Arc<EgressPolicy>,
    ) -> Result<TokenManager, (&'static str, String)> {
        let issuer = Issuer::new(config, settings, egress).map_err(|e| ("", e))?;
        Ok(TokenManager::with_source(
            label,
            Source::Issued(Box::new(issuer)),
            config.refresh_at,
            config.wait_for_token,
            None,
        ))
    }
}
