//! Authorizing a session, in three steps, so that a session is bound to the
//! account of the person the app meant, and to nobody else's:
//!
//! ```text
//! app      POST /oauth2/NAME/authorize?session=ID  -> a one-time ticket
//! browser  GET  /oauth2/NAME/start?ticket=T        -> 302 to the provider
//!          (state, PKCE S256) + an HttpOnly cookie holding a browser nonce
//! provider GET  /oauth2/NAME/callback?state&code   (with that cookie)
//!          -> state and cookie checked, code exchanged, tokens stored
//! ```
//!
//! Only the app can start (a ticket is read from a POST answer, which a
//! cross-site page cannot read), and only the browser that started can
//! finish (RFC 6749 section 10.12: `state` bound to the user agent), so a
//! provider link passed to someone else cannot bind their account to a
//! session of the sender's choosing.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::super::endpoint::{unix_now, FetchError};
use super::super::id_token::IdTokenError;
use super::super::pkce::{self, Pkce};
use super::super::source;
use super::flow::Flow;
use super::{check_id, check_intent, request, SessionError, SessionManager};
use crate::config::Secret;
use crate::creds::token::store::{self, Facts, PendingKind, StoreKey, StoredGrant, TokenStore};

/// A ticket or an authorization not used within this is forgotten.
pub const FLOW_TTL: Duration = Duration::from_secs(600);

/// A ticket for the app to hand to the person's browser.
pub struct Ticket {
    pub value: String,
    pub expires_in: Duration,
}

/// Where the browser goes next, and the cookie it must carry back.
pub struct Started {
    pub location: String,
    /// `cookie_name(state)`: one cookie per authorization, so that one
    /// browser can authorize several sessions or credentials at once.
    pub cookie: String,
    pub browser_nonce: Secret,
}

/// The name of the cookie that binds the authorization with `state` to the
/// browser that started it. (`state` is URL-safe base64, so the name is a
/// valid cookie name.)
pub fn cookie_name(state: &str) -> String {
    format!("countersign-auth-{state}")
}

pub(super) fn digest(nonce: &str) -> [u8; 32] {
    Sha256::digest(nonce.as_bytes()).into()
}

impl SessionManager {
    /// Whether a request with this `Authorization` may ask for a ticket:
    /// always without an `authorize_secret`, else only with
    /// `Bearer <authorize_secret>`.
    pub fn may_start(&self, authorization: Option<&http::HeaderValue>) -> bool {
        let Some(secret) = &self.flow.authorize_secret else {
            return true;
        };
        let expected = digest(&format!("Bearer {}", secret.expose()));
        // Digests compared, so the time taken says nothing about the secret.
        authorization.is_some_and(|v| Sha256::digest(v.as_bytes()).as_slice() == expected)
    }

    /// Step 1, for the app: a one-time ticket to authorize `session`,
    /// with the consent the app created (`intent`), if any.
    pub async fn ticket(
        &self,
        session: &str,
        intent: Option<&str>,
    ) -> Result<Ticket, SessionError> {
        check_id(session)?;
        if let Some(intent) = intent {
            check_intent(intent)?;
            if self.request_signer.is_none() {
                return Err(SessionError::IntentUnused);
            }
        }
        self.refuse_if_stopping()?;
        let value = pkce::random_state()?;
        // The intent rides with the session id (neither holds a newline).
        let kept = match intent {
            Some(intent) => format!("{session}\n{intent}"),
            None => session.to_string(),
        };
        self.pending
            .put(PendingKind::Ticket, &value, Secret::new(kept), FLOW_TTL)
            .await
            .map_err(SessionError::Pending)?;
        Ok(Ticket {
            value,
            expires_in: FLOW_TTL,
        })
    }

    /// Where the person's browser starts with `ticket`, as an absolute URL:
    /// the start path on the host of `redirect_uri`, which reaches the
    /// browser endpoints (the callback is there).
    pub fn start_url(&self, ticket: &str) -> String {
        let origin = self
            .flow
            .redirect_uri
            .parse::<http::Uri>()
            .ok()
            .and_then(|u| Some(format!("{}://{}", u.scheme_str()?, u.authority()?)))
            .unwrap_or_default();
        format!("{origin}/oauth2/{}/start?ticket={ticket}", self.name)
    }

    /// Step 2, for the browser: spends `ticket`, and says where to go.
    pub async fn start(&self, ticket: &str) -> Result<Started, SessionError> {
        self.refuse_if_stopping()?;
        // Made before the ticket is spent: a failure leaves it usable.
        let pkce = Pkce::new()?;
        let state = pkce::random_state()?;
        let nonce = pkce::random_state()?;
        let base = self.authorization_endpoint().await?;
        let id_token_nonce = match self.flow.fapi.hybrid || self.request_signer.is_some() {
            true => Some(pkce::random_state()?),
            false => None,
        };
        // Taken once, on whichever replica asks first.
        let kept = self
            .pending
            .take(PendingKind::Ticket, ticket)
            .await
            .map_err(SessionError::Pending)?
            .ok_or(SessionError::BadTicket)?;
        let (session, intent) = match kept.expose().split_once('\n') {
            Some((s, i)) => (s.to_string(), Some(i.to_string())),
            None => (kept.expose().to_string(), None),
        };
        check_id(&session).map_err(|_| SessionError::BadTicket)?;
        let asked = request::Asked {
            state: &state,
            code_challenge: &pkce.challenge(),
            nonce: id_token_nonce.as_deref(),
            intent: intent.as_deref(),
        };
        let location = self.location(&base, &asked).await?;
        let flow = Flow {
            session,
            verifier: pkce.verifier().clone(),
            browser: digest(&nonce),
            nonce: id_token_nonce,
            intent,
        };
        let cookie = cookie_name(&state);
        self.pending
            .put(PendingKind::State, &state, flow.to_secret(), FLOW_TTL)
            .await
            .map_err(SessionError::Pending)?;
        Ok(Started {
            location,
            cookie,
            browser_nonce: Secret::new(nonce),
        })
    }

    /// Step 3, the provider's redirect: checks `state` (once, unexpired)
    /// and the browser's nonce, exchanges the code with the PKCE verifier,
    /// stores the refresh token, and makes the session usable. Returns the
    /// session id.
    pub async fn complete(
        &self,
        state: &str,
        code: &str,
        id_token: Option<&str>,
        browser_nonce: Option<&str>,
    ) -> Result<String, SessionError> {
        // Taken once, on whichever replica the provider's redirect reaches.
        let pending = self
            .pending
            .take(PendingKind::State, state)
            .await
            .map_err(SessionError::Pending)?
            .and_then(|v| Flow::from_secret(&v))
            .ok_or(SessionError::BadState)?;
        // Digests compared: how long the comparison takes says nothing
        // about the nonce.
        let same_browser = browser_nonce.is_some_and(|n| digest(n) == pending.browser);
        if !same_browser {
            return Err(SessionError::OtherBrowser);
        }
        self.refuse_if_stopping()?;
        // The hybrid response's ID token, checked before the code is
        // spent: a forged or swapped answer never reaches the token
        // endpoint.
        let (nonce, intent) = (pending.nonce.as_deref(), pending.intent.as_deref());
        let front = match self.flow.fapi.hybrid {
            true => {
                let token = id_token.ok_or(SessionError::IdToken(IdTokenError::Missing))?;
                // A hybrid request always sends one.
                let sent = nonce.ok_or(SessionError::IdToken(IdTokenError::Nonce))?;
                let claims = self
                    .check_id_token(token, Some(code), Some(state), Some(sent), intent)
                    .await?;
                Some(claims)
            }
            false => None,
        };
        let sent_at = Instant::now();
        let verifier = &pending.verifier;
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
        // The token response's ID token, where the provider is known
        // (OpenID Connect Core 3.1.3.7): the same rules but the hashes. In
        // the hybrid flow it must be there, and for the same person as the
        // one that came with the code (3.3.3.6).
        let back = match (&issued.id_token, self.endpoint.discovery()) {
            (Some(token), Some(_)) => self
                .check_id_token(token.expose(), None, None, nonce, None)
                .await
                .map(Some),
            _ => Ok(None),
        };
        let refused = match (back, &front) {
            (Err(SessionError::IdToken(e)), _) => Some(e),
            (Err(e), _) => return Err(e),
            (Ok(back), Some(front)) => {
                let same = back
                    .as_ref()
                    .and_then(|b| b.subject())
                    .is_some_and(|sub| Some(sub) == front.subject());
                (!same).then_some(IdTokenError::Subject)
            }
            (Ok(_), None) => None,
        };
        if let Some(e) = refused {
            // The code is spent: what it bought is revoked, not just dropped.
            return Err(SessionError::IdTokenIssued(e, self.discard(&issued).await));
        }
        let refresh = issued
            .refresh_token
            .clone()
            .ok_or(SessionError::NoRefreshToken)?;
        // Under the stored item's lock from the save to the swap: two
        // callbacks for one session cannot leave one's token serving and the
        // other's refresh token stored.
        let session = pending.session;
        let label = format!("{}/{session}", self.name);
        let facts = self.facts.authorized(&label, &issued, unix_now());
        let key = self.session_key(&session);
        let slot = self.store.slot(&key);
        let mut unsaved = slot.lock().await;
        // A new authorization supersedes whatever the old one left unsaved.
        *unsaved = None;
        save(&self.store, &key, refresh, facts)
            .await
            .map_err(SessionError::Store)?;
        if self.refuse_if_stopping().is_err() {
            // Stored: the session works after the restart. No manager is
            // started that shutdown would not wait for.
            return Ok(session);
        }
        let grant = self.session_grant(key).map_err(SessionError::StoreOpen)?;
        let manager = source::for_session(
            &label,
            Arc::clone(&self.endpoint),
            grant,
            &self.config,
            Some((issued, sent_at)),
        );
        let old = self
            .lock_sessions()
            .insert(session.clone(), Arc::new(manager));
        drop(unsaved);
        if let Some(old) = old {
            old.stop();
            let mut retired = self.lock_retired();
            retired.retain(|m| m.is_fetching());
            retired.push(old);
        }
        tracing::info!(credential = %self.name, session = %session, "session authorized");
        Ok(session)
    }
}

/// Saves a session's first refresh token, and its facts (the caller holds
/// its lock).
async fn save(
    store: &Arc<dyn TokenStore>,
    key: &StoreKey,
    refresh: Secret,
    facts: Facts,
) -> Result<(), FetchError> {
    let (store, key) = (Arc::clone(store), key.clone());
    let grant = StoredGrant::new(store::seed_hash(None), refresh).with_facts(Some(facts));
    tokio::task::spawn_blocking(move || store.save(&key, &grant))
        .await
        .map_err(|_| FetchError::Interrupted)?
        .map_err(FetchError::Store)
}
