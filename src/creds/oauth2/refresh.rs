//! The refresh_token grant with rotation. Each renewal, under the stored
//! item's lock: read the current refresh token from the `TokenStore` (the
//! configured seed when the store is empty or the seed changed), present
//! it, and save a rotated one BEFORE the new access token is handed out. A
//! spent refresh token is never presented again. On a shared store the
//! write is a compare-and-set on the version read before presenting: a
//! replica whose read is stale never overwrites a newer refresh token.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::endpoint::{Endpoint, FetchError, Issued};
use super::facts::FactRule;
use crate::config::{Secret, StoreConfig};
use crate::creds::token::store::{
    self, Facts, Lease, Leases, Presented, StoreError, StoreKey, StoreSlot, StoredGrant, TokenStore,
};

/// Seconds since the Unix epoch on this machine's clock.
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// How much longer than a renewal a lease must last, and how often a
/// replica waiting for one looks again.
const LEASE_MARGIN: Duration = Duration::from_secs(1);
const LEASE_POLL: Duration = Duration::from_millis(100);

/// The fleet-wide renewal lease of a grant on a shared store that no
/// `Fleet` wrapper renews (a user session's): held from reading the
/// refresh token to storing its successor, so no two replicas present the
/// same one.
struct GrantLease {
    leases: Leases,
    /// The longest a renewal may take: the token request and the store's
    /// writes.
    bound: Duration,
}

impl GrantLease {
    fn ttl(&self) -> Duration {
        self.bound + LEASE_MARGIN * 2
    }

    /// Waits for `key`'s lease (another replica holding it is renewing;
    /// its successor is then read from the store), at most one lease
    /// lifetime.
    async fn take(&self, key: &StoreKey) -> Result<Lease, FetchError> {
        let deadline = Instant::now() + self.ttl() + LEASE_MARGIN;
        loop {
            let acquired = self.leases.acquire(key, self.ttl()).await;
            match acquired.inspect_err(|_| store::count_error(store::StoreOp::SessionLease))? {
                Some(lease) if lease.outlives(self.bound + LEASE_MARGIN) => return Ok(lease),
                // Too little of it left (a slow store): give it back.
                Some(lease) => {
                    let _ = lease.release().await;
                }
                None => {}
            }
            if Instant::now() >= deadline {
                return Err(StoreError::Busy {
                    location: self.leases.name(key),
                }
                .into());
            }
            tokio::time::sleep(LEASE_POLL).await;
        }
    }
}

pub struct RefreshGrant {
    store: Arc<dyn TokenStore>,
    /// Whose refresh token: the credential's, or one session's.
    key: StoreKey,
    /// The stored item's lock, holding a rotated grant the store refused to
    /// take (saved before anything else).
    slot: StoreSlot,
    seed: Option<Secret>,
    seed_sha256: String,
    lease: Option<GrantLease>,
    /// A user session's: what its token responses leave for the app.
    facts: Option<FactRule>,
}

/// What the store holds now, as a renewal needs it.
struct Current {
    /// The refresh token to present.
    token: Secret,
    version: u64,
    /// Who presented the stored token last without storing its successor.
    presented: Option<Presented>,
    facts: Option<Facts>,
}

impl RefreshGrant {
    /// Reads what `store` holds under `key` once, so a damaged file or a
    /// wrong key is a clear error at start (or reload) rather than a failing
    /// background task. Errors are `(key, message)` under `credential.NAME`.
    pub fn open(
        store: Arc<dyn TokenStore>,
        key: StoreKey,
        seed: Option<Secret>,
    ) -> Result<RefreshGrant, (&'static str, String)> {
        let stored = store
            .load(&key)
            .map_err(|e| ("token_store", e.to_string()))?;
        if stored.is_none() && seed.is_none() {
            return Err((
                "refresh_token",
                format!(
                    "missing, and {} holds no refresh token yet; set it to seed the grant",
                    store.location(&key)
                ),
            ));
        }
        Ok(RefreshGrant {
            slot: store.slot(&key),
            store,
            key,
            seed_sha256: store::seed_hash(seed.as_ref()),
            seed,
            lease: None,
            facts: None,
        })
    }

    /// Keeps a session's facts with its grant, updated by each refresh.
    pub fn with_facts(mut self, rule: FactRule) -> RefreshGrant {
        self.facts = Some(rule);
        self
    }

    /// Renews only under the fleet-wide lease of the store `shared` names;
    /// `request_bound` bounds one token request. For grants no `Fleet`
    /// wrapper renews (sessions): a `Fleet` already holds its own.
    pub fn under_lease(
        mut self,
        shared: &StoreConfig,
        request_bound: Duration,
    ) -> Result<RefreshGrant, StoreError> {
        self.lease = Some(GrantLease {
            leases: Leases::open(shared)?,
            // A read, the presented mark, the successor's write.
            bound: request_bound + shared.timeout * 3,
        });
        Ok(self)
    }

    pub async fn refresh(&self, endpoint: &Endpoint, label: &str) -> Result<Issued, FetchError> {
        self.rotate(label, |presented| async move {
            endpoint
                .request(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", presented.expose()),
                ])
                .await
        })
        .await
    }

    /// One renewal under the file's lock: store what was left unsaved,
    /// `exchange` the refresh token now valid, store the rotated one.
    async fn rotate<F, Fut>(&self, label: &str, exchange: F) -> Result<Issued, FetchError>
    where
        F: FnOnce(Secret) -> Fut,
        Fut: std::future::Future<Output = Result<Issued, FetchError>>,
    {
        let mut unsaved = self.slot.lock().await;
        self.save_unsaved(&mut unsaved, label).await?;
        let lease = match &self.lease {
            Some(l) => Some(l.take(&self.key).await?),
            None => None,
        };
        let renewed = self.rotate_held(label, exchange, &mut unsaved).await;
        if let Some(lease) = lease {
            // Released after the successor is stored (or the attempt
            // failed): the next holder reads what this one left.
            if let Err(e) = lease.release().await {
                tracing::debug!(credential = %label, error = %e, "cannot release the renewal lease; it expires by itself");
            }
        }
        renewed
    }

    /// Reads, presents and stores, with the item's lock (and lease) held.
    async fn rotate_held<F, Fut>(
        &self,
        label: &str,
        exchange: F,
        unsaved: &mut Option<StoredGrant>,
    ) -> Result<Issued, FetchError>
    where
        F: FnOnce(Secret) -> Fut,
        Fut: std::future::Future<Output = Result<Issued, FetchError>>,
    {
        let Current {
            token: presented,
            version: seen,
            presented: mark,
            facts,
        } = self.current().await?;
        // On a shared store, the token is marked as presented first: a
        // replica that cannot store its successor (Redis gone between
        // the answer and the write) keeps it in memory, and the others
        // must not present the spent one meanwhile.
        let (seen, marked) = match self.store.unsaved_grace() {
            Some(grace) => {
                let version = self
                    .mark(label, &presented, seen, mark, facts.clone(), grace)
                    .await?;
                (version, true)
            }
            None => (seen, false),
        };
        let issued = match exchange(presented.clone()).await {
            Ok(issued) => issued,
            Err(e) => {
                if marked {
                    self.unmark(label, seen, presented, facts).await;
                }
                return Err(e);
            }
        };
        let facts = match &self.facts {
            Some(rule) => Some(rule.renewed(label, facts.as_ref(), &issued, unix_now())),
            None => facts,
        };
        if issued.refresh_token.is_none() && (marked || self.facts.is_some()) {
            // Not rotated: clears the mark, and keeps the new facts.
            self.unmark(label, seen, presented, facts.clone()).await;
        }
        if let Some(rotated) = &issued.refresh_token {
            let grant =
                StoredGrant::new(self.seed_sha256.clone(), rotated.clone()).with_facts(facts);
            if let Err(e) = self.replace(seen, grant.clone()).await {
                if matches!(e, FetchError::Store(StoreError::Stale { .. })) {
                    // Another replica stored a newer refresh token: this
                    // answer is not used, and the newer token is kept.
                    tracing::error!(credential = %label, error = %e, "another replica renewed this grant at the same time; its refresh token is kept");
                    return Err(e);
                }
                // The old token is spent; keep the new one in memory and
                // retry the save, but do not use an access token whose
                // refresh token is not safe on disk.
                *unsaved = Some(grant);
                tracing::error!(credential = %label, error = %e, "cannot store the rotated refresh token; retrying");
                return Err(e);
            }
            tracing::debug!(credential = %label, "rotated refresh token stored");
        }
        Ok(issued)
    }

    /// The refresh token to present now, and what else is stored with it.
    async fn current(&self) -> Result<Current, FetchError> {
        let stored = self.load().await?;
        let version = stored.as_ref().map_or(0, |v| v.version);
        match stored {
            Some(v) if self.seed.is_none() || v.grant.seed_sha256 == self.seed_sha256 => {
                Ok(Current {
                    token: v.grant.refresh_token,
                    version,
                    presented: v.grant.presented,
                    facts: v.grant.facts,
                })
            }
            // A new seed takes over: nobody has presented it yet.
            _ => Ok(Current {
                token: self.seed.clone().ok_or(FetchError::NoRefreshToken)?,
                version,
                presented: None,
                facts: None,
            }),
        }
    }

    /// What the store holds. A session's grant that another replica
    /// deleted (the shared store reads it as "lost") is an ended session:
    /// nothing.
    async fn load(&self) -> Result<Option<store::Versioned>, FetchError> {
        let (store, key) = (Arc::clone(&self.store), self.key.clone());
        let loaded = tokio::task::spawn_blocking(move || store.load_versioned(&key))
            .await
            .map_err(|_| FetchError::Interrupted)?;
        match loaded {
            Err(StoreError::Lost { .. }) if self.key.session.is_some() => Ok(None),
            other => Ok(other?),
        }
    }

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
            let stored = self.load().await?.map(|v| v.grant.refresh_token);
            let Some(token) = unsaved.take().map(|g| g.refresh_token).or(stored) else {
                return Ok(None);
            };
            let outcome = revoke(token).await;
            let (store, key) = (Arc::clone(&self.store), self.key.clone());
            tokio::task::spawn_blocking(move || store.delete(&key))
                .await
                .map_err(|_| FetchError::Interrupted)??;
            Ok(Some(outcome))
        }
        .await;
        if let Some(lease) = lease {
            let _ = lease.release().await;
        }
        ended
    }

    /// Marks `token` as presented by this process (version `seen`), unless
    /// another process's mark younger than `grace` is there; the version
    /// written.
    async fn mark(
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
    async fn unmark(&self, label: &str, seen: u64, token: Secret, facts: Option<Facts>) {
        let grant = StoredGrant::new(self.seed_sha256.clone(), token).with_facts(facts);
        if let Err(e) = self.replace(seen, grant).await {
            tracing::warn!(credential = %label, error = %e, "cannot clear the presented mark of the refresh token (or store a session's facts); other replicas wait store.unsaved_grace before presenting it");
        }
    }

    /// Stores `grant` if the version is still `seen`; the version written.
    async fn replace(&self, seen: u64, grant: StoredGrant) -> Result<u64, FetchError> {
        let (store, key) = (Arc::clone(&self.store), self.key.clone());
        match tokio::task::spawn_blocking(move || store.replace(&key, seen, &grant)).await {
            Ok(result) => result.map_err(FetchError::from),
            Err(_) => Err(FetchError::Interrupted),
        }
    }

    async fn save(&self, grant: StoredGrant) -> Result<(), FetchError> {
        let (store, key) = (Arc::clone(&self.store), self.key.clone());
        match tokio::task::spawn_blocking(move || store.save(&key, &grant)).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(FetchError::Interrupted),
        }
    }

    /// Stores the rotated grant left in the slot, if any.
    async fn save_unsaved(
        &self,
        unsaved: &mut Option<StoredGrant>,
        label: &str,
    ) -> Result<(), FetchError> {
        if let Some(grant) = unsaved.take() {
            if let Err(e) = self.save(grant.clone()).await {
                *unsaved = Some(grant);
                return Err(e);
            }
            tracing::info!(credential = %label, "stored the rotated refresh token that could not be stored before");
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

#[cfg(test)]
mod tests;
