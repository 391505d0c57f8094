//! Per-user sessions for the authorization-code flow (what the GMO Aozora
//! "banking API environment" appliance does): a person starts authorization
//! for a session id on the admin listener, the provider redirects back with a
//! code, countersign exchanges it (PKCE, S256) and keeps that session's
//! tokens; the app then names the session in a header on each request.
//!
//! Each session's refresh token lives in its own file in the `token_store`
//! folder (named by a hash of the session id), written before the session's
//! first access token is used, so sessions survive restarts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::HeaderValue;
use tokio::time::Instant;

use super::endpoint::{Endpoint, FetchError};
use super::lifecycle::TokenManager;
use super::pkce::{self, Pkce};
use super::refresh::RefreshGrant;
use super::store::{self, FileStore, StoredGrant, TokenStore};
use crate::config::{CodeFlow, OAuth2Config, TokenStoreConfig};
use crate::creds::form;

/// An authorization started and not finished within this is forgotten.
const PENDING_TTL: Duration = Duration::from_secs(600);
/// At most this many authorizations wait at once; the oldest goes first.
const MAX_PENDING: usize = 1024;

/// Why a session cannot be used or authorized. Messages hold no secret.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("session id must be 1 to 128 letters, digits, `-`, `_`, `.` or `@`")]
    BadId,
    #[error("session `{0}` is not authorized; start at the admin listener's /oauth2/{1}/authorize?session={0}")]
    Unknown(String, String),
    #[error("session `{0}` must be authorized again (the provider refused its refresh token); start at /oauth2/{1}/authorize?session={0}")]
    Refused(String, String),
    #[error("unknown or expired authorization state; start again at /oauth2/NAME/authorize")]
    BadState,
    #[error("the provider answered the authorization with error `{0}`")]
    Denied(String),
    #[error("the code exchange failed")]
    Exchange(#[source] FetchError),
    #[error("the provider issued no refresh token, so the session could not outlive its first access token; ask for offline access in `scope`")]
    NoRefreshToken,
    #[error("cannot store the session's refresh token")]
    Store(#[source] FetchError),
    #[error("cannot open the session's token store: {0}")]
    StoreOpen(String),
    #[error("countersign is stopping")]
    Stopping,
}

struct Pending {
    session: String,
    pkce: Pkce,
    started: Instant,
}

pub struct SessionManager {
    name: String,
    config: OAuth2Config,
    flow: CodeFlow,
    store: TokenStoreConfig,
    endpoint: Arc<Endpoint>,
    sessions: Mutex<HashMap<String, Arc<TokenManager>>>,
    /// Managers replaced by a new authorization whose last fetch may still
    /// be under way; shutdown waits for them too.
    retired: Mutex<Vec<Arc<TokenManager>>>,
    pending: Mutex<HashMap<String, Pending>>,
    /// Set by `stop`: no session starts or is authorized after it.
    closed: AtomicBool,
}

impl std::fmt::Debug for SessionManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionManager")
            .field("credential", &self.name)
            .finish_non_exhaustive()
    }
}

impl SessionManager {
    pub fn new(
        name: &str,
        config: &OAuth2Config,
        flow: &CodeFlow,
        endpoint: Endpoint,
    ) -> Result<SessionManager, (&'static str, String)> {
        let store = config
            .token_store
            .clone()
            .ok_or(("token_store", "missing".to_string()))?;
        Ok(SessionManager {
            name: name.to_string(),
            config: config.clone(),
            flow: flow.clone(),
            store,
            endpoint: Arc::new(endpoint),
            sessions: Mutex::default(),
            retired: Mutex::default(),
            pending: Mutex::default(),
            closed: AtomicBool::new(false),
        })
    }

    /// The credential's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn session_header(&self) -> &http::HeaderName {
        &self.flow.session_header
    }

    pub fn session_param(&self) -> Option<&str> {
        self.flow.session_param.as_deref()
    }

    /// Where to send the person's browser to authorize `session`.
    pub fn authorize_url(&self, session: &str) -> Result<String, SessionError> {
        check_id(session)?;
        let pkce = Pkce::new();
        let state = pkce::random_state();
        let mut query = form::Form::default();
        query.push("response_type", "code");
        query.push("client_id", &self.config.client_id);
        query.push("redirect_uri", &self.flow.redirect_uri);
        for (name, value) in &self.config.params {
            if name == "scope" {
                query.push("scope", value.expose());
            }
        }
        query.push("state", &state);
        query.push("code_challenge", &pkce.challenge());
        query.push("code_challenge_method", "S256");
        {
            let mut pending = self.lock_pending();
            let now = Instant::now();
            pending.retain(|_, p| now.duration_since(p.started) < PENDING_TTL);
            if pending.len() >= MAX_PENDING {
                let oldest = pending
                    .iter()
                    .min_by_key(|(_, p)| p.started)
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    pending.remove(&k);
                }
            }
            pending.insert(
                state,
                Pending {
                    session: session.to_string(),
                    pkce,
                    started: now,
                },
            );
        }
        let base = self.flow.authorize_url.to_string();
        let sep = if base.contains('?') { '&' } else { '?' };
        Ok(format!("{base}{sep}{}", query.into_string()))
    }

    /// The provider's redirect: checks `state` (once, unexpired), exchanges
    /// the code with the PKCE verifier, stores the refresh token, and makes
    /// the session usable. Returns the session id.
    pub async fn complete(&self, state: &str, code: &str) -> Result<String, SessionError> {
        let pending = self
            .lock_pending()
            .remove(state)
            .ok_or(SessionError::BadState)?;
        if pending.started.elapsed() >= PENDING_TTL {
            return Err(SessionError::BadState);
        }
        let sent_at = Instant::now();
        let verifier = pending.pkce.verifier();
        let issued = self
            .endpoint
            .request(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &self.flow.redirect_uri),
                ("code_verifier", verifier.expose()),
            ])
            .await
            .map_err(SessionError::Exchange)?;
        let refresh = issued
            .refresh_token
            .clone()
            .ok_or(SessionError::NoRefreshToken)?;
        if self.closed.load(Ordering::SeqCst) {
            return Err(SessionError::Stopping);
        }
        // Under the file's lock from the save to the swap: two callbacks for
        // one session cannot leave one's token serving and the other's
        // refresh token on disk.
        let file = self.session_store(&pending.session);
        let slot = store::exclusive(&file.path);
        let mut unsaved = slot.lock().await;
        // A new authorization supersedes whatever the old one left unsaved.
        *unsaved = None;
        save(&file, refresh).await.map_err(SessionError::Store)?;
        let grant =
            RefreshGrant::open(Some(&file), None).map_err(|(_, m)| SessionError::StoreOpen(m))?;
        let manager = TokenManager::for_session(
            &format!("{}/{}", self.name, pending.session),
            Arc::clone(&self.endpoint),
            grant,
            &self.config,
            Some((issued, sent_at)),
        );
        let old = self
            .lock_sessions()
            .insert(pending.session.clone(), Arc::new(manager));
        drop(unsaved);
        if let Some(old) = old {
            old.stop();
            let mut retired = self.lock_retired();
            retired.retain(|m| m.is_fetching());
            retired.push(old);
        }
        tracing::info!(credential = %self.name, session = %pending.session, "session authorized");
        Ok(pending.session)
    }

    /// The token manager of `session`: running, or opened from its stored
    /// refresh token; never another session's.
    pub fn manager(&self, session: &str) -> Result<Arc<TokenManager>, SessionError> {
        check_id(session)?;
        if self.closed.load(Ordering::SeqCst) {
            return Err(SessionError::Stopping);
        }
        // Looked up and, if need be, opened under one lock: two first
        // requests for a stored session start one manager, not two.
        let mut sessions = self.lock_sessions();
        if let Some(m) = sessions.get(session) {
            if m.grant_refused() && !m.has_valid_token() {
                return Err(SessionError::Refused(
                    session.to_string(),
                    self.name.clone(),
                ));
            }
            return Ok(Arc::clone(m));
        }
        let unknown = || SessionError::Unknown(session.to_string(), self.name.clone());
        let file = self.session_store(session);
        if !file.path.exists() {
            return Err(unknown());
        }
        let grant = RefreshGrant::open(Some(&file), None).map_err(|_| unknown())?;
        let manager = Arc::new(TokenManager::for_session(
            &format!("{}/{}", self.name, session),
            Arc::clone(&self.endpoint),
            grant,
            &self.config,
            None,
        ));
        sessions.insert(session.to_string(), Arc::clone(&manager));
        Ok(manager)
    }

    /// The upstream refused `sent`: tell the session that holds it. When no
    /// session holds it any more, it was already replaced, and a replay
    /// (which names its session again) carries the new one.
    pub fn unauthorized(&self, sent: &HeaderValue) -> bool {
        let sessions: Vec<_> = self.lock_sessions().values().cloned().collect();
        match sessions.iter().find(|m| m.holds(sent)) {
            Some(m) => m.unauthorized(|bearer| bearer == sent),
            None => true,
        }
    }

    /// How many sessions run in this process (not counting stored ones not
    /// used since the start).
    pub fn active(&self) -> usize {
        self.lock_sessions().len()
    }

    pub fn stop(&self) {
        self.closed.store(true, Ordering::SeqCst);
        for m in self.lock_sessions().values() {
            m.stop();
        }
    }

    /// Returns once no session's fetch is under way, retired ones included.
    pub async fn stopped(&self) {
        let mut all: Vec<_> = self.lock_sessions().values().cloned().collect();
        all.extend(self.lock_retired().iter().cloned());
        for m in all {
            m.stopped().await;
        }
    }

    /// The session's file: named by a hash of the credential and session, so
    /// that two credentials never share a file even if their folders are
    /// one (through a link) and the id never shows in a file name.
    fn session_store(&self, session: &str) -> TokenStoreConfig {
        let key = crate::config::Secret::new(format!("{}\n{session}", self.name));
        let name = format!("session-{}.json", &store::seed_hash(Some(&key))[..32]);
        TokenStoreConfig {
            path: self.store.path.join(name),
            key: self.store.key.clone(),
        }
    }

    fn lock_sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<TokenManager>>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_retired(&self) -> std::sync::MutexGuard<'_, Vec<Arc<TokenManager>>> {
        self.retired.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Saves a session's first refresh token (the caller holds the file's lock).
async fn save(file: &TokenStoreConfig, refresh: crate::config::Secret) -> Result<(), FetchError> {
    let store = FileStore::new(file);
    let grant = StoredGrant {
        seed_sha256: store::seed_hash(None),
        refresh_token: refresh,
    };
    tokio::task::spawn_blocking(move || store.save(&grant))
        .await
        .map_err(|_| FetchError::Interrupted)?
        .map_err(FetchError::Store)
}

fn check_id(session: &str) -> Result<(), SessionError> {
    let ok = (1..=128).contains(&session.len())
        && session
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    ok.then_some(()).ok_or(SessionError::BadId)
}
