//! The `oauth2` credential: `Authorization: Bearer <token>` with a token
//! obtained from a token endpoint (client_credentials or refresh_token grant)
//! and kept fresh by a `TokenManager` that lives outside the snapshot.
//!
//! ```text
//! request -> manager.bearer(): current valid token, or wait <= wait_for_token
//!            (none: 503 token-unavailable + Retry-After, never unauthenticated)
//! upstream 401 -> manager.unauthorized(sent): discard if still current,
//!            renew (at most once per 5s), replay a bodyless request once
//! background task -> endpoint (single-flight), backoff on failure,
//!            refresh token rotated into the store before the token is used
//! ```

mod client_auth;
mod endpoint;
mod jwt;
mod lifecycle;
mod refresh;
mod registry;
mod store;

use std::sync::Arc;

use http::header::AUTHORIZATION;
use http::request::Parts;
use http::HeaderValue;

use super::CredError;

pub use lifecycle::{TokenManager, TokenStats, Unavailable, FORCED_RENEWAL_GAP};
pub use registry::{Fingerprint, TokenRegistry};
pub use store::{FileStore, StoreError, StoredGrant, TokenStore};

#[derive(Debug)]
pub struct OAuth2 {
    name: String,
    manager: Arc<TokenManager>,
}

impl OAuth2 {
    pub fn new(name: &str, manager: Arc<TokenManager>) -> OAuth2 {
        OAuth2 {
            name: name.to_string(),
            manager,
        }
    }

    pub async fn apply(&self, parts: &mut Parts) -> Result<(), CredError> {
        let bearer = self
            .manager
            .current()
            .await
            .map_err(|u| CredError::unavailable(&self.name, "OAuth2 token", u))?;
        parts.headers.insert(AUTHORIZATION, bearer);
        Ok(())
    }

    /// See `TokenManager::unauthorized`.
    pub fn stats(&self) -> TokenStats {
        self.manager.stats()
    }

    /// Ready once a valid token is held.
    pub fn is_ready(&self) -> bool {
        self.manager.has_valid_token()
    }

    pub fn unauthorized(&self, sent: &HeaderValue) -> bool {
        self.manager.unauthorized(|bearer| bearer == sent)
    }
}
