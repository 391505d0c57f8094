//! The refresh_token grant with rotation. Each renewal, under the stored
//! item's lock: read the current refresh token from the `TokenStore` (the
//! configured seed when the store is empty or the seed changed), present
//! it, and save a rotated one BEFORE the new access token is handed out. A
//! spent refresh token is never presented again. On a shared store the
//! write is a compare-and-set on the version read before presenting: a
//! replica whose read is stale never overwrites a newer refresh token.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::endpoint::{Endpoint, FetchError, Issued};
use super::facts::FactRule;
use crate::config::{Secret, StoreConfig};
use crate::creds::token::store::{
    self, Facts, Lease, Leases, Presented, StoreError, StoreKey, StoreSlot, StoredGrant,
    TokenStore, Unsaved,
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
    /// A user session's: its credential's count of sessions found lost
    /// with the shared store, which this grant adds to once.
    lost: Option<Arc<AtomicU64>>,
    reported_lost: AtomicBool,
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
        let (stored, lost) = match store.load(&key) {
            // Not a problem of the config: the renewal reports it (not
            // ready, `/readyz`, `/status`), and a new seed recovers.
            Err(StoreError::Lost { .. }) => (None, true),
            other => (other.map_err(|e| ("token_store", e.to_string()))?, false),
        };
        if stored.is_none() && seed.is_none() && !lost {
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
            lost: None,
            reported_lost: AtomicBool::new(false),
        })
    }

    /// Counts this session in `lost` if the shared store lost it.
    pub fn counting_lost(mut self, lost: Arc<AtomicU64>) -> RefreshGrant {
        self.lost = Some(lost);
        self
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
        let leases = Leases::open(shared)?;
        store::check_grace(&leases, shared, request_bound);
        self.lease = Some(GrantLease {
            bound: leases.renewal_bound(request_bound, store::ROTATING_STORE_CALLS),
            leases,
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
        // The lease first: a successor left unsaved is written only under
        // it (a `Fleet` holds the credential's lease around all of this).
        let lease = match &self.lease {
            Some(l) => Some(l.take(&self.key).await?),
            None => None,
        };
        let renewed = match self.save_unsaved(&mut unsaved, label).await {
            Ok(()) => self.rotate_held(label, exchange, &mut unsaved).await,
            Err(e) => Err(e),
        };
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
        unsaved: &mut Option<Unsaved>,
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
        // The shared store's epoch the grant was read (and is marked) under.
        let epoch = self.store.epoch();
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
                *unsaved = Some(Unsaved {
                    grant,
                    marked: marked.then_some(seen),
                    epoch,
                });
                tracing::error!(credential = %label, error = %e, "cannot store the rotated refresh token; retrying");
                return Err(e);
            }
            tracing::debug!(credential = %label, "rotated refresh token stored");
        }
        Ok(issued)
    }

    /// The refresh token to present now, and what else is stored with it.
    async fn current(&self) -> Result<Current, FetchError> {
        let stored = match self.load().await {
            // A grant the store lost: its seed is spent, but a new one
            // (a person authorized again) takes over.
            Err(FetchError::Store(StoreError::Lost { seeds, .. }))
                if self.seed.is_some() && !seeds.contains(&self.seed_sha256) =>
            {
                tracing::warn!(credential = %self.key.credential, "the shared store lost this grant; presenting the new refresh_token of the config");
                None
            }
            Err(e @ FetchError::Store(StoreError::Lost { .. })) => {
                self.report_lost();
                return Err(e);
            }
            other => other?,
        };
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

    /// What the store holds (a session another replica ended: nothing; a
    /// grant the store lost: `StoreError::Lost`).
    async fn load(&self) -> Result<Option<store::Versioned>, FetchError> {
        let (store, key) = (Arc::clone(&self.store), self.key.clone());
        let loaded = tokio::task::spawn_blocking(move || store.load_versioned(&key))
            .await
            .map_err(|_| FetchError::Interrupted)?;
        Ok(loaded?)
    }

    /// Stores `grant` if the version is still `seen`; the version written.
    async fn replace(&self, seen: u64, grant: StoredGrant) -> Result<u64, FetchError> {
        let (store, key) = (Arc::clone(&self.store), self.key.clone());
        match tokio::task::spawn_blocking(move || store.replace(&key, seen, &grant)).await {
            Ok(result) => result.map_err(FetchError::from),
            Err(_) => Err(FetchError::Interrupted),
        }
    }
}

mod end;
mod marks;
#[cfg(test)]
mod tests;
