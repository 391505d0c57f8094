//! The refresh_token grant with rotation. Each renewal, under the store's
//! lock: read the current refresh token from the store (the configured seed
//! when the store is empty or the seed changed), present it, and save a
//! rotated one BEFORE the new access token is handed out. A spent refresh
//! token is never presented again.

use std::sync::{Arc, Mutex};

use super::endpoint::{Endpoint, FetchError, Issued};
use super::store::{self, FileStore, StoredGrant, TokenStore};
use crate::config::{Secret, TokenStoreConfig};

pub struct RefreshGrant {
    store: Arc<dyn TokenStore>,
    lock: Arc<tokio::sync::Mutex<()>>,
    seed: Option<Secret>,
    seed_sha256: String,
    /// A rotated token the store refused to take; saved before anything else.
    unsaved: Mutex<Option<StoredGrant>>,
}

impl RefreshGrant {
    /// Opens the store and reads it once, so a damaged file or a wrong key is
    /// a clear error at start (or reload) rather than a failing background
    /// task. Errors are `(key, message)` under `credential.NAME`.
    pub fn open(
        config: Option<&TokenStoreConfig>,
        seed: Option<Secret>,
    ) -> Result<RefreshGrant, (&'static str, String)> {
        let config = config.ok_or(("token_store", "missing".to_string()))?;
        let file = FileStore::new(config);
        let stored = file.load().map_err(|e| ("token_store", e.to_string()))?;
        if stored.is_none() && seed.is_none() {
            return Err((
                "refresh_token",
                format!(
                    "missing, and {} holds no refresh token yet; set it to seed the grant",
                    config.path.display()
                ),
            ));
        }
        Ok(RefreshGrant {
            store: Arc::new(file),
            lock: store::exclusive(&config.path),
            seed_sha256: store::seed_hash(seed.as_ref()),
            seed,
            unsaved: Mutex::new(None),
        })
    }

    pub async fn refresh(&self, endpoint: &Endpoint, label: &str) -> Result<Issued, FetchError> {
        let _exclusive = self.lock.lock().await;
        let unsaved = self.lock_unsaved().take();
        if let Some(grant) = unsaved {
            if let Err(e) = self.save(grant.clone()).await {
                *self.lock_unsaved() = Some(grant);
                return Err(e);
            }
            tracing::info!(credential = %label, "stored the rotated refresh token that could not be stored before");
        }
        let presented = self.current().await?;
        let issued = endpoint
            .request(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", presented.expose()),
            ])
            .await?;
        if let Some(rotated) = &issued.refresh_token {
            let grant = StoredGrant {
                seed_sha256: self.seed_sha256.clone(),
                refresh_token: rotated.clone(),
            };
            if let Err(e) = self.save(grant.clone()).await {
                // The old token is spent; keep the new one in memory and
                // retry the save, but do not use an access token whose
                // refresh token is not safe on disk.
                *self.lock_unsaved() = Some(grant);
                tracing::error!(credential = %label, error = %e, "cannot store the rotated refresh token; retrying");
                return Err(e);
            }
            tracing::debug!(credential = %label, "rotated refresh token stored");
        }
        Ok(issued)
    }

    /// The refresh token to present now.
    async fn current(&self) -> Result<Secret, FetchError> {
        let store = Arc::clone(&self.store);
        let stored = tokio::task::spawn_blocking(move || store.load())
            .await
            .map_err(|_| FetchError::Interrupted)??;
        match stored {
            Some(g) if self.seed.is_none() || g.seed_sha256 == self.seed_sha256 => {
                Ok(g.refresh_token)
            }
            _ => self.seed.clone().ok_or(FetchError::NoRefreshToken),
        }
    }

    async fn save(&self, grant: StoredGrant) -> Result<(), FetchError> {
        let store = Arc::clone(&self.store);
        match tokio::task::spawn_blocking(move || store.save(&grant)).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(FetchError::Interrupted),
        }
    }

    fn lock_unsaved(&self) -> std::sync::MutexGuard<'_, Option<StoredGrant>> {
        self.unsaved.lock().unwrap_or_else(|p| p.into_inner())
    }
}
