//! A renewal's marks in the store: the presented mark written before a
//! refresh token is handed to the token endpoint and cleared after, a
//! successor the store refused at first (held, and written later only
//! over this process's mark), and a grant the store lost (reported once).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::super::endpoint::FetchError;
use super::{unix_now, RefreshGrant};
use crate::config::Secret;
use crate::creds::token::store::{
    self, Facts, Presented, StoreError, StoredGrant, Unsaved, UnsavedOutcome,
};

impl RefreshGrant {
    /// Logs (once) that the store lost this grant, and counts a session.
    pub(super) fn report_lost(&self) {
        if self.reported_lost.swap(true, Ordering::Relaxed) {
            return;
        }
        store::count_error(store::StoreOp::Lost);
        if let Some(lost) = &self.lost {
            lost.fetch_add(1, Ordering::Relaxed);
        }
        let what = match &self.key.session {
            Some(_) => "session (its app must authorize it again)",
            None => "credential's grant",
        };
        tracing::error!(credential = %self.key.credential, key = %self.store.location(&self.key), "the shared store lost this {what}; it is not reseeded from a spent refresh token");
    }

    /// Marks `token` as presented by this process (version `seen`), unless
    /// another process's mark younger than `grace` is there; the version
    /// written.
    pub(super) async fn mark(
        &self,
        label: &str,
        token: &Secret,
        seen: u64,
        found: Option<Presented>,
        facts: Option<Facts>,
        grace: Duration,
    ) -> Result<u64, FetchError> {
        let now = unix_now();
        if let Some(p) = found.filter(|p| p.by != store::process_id()) {
            let age_s = now.saturating_sub(p.at_unix);
            if age_s < grace.as_secs() {
                return Err(FetchError::Store(StoreError::Presented {
                    location: self.store.location(&self.key),
                    by: p.by,
                    age_s,
                }));
            }
            tracing::warn!(credential = %label, replica = %p.by, age_s, "another replica presented this refresh token and never stored its successor (it died, or its store was gone for longer than store.unsaved_grace); presenting it again: if it was rotated, the token endpoint refuses it and the grant must be authorized again");
        }
        let mut grant = StoredGrant::new(self.seed_sha256.clone(), token.clone()).with_facts(facts);
        grant.presented = Some(Presented {
            by: store::process_id().to_string(),
            at_unix: now,
        });
        self.replace(seen, grant).await
    }

    /// Clears this process's mark after a request that rotated nothing
    /// (it failed, or the server does not rotate), keeping `facts`; if the
    /// store refuses, the others wait `unsaved_grace` for nothing, which
    /// is safe (and a session's facts are updated by the next renewal).
    pub(super) async fn unmark(&self, label: &str, seen: u64, token: Secret, facts: Option<Facts>) {
        let grant = StoredGrant::new(self.seed_sha256.clone(), token).with_facts(facts);
        if let Err(e) = self.replace(seen, grant).await {
            tracing::warn!(credential = %label, error = %e, "cannot clear the presented mark of the refresh token (or store a session's facts); other replicas wait store.unsaved_grace before presenting it");
        }
    }

    /// Stores the rotated grant left in the slot, if any: only over the
    /// version that carries this process's presented mark (or into a store
    /// that lost the grant). One the stored grant moved past is dropped:
    /// another replica renewed after `unsaved_grace`, or the session ended.
    pub(super) async fn save_unsaved(
        &self,
        unsaved: &mut Option<Unsaved>,
        label: &str,
    ) -> Result<(), FetchError> {
        let Some(held) = unsaved.take() else {
            return Ok(());
        };
        let (store, key, offered) = (Arc::clone(&self.store), self.key.clone(), held.clone());
        let outcome = tokio::task::spawn_blocking(move || {
            let epoch = offered.epoch.as_deref();
            store.store_unsaved(&key, offered.marked, epoch, &offered.grant)
        })
        .await
        .map_err(|_| FetchError::Interrupted)
        .and_then(|r| r.map_err(FetchError::from));
        match outcome {
            Ok(UnsavedOutcome::Stored) => {
                tracing::info!(credential = %label, "stored the rotated refresh token that could not be stored before");
            }
            Ok(UnsavedOutcome::Superseded(found)) => {
                tracing::error!(credential = %label, found, "dropped the rotated refresh token that could not be stored before: the stored grant moved past the version this replica marked (another replica renewed after store.unsaved_grace, or this replica's own write went through although its answer was lost); it is not written over it");
            }
            Ok(UnsavedOutcome::Ended) => {
                tracing::info!(credential = %label, "dropped the rotated refresh token that could not be stored before: the session was ended meanwhile");
            }
            Err(e) => {
                *unsaved = Some(held);
                return Err(e);
            }
        }
        Ok(())
    }

    /// A last try, at shutdown, to store a rotated grant still unsaved.
    pub async fn flush(&self, label: &str) {
        let mut unsaved = self.slot.lock().await;
        if let Err(e) = self.save_unsaved(&mut unsaved, label).await {
            tracing::error!(credential = %label, error = %e, "cannot store the rotated refresh token; it is lost when countersign exits, and the grant must be authorized again");
        }
    }
}
