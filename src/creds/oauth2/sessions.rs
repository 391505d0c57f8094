//! Per-user sessions for the authorization-code flow (what the GMO Aozora
//! "banking API environment" appliance does): the app starts authorization
//! for a session id, the person's browser goes to the provider and comes
//! back with a code (see `authorize`), countersign exchanges it (PKCE, S256)
//! and keeps that session's tokens; the app then names the session in a
//! header on each request.
//!
//! Each session's refresh token lives in the credential's `TokenStore`
//! under the session's own key (the file store: its own file in the
//! `token_store` folder, named by a hash of the credential and session id),
//! written before the session's first access token is used, so sessions
//! survive restarts. With it are the session's facts for the app (scope,
//! times, the fields `session_facts` selects), which the app reads and
//! with which it ends the session (see `control`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use http::HeaderValue;

use super::endpoint::{Endpoint, FetchError};
use super::facts::FactRule;
use super::refresh::RefreshGrant;
use super::revoke::Revoker;
use super::source;
use crate::config::{CodeFlow, OAuth2Config};
use crate::creds::token::store::{self, PendingStore, StoreError, StoreKey, TokenStore};
use crate::creds::token::{Renewing, Stopped, TokenManager};

mod authorize;
mod control;
mod discard;
mod flow;
mod request;
mod response;

pub use authorize::cookie_name;
pub use control::{Ended, Revocation, SessionFacts};

/// Why a session cannot be used or authorized. Messages hold no secret.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("session id must be 1 to 128 letters, digits, `-`, `_`, `.` or `@`")]
    BadId,
    #[error("session `{0}` is not authorized; the app starts authorization with POST /oauth2/{1}/authorize?session={0} on the control listener")]
    Unknown(String, String),
    #[error("session `{0}` must be authorized again (the provider refused its refresh token, or the session was ended); the app starts it with POST /oauth2/{1}/authorize?session={0} on the control listener")]
    Refused(String, String),
    #[error("unknown, used or expired authorization ticket; the app gets a new one with POST /oauth2/NAME/authorize?session=ID")]
    BadTicket,
    #[error("unknown, used or expired authorization state; start again from the app")]
    BadState,
    #[error("this browser did not start this authorization (its countersign cookie is missing or different); start again from the app, in one browser")]
    OtherBrowser,
    #[error("the code exchange failed")]
    Exchange(#[source] FetchError),
    #[error("the provider issued no refresh token, so the session could not outlive its first access token; ask for offline access in `scope`")]
    NoRefreshToken,
    #[error("cannot store the session's refresh token")]
    Store(#[source] FetchError),
    #[error("cannot open the session's token store: {0}")]
    StoreOpen(String),
    #[error("cannot reach the store of authorizations under way; try again")]
    Pending(#[source] StoreError),
    #[error("countersign is stopping")]
    Stopping,
    #[error("cannot discover the provider's endpoints")]
    Discovery(#[source] super::discovery::DiscoveryError),
    #[error(
        "the intent (consent id) must be 1 to 128 letters, digits, `-`, `_`, `.`, `:`, `~` or `@`"
    )]
    BadIntent,
    #[error("an intent (consent id) is carried only in a signed request object; this credential has no request_object = \"signed\"")]
    IntentUnused,
    /// The provider's discovery document says it lacks what the
    /// credential asks for.
    #[error("{0}")]
    NotOffered(String),
    #[error("the pushed authorization request failed")]
    Par(#[source] FetchError),
    /// The status, and what the answer said (the OAuth `error` code in
    /// parentheses, safe characters only).
    #[error("the PAR endpoint answered {0}{1}; start again from the app")]
    ParRefused(http::StatusCode, String),
    #[error(transparent)]
    Sign(#[from] super::jwt::SignError),
    /// The hybrid response's ID token was refused (`id-token-invalid`,
    /// the reason after it); the app starts again.
    #[error("id-token-invalid")]
    IdToken(#[source] super::id_token::IdTokenError),
    /// The token response's ID token was refused after the code was
    /// spent (`id-token-invalid`); what became of the tokens issued with it.
    #[error("id-token-invalid; {1}")]
    IdTokenIssued(#[source] super::id_token::IdTokenError, discard::Discarded),
    /// A JARM response was refused (`jarm-invalid`).
    #[error("jarm-invalid")]
    Jarm(#[source] super::jarm::JarmError),
    #[error("cannot read or delete the session in its store")]
    StoreIo(#[source] FetchError),
    /// The OS random source failed: no ticket, state or verifier could be
    /// made (countersign's fault, answered 500).
    #[error(transparent)]
    Random(#[from] crate::random::RandomError),
}

pub struct SessionManager {
    name: String,
    config: OAuth2Config,
    flow: CodeFlow,
    store: Arc<dyn TokenStore>,
    endpoint: Arc<Endpoint>,
    /// Signs request objects, with `request_object = "signed"`.
    request_signer: Option<super::jwt::AssertionSigner>,
    /// Where a session's refresh token is revoked when it ends.
    revoker: Option<Revoker>,
    /// What each session keeps of its token responses for the app.
    facts: FactRule,
    sessions: Mutex<HashMap<String, Arc<TokenManager>>>,
    /// Managers replaced by a new authorization whose last fetch may still
    /// be under way; shutdown waits for them too.
    retired: Mutex<Vec<Arc<TokenManager>>>,
    /// Tickets issued and authorizations started, not yet finished: in
    /// memory, or in Redis with `[store]`.
    pending: Arc<dyn PendingStore>,
    /// Set by `stop`: no session starts or is authorized after it.
    closed: AtomicBool,
    /// The longest one token request may take (connect and response
    /// timeouts): bounds a session's renewal lease on a shared store.
    request_bound: std::time::Duration,
    /// Sessions this process found lost with the shared store's data.
    lost: Arc<std::sync::atomic::AtomicU64>,
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
        revoker: Option<Revoker>,
        request_bound: std::time::Duration,
    ) -> Result<SessionManager, (&'static str, String)> {
        let store = store::open(config.shared_store.as_deref(), config.token_store.as_ref())?;
        let pending = store::pending(config.shared_store.as_deref(), name)?;
        let request_signer = match &flow.fapi.request_object {
            Some(key) => {
                Some(super::jwt::AssertionSigner::new(key).map_err(|e| ("private_key_file", e))?)
            }
            None => None,
        };
        Ok(SessionManager {
            request_signer,
            name: name.to_string(),
            config: config.clone(),
            flow: flow.clone(),
            store,
            endpoint: Arc::new(endpoint),
            revoker,
            facts: FactRule::new(&flow.session_facts, config),
            sessions: Mutex::default(),
            retired: Mutex::default(),
            pending,
            closed: AtomicBool::new(false),
            request_bound,
            lost: Arc::default(),
        })
    }

    /// The refresh grant of one session: on a shared store, renewed only
    /// under the fleet-wide lease of that session, so two replicas serving
    /// it never present the same refresh token.
    fn session_grant(&self, key: StoreKey) -> Result<RefreshGrant, String> {
        let grant = RefreshGrant::open(Arc::clone(&self.store), key, None)
            .map_err(|(_, m)| m)?
            .with_facts(self.facts.clone())
            .counting_lost(Arc::clone(&self.lost));
        match self.config.shared_store.as_deref() {
            Some(shared) => grant
                .under_lease(shared, self.request_bound)
                .map_err(|e| e.to_string()),
            None => Ok(grant),
        }
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

    /// The token manager of `session`: running, or opened from its stored
    /// refresh token; never another session's.
    pub fn manager(&self, session: &str) -> Result<Arc<TokenManager>, SessionError> {
        check_id(session)?;
        self.refuse_if_stopping()?;
        // Looked up and, if need be, opened under one lock: two first
        // requests for a stored session start one manager, not two.
        let mut sessions = self.lock_sessions();
        if let Some(m) = sessions.get(session) {
            if m.refused() && !m.has_valid_token() {
                return Err(SessionError::Refused(
                    session.to_string(),
                    self.name.clone(),
                ));
            }
            return Ok(Arc::clone(m));
        }
        // Nothing stored (or nothing usable) is an unknown session.
        let unknown = || SessionError::Unknown(session.to_string(), self.name.clone());
        let grant = self
            .session_grant(self.session_key(session))
            .map_err(|_| unknown())?;
        let manager = Arc::new(source::for_session(
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

    /// How many sessions this process found lost with the shared store's
    /// data since it started (each must be authorized again).
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
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

    /// Where the session's refresh token is stored.
    fn session_key(&self, session: &str) -> StoreKey {
        StoreKey::session(&self.name, session)
    }

    fn refuse_if_stopping(&self) -> Result<(), SessionError> {
        match self.closed.load(Ordering::SeqCst) {
            true => Err(SessionError::Stopping),
            false => Ok(()),
        }
    }

    fn lock_sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<TokenManager>>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_retired(&self) -> std::sync::MutexGuard<'_, Vec<Arc<TokenManager>>> {
        self.retired.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Renewing for SessionManager {
    fn stop(&self) {
        SessionManager::stop(self);
    }

    fn stopped(&self) -> Stopped<'_> {
        Box::pin(SessionManager::stopped(self))
    }
}

/// A consent id as banks make them (UUIDs, `urn-bank-intent-88379`).
fn check_intent(intent: &str) -> Result<(), SessionError> {
    let ok = (1..=128).contains(&intent.len())
        && intent
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '~' | '@'));
    ok.then_some(()).ok_or(SessionError::BadIntent)
}

fn check_id(session: &str) -> Result<(), SessionError> {
    let ok = (1..=128).contains(&session.len())
        && session
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    ok.then_some(()).ok_or(SessionError::BadId)
}
