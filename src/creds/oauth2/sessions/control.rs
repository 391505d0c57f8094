//! What the app may ask of a session once it is authorized, on the
//! control side: its facts (`GET /oauth2/NAME/sessions/ID`), read from
//! the store so every replica answers the same, and its end (`DELETE`):
//! the refresh token revoked at the provider where the credential has a
//! `revocation_url` (RFC 7009), then deleted from the store, and the
//! session's manager stopped here. Other replicas find the grant gone at
//! their next renewal and refuse the session from then on.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use super::super::endpoint::{Endpoint, FetchError};
use super::{check_id, SessionError, SessionManager};
use crate::config::Secret;
use crate::creds::form::Form;
use crate::creds::token::store::{StoreError, StoredGrant};

/// The non-secret parts of a session's token responses.
#[derive(Debug)]
pub struct SessionFacts {
    /// False once this process saw the provider refuse the session's
    /// refresh token (and it holds no valid access token).
    pub authorized: bool,
    pub scope: Option<String>,
    /// Unix seconds (the clock of the host that stored them).
    pub authorized_at: Option<u64>,
    pub renewed_at: Option<u64>,
    /// How long the access token this process holds is still valid; `None`
    /// when it holds none (not used here since the start, say).
    pub token_expires_in: Option<Duration>,
    /// The fields `session_facts` selects, as the provider sent them.
    pub fields: Map<String, Value>,
}

/// What the store holds for a session.
enum Read {
    Grant(StoredGrant),
    /// Lost with the shared store's data (recorded there).
    Lost,
    Nothing,
}

/// What became of the refresh token when a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// The provider answered 200 to the RFC 7009 request.
    Revoked,
    /// The credential has no `revocation_url`.
    NotOffered,
    /// The provider did not confirm; why (no token in it). The session
    /// is ended here all the same.
    Failed(String),
}

#[derive(Debug)]
pub struct Ended {
    pub revocation: Revocation,
}

impl SessionManager {
    /// The facts of `session`; `Unknown` when nothing is stored for it.
    pub async fn facts(&self, session: &str) -> Result<SessionFacts, SessionError> {
        check_id(session)?;
        let stored = self
            .stored(session)
            .await?
            .ok_or_else(|| self.unknown(session))?;
        let running = self.lock_sessions().get(session).cloned();
        let authorized = running
            .as_ref()
            .is_none_or(|m| !m.refused() || m.has_valid_token());
        let token_expires_in = running
            .filter(|m| m.has_valid_token())
            .and_then(|m| m.stats().expires_in);
        let facts = stored.facts.unwrap_or_default();
        Ok(SessionFacts {
            authorized,
            scope: facts.scope.clone(),
            authorized_at: facts.authorized_at,
            renewed_at: facts.renewed_at,
            token_expires_in,
            fields: self.facts.visible(&facts),
        })
    }

    /// Ends `session`: revokes its refresh token where offered, forgets
    /// it, stops renewing it. `Unknown` when nothing was stored.
    pub async fn end(&self, session: &str) -> Result<Ended, SessionError> {
        check_id(session)?;
        self.refuse_if_stopping()?;
        // A renewal under way here finishes (and stores its rotated token)
        // before the grant is read, so the token revoked is the live one.
        self.retire(session).await;
        // One the shared store lost goes on: `end` deletes its record.
        if matches!(self.read(session).await?, Read::Nothing) {
            return Err(self.unknown(session));
        }
        let grant = self
            .session_grant(self.session_key(session))
            .map_err(|_| self.unknown(session))?;
        let revoker = self.revoker.as_ref();
        let endpoint = &self.endpoint;
        let outcome = grant
            .end(|token| async move {
                let Some(revoker) = revoker else {
                    return revoke_discovered(endpoint, &token).await;
                };
                match revoker.revoke(&token).await {
                    Ok(()) => Revocation::Revoked,
                    Err(e) => Revocation::Failed(crate::causes::chain(&e)),
                }
            })
            .await
            .map_err(SessionError::StoreIo)?;
        // One opened by a request meanwhile found the grant and now finds
        // it gone; it is stopped too.
        self.retire(session).await;
        let revocation = outcome.ok_or_else(|| self.unknown(session))?;
        match &revocation {
            Revocation::Failed(why) => {
                tracing::warn!(credential = %self.name, session = %session, error = %why, "session ended here, but the provider did not confirm the revocation of its refresh token")
            }
            _ => {
                tracing::info!(credential = %self.name, session = %session, revoked = matches!(revocation, Revocation::Revoked), "session ended")
            }
        }
        Ok(Ended { revocation })
    }

    /// What the store holds for `session`. A session ended on another
    /// replica reads as nothing; so does one the shared store lost (its
    /// renewal reports that: `sessions_lost` on `/status`), for the app
    /// the same thing: authorize it again.
    async fn stored(&self, session: &str) -> Result<Option<StoredGrant>, SessionError> {
        Ok(match self.read(session).await? {
            Read::Grant(grant) => Some(grant),
            Read::Lost | Read::Nothing => None,
        })
    }

    /// What the store holds for `session`, a loss told apart.
    async fn read(&self, session: &str) -> Result<Read, SessionError> {
        let (store, key) = (Arc::clone(&self.store), self.session_key(session));
        let loaded = tokio::task::spawn_blocking(move || store.load(&key))
            .await
            .map_err(|_| SessionError::StoreIo(FetchError::Interrupted))?;
        match loaded {
            Ok(Some(grant)) => Ok(Read::Grant(grant)),
            Ok(None) => Ok(Read::Nothing),
            Err(StoreError::Lost { .. }) => Ok(Read::Lost),
            Err(e) => Err(SessionError::StoreIo(FetchError::Store(e))),
        }
    }

    /// Stops this process's manager of `session`, if it runs, and waits
    /// for a renewal under way.
    async fn retire(&self, session: &str) {
        let running = self.lock_sessions().remove(session);
        if let Some(m) = running {
            m.stop();
            m.stopped().await;
        }
    }

    fn unknown(&self, session: &str) -> SessionError {
        SessionError::Unknown(session.to_string(), self.name.clone())
    }
}

/// Without a `revocation_url`: the `revocation_endpoint` the issuer's
/// discovery document names (its mTLS alias with a client certificate),
/// with the credential's client authentication; not offered when there is
/// no issuer or it names none.
async fn revoke_discovered(endpoint: &Endpoint, token: &Secret) -> Revocation {
    let Some(discovery) = endpoint.discovery() else {
        return Revocation::NotOffered;
    };
    let url = match discovery.metadata().await {
        Ok(meta) => meta.revocation_endpoint(endpoint.mtls()).cloned(),
        Err(e) => return Revocation::Failed(format!("discovery: {}", crate::causes::chain(&e))),
    };
    let Some(url) = url else {
        return Revocation::NotOffered;
    };
    let mut form = Form::default();
    form.push("token", token.expose());
    form.push("token_type_hint", "refresh_token");
    match endpoint.post_authenticated(&url, form).await {
        Ok((status, _)) if status == http::StatusCode::OK => Revocation::Revoked,
        Ok((status, _)) => Revocation::Failed(format!("revocation endpoint answered {status}")),
        Err(e) => Revocation::Failed(crate::causes::chain(&e)),
    }
}
