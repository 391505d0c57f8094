//! Ending a grant (a session's `DELETE`): the refresh token now valid
//! revoked, then what is stored deleted, with the record of a loss.

use std::sync::Arc;

use super::super::endpoint::FetchError;
use super::RefreshGrant;
use crate::config::Secret;
use crate::creds::token::store::StoreError;

impl RefreshGrant {
    /// Ends the grant: under the item's lock (and lease), hands the
    /// refresh token now valid (the one left unsaved, if any) to `revoke`,
    /// then deletes what is stored. `None` when nothing was there.
    pub async fn end<F, Fut, T>(&self, revoke: F) -> Result<Option<T>, FetchError>
    where
        F: FnOnce(Secret) -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        let mut unsaved = self.slot.lock().await;
        let lease = match &self.lease {
            Some(l) => Some(l.take(&self.key).await?),
            None => None,
        };
        let ended = async {
            let (stored, lost) = match self.load().await {
                // Lost with the store: nothing left to revoke here.
                Err(FetchError::Store(StoreError::Lost { .. })) => (None, true),
                other => (other?.map(|v| v.grant.refresh_token), false),
            };
            let Some(token) = unsaved.take().map(|u| u.grant.refresh_token).or(stored) else {
                // A session ended after the store lost it: its record of
                // the loss goes (a credential's stays: it names the seeds
                // never to present again).
                if lost && self.key.session.is_some() {
                    self.delete().await?;
                }
                return Ok(None);
            };
            let outcome = revoke(token).await;
            self.delete().await?;
            Ok(Some(outcome))
        }
        .await;
        if let Some(lease) = lease {
            let _ = lease.release().await;
        }
        ended
    }

    /// Deletes what is stored (and the shared store's record of a loss).
    async fn delete(&self) -> Result<(), FetchError> {
        let (store, key) = (Arc::clone(&self.store), self.key.clone());
        tokio::task::spawn_blocking(move || store.delete(&key))
            .await
            .map_err(|_| FetchError::Interrupted)??;
        Ok(())
    }
}
