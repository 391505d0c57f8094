//! Where an OAuth2 credential's tokens come from: its token endpoint, by the
//! client_credentials grant or a rotating refresh token. The lifecycle
//! around them (single-flight, renewal ahead of expiry, backoff, 401
//! renewal) is `creds::token`'s; this is the `TokenSource` it drives.

use std::sync::Arc;

use tokio::time::Instant;

use super::dpop::Dpop;
use super::endpoint::{Endpoint, FetchError, Issued};
use super::refresh::RefreshGrant;
use crate::causes::chain;
use crate::config::{Grant, OAuth2Config};
use crate::creds::token::store::{self, StoreError, StoreKey};
use crate::creds::token::{Fetch, Fleet, Flush, NewToken, SourceError, TokenManager, TokenSource};
use crate::egress::EgressPolicy;
use crate::upstream::UpstreamSettings;

/// What the log says when the server refuses the grant itself.
const LOST: &str = "the shared store lost this grant: restore Redis from a backup that holds the newest refresh token, or have a person authorize again (then set the new refresh_token and reload; a session is authorized again by its app)";
const SPENT: &str = "the configured refresh_token was spent already: set the newest one a person obtained, or remove it to continue from the store, and reload";
const REFUSED: &str = "the authorization server refused the grant; a person must authorize again and set a new refresh_token";

enum OAuth2Source {
    ClientCredentials(Arc<Endpoint>),
    Refresh(Arc<Endpoint>, Box<RefreshGrant>),
}

impl TokenSource for OAuth2Source {
    fn fetch<'a>(&'a self, label: &'a str) -> Fetch<'a> {
        Box::pin(async move {
            let issued = match self {
                OAuth2Source::ClientCredentials(endpoint) => {
                    endpoint
                        .request(&[("grant_type", "client_credentials")])
                        .await
                }
                OAuth2Source::Refresh(endpoint, grant) => grant.refresh(endpoint, label).await,
            };
            issued.map(new_token).map_err(source_error)
        })
    }

    fn flush<'a>(&'a self, label: &'a str) -> Flush<'a> {
        Box::pin(async move {
            if let OAuth2Source::Refresh(_, grant) = self {
                grant.flush(label).await;
            }
        })
    }

    fn noun(&self) -> &'static str {
        "OAuth2 token"
    }
}

/// What the lifecycle keeps of a token response (the rotated refresh token
/// is already stored by then).
fn new_token(issued: Issued) -> NewToken {
    NewToken {
        value: issued.value,
        lifetime: issued.lifetime,
    }
}

/// `invalid_grant` means the grant itself was refused, and an empty store
/// (a session ended) that nothing is left: a person must act.
fn source_error(e: FetchError) -> SourceError {
    match &e {
        FetchError::Store(StoreError::Lost { .. }) => return SourceError::refused(chain(&e), LOST),
        FetchError::Store(StoreError::Spent { .. }) => {
            return SourceError::refused(chain(&e), SPENT)
        }
        _ => {}
    }
    if e.needs_person() {
        SourceError::refused(chain(&e), REFUSED)
    } else {
        SourceError::new(chain(&e))
    }
}

/// An OAuth2 credential's manager (client_credentials or refresh_token
/// grant); it starts fetching the first token at once. Errors are
/// `(key, message)`, the key under `credential.NAME`.
///
/// With a DPoP key the tokens are bound to this process's key, which no
/// other replica holds: they are never published to the fleet, and each
/// replica fetches its own (`check` refuses the rotating grant with
/// `[store]` and DPoP, whose one renewal would serve the whole fleet).
pub fn start(
    label: &str,
    config: &OAuth2Config,
    settings: UpstreamSettings,
    egress: Arc<EgressPolicy>,
    dpop: Option<Arc<Dpop>>,
) -> Result<TokenManager, (&'static str, String)> {
    let bound = dpop.is_some();
    let endpoint = Arc::new(Endpoint::new(config, settings, egress, dpop).map_err(|e| ("", e))?);
    let rotating = matches!(config.grant, Grant::RefreshToken { .. });
    let source = match &config.grant {
        Grant::ClientCredentials => OAuth2Source::ClientCredentials(endpoint),
        Grant::RefreshToken { seed } => {
            let store = store::open(config.shared_store.as_deref(), config.token_store.as_ref())?;
            let grant = RefreshGrant::open(store, StoreKey::credential(label), seed.clone())?;
            OAuth2Source::Refresh(endpoint, Box::new(grant))
        }
        Grant::AuthorizationCode(_) => {
            return Err(("grant", "each session has its own token manager".into()))
        }
    };
    let shared = config.shared_store.as_deref().filter(|_| !bound);
    let source: Box<dyn TokenSource> = match shared {
        // One renewal for the whole fleet; the rotating grant never
        // renews outside the lease.
        Some(shared) => Box::new(
            Fleet::wrap(
                Box::new(source),
                StoreKey::credential(label),
                shared,
                settings.connect_timeout + settings.response_timeout,
                if rotating {
                    store::ROTATING_STORE_CALLS
                } else {
                    0
                },
                config.refresh_at,
                shared.local_fallback && !rotating,
            )
            .map_err(|e| ("token_store", e.to_string()))?,
        ),
        None => Box::new(source),
    };
    Ok(TokenManager::start(
        label,
        source,
        config.refresh_at,
        config.wait_for_token,
        None,
    ))
}

/// The manager of one user's session: renews with the session's refresh
/// token, starting from the access token the code exchange returned (and
/// when it was asked for).
pub fn for_session(
    label: &str,
    endpoint: Arc<Endpoint>,
    grant: RefreshGrant,
    config: &OAuth2Config,
    initial: Option<(Issued, Instant)>,
) -> TokenManager {
    TokenManager::start(
        label,
        Box::new(OAuth2Source::Refresh(endpoint, Box::new(grant))),
        config.refresh_at,
        config.wait_for_token,
        initial.map(|(issued, sent_at)| (new_token(issued), sent_at)),
    )
}
