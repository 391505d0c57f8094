//! One renewal per credential for the whole fleet. `Fleet` wraps a
//! credential's `TokenSource` when a shared store is configured: before
//! asking the token endpoint, a replica looks at the token the fleet
//! published; only the replica holding the item's lease renews, and it
//! publishes what it got; the others keep serving their current token and
//! take the published one. The wrapped source does not know about Redis.
//!
//! Why a rotating refresh token is never presented twice: the wrapped
//! source reads the refresh token, presents it and stores the rotated one
//! (compare-and-set on its version) all while this replica holds the lease,
//! and the token request starts only if the lease outlives the longest the
//! request and the store write can take (`request_bound`) plus a margin.
//! The lease is extended while the request runs, and a holder that dies
//! leaves it to expire; the next holder reads the refresh token only after
//! that, so it reads what the last holder stored. A holder whose lease ran
//! out anyway (a frozen process) still cannot overwrite a newer refresh
//! token: the version check refuses its write.
//!
//! When the store cannot be reached, nothing is renewed locally (a second
//! renewal outside the lease would fork a rotating grant): the current token
//! serves until it expires, and the error says why. A grant without
//! rotation (client_credentials) may fetch locally if `local_fallback` says
//! so.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::HeaderValue;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::source::{Fetch, Flush, NewToken, SourceError, TokenSource};
use super::store::{self, Board, Lease, Leases, Published, StoreError, StoreKey, StoreOp};
use crate::config::StoreConfig;

/// Time kept between the end of the longest token request and the end of
/// the lease, for clock rates and the release.
const LEASE_MARGIN: Duration = Duration::from_secs(1);
/// How often a replica that waits for another's renewal looks again.
const WAIT_POLL: Duration = Duration::from_millis(100);

/// A `TokenSource` whose renewals are shared by the fleet.
pub struct Fleet {
    inner: Box<dyn TokenSource>,
    leases: Leases,
    core: Arc<Core>,
    /// The longest a token request and the writes after it may take.
    request_bound: Duration,
    lease_ttl: Duration,
    /// Fetch locally when the store is unreachable (only for grants that do
    /// not rotate).
    local_fallback: bool,
    /// Hears the fleet's announcements.
    listener: Option<tokio::task::AbortHandle>,
}

/// What the fetches and the listener of announcements share.
struct Core {
    key: StoreKey,
    board: Board,
    /// The fraction of a token's lifetime after which it is renewed.
    refresh_at: f64,
    /// The published token this replica serves.
    serving: Mutex<Option<Served>>,
    /// An announced token not yet handed to the manager.
    heard: Mutex<Option<NewToken>>,
    heard_one: Notify,
}

/// Which published token a replica serves: its generation, and a digest of
/// its value. A generation alone does not name one token: a store that lost
/// a publication (a failover to a replica that had not received it yet)
/// may be published to again under a generation already served.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Served {
    generation: u64,
    digest: [u8; 32],
}

impl std::fmt::Debug for Served {
    // Not even a digest of the token in Debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Served")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl Served {
    fn of(generation: u64, value: &[u8]) -> Served {
        let mut digest = [0u8; 32];
        digest.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, value).as_ref());
        Served { generation, digest }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if let Some(listener) = &self.listener {
            listener.abort();
        }
    }
}

impl Fleet {
    /// `inner`'s renewals of item `key`, shared through the store `config`
    /// names. `request_bound` bounds one token request of `inner` (its
    /// connect and response timeouts); `store_calls` is how many store
    /// calls one fetch of `inner` makes (`ROTATING_STORE_CALLS` for a
    /// rotating grant, 0 otherwise), each bounded by the connection's
    /// per-call budget (`Leases::renewal_bound`); a source that makes none
    /// is given one for the publication (`PUBLISH_STORE_CALLS`).
    pub fn wrap(
        inner: Box<dyn TokenSource>,
        key: StoreKey,
        config: &StoreConfig,
        request_bound: Duration,
        store_calls: u32,
        refresh_at: f64,
        local_fallback: bool,
    ) -> Result<Fleet, StoreError> {
        let leases = Leases::open(config)?;
        if store_calls > 0 {
            store::check_grace(&leases, config, request_bound);
        }
        let calls = match store_calls {
            0 => store::PUBLISH_STORE_CALLS,
            n => n,
        };
        let request_bound = leases.renewal_bound(request_bound, calls);
        let core = Arc::new(Core {
            key,
            board: Board::open(config)?,
            refresh_at,
            serving: Mutex::new(None),
            heard: Mutex::new(None),
            heard_one: Notify::new(),
        });
        let weak = Arc::downgrade(&core);
        let listener = core.board.listen(&core.key, move || {
            let core = weak.upgrade();
            async move {
                if let Some(core) = core {
                    core.hear().await;
                }
            }
        });
        Ok(Fleet {
            inner,
            leases,
            core,
            request_bound,
            lease_ttl: request_bound + LEASE_MARGIN * 2,
            local_fallback,
            listener,
        })
    }
}

impl Core {
    /// Another replica announced a token: keep it for the manager if it is
    /// one to take.
    async fn hear(&self) {
        let Ok(published) = self.board.read(&self.key).await else {
            store::count_error(StoreOp::Read);
            return;
        };
        if let Some(token) = self.worth_taking(published.as_ref()) {
            *self.heard.lock().unwrap_or_else(|p| p.into_inner()) = Some(token);
            self.heard_one.notify_one();
        }
    }

    /// The announced token, once there is one.
    async fn announced(&self) -> NewToken {
        loop {
            if let Some(token) = self.heard.lock().unwrap_or_else(|p| p.into_inner()).take() {
                return token;
            }
            self.heard_one.notified().await;
        }
    }

    fn serving(&self) -> Option<Served> {
        *self.serving.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn serve(&self, served: Served) {
        *self.serving.lock().unwrap_or_else(|p| p.into_inner()) = Some(served);
    }

    /// The published token, if it is newer than the one served (`newer`)
    /// and not yet due for renewal.
    fn worth_taking(&self, published: Option<&Published>) -> Option<NewToken> {
        let p = published?;
        let served = Served::of(p.generation, &p.value);
        if !newer(self.serving(), served) {
            return None;
        }
        let left = Duration::from_millis(u64::try_from(p.left_ms).ok()?);
        if left <= p.lifetime.mul_f64(1.0 - self.refresh_at) {
            return None;
        }
        let value = HeaderValue::from_bytes(&p.value).ok().map(|mut v| {
            v.set_sensitive(true);
            v
        })?;
        self.serve(served);
        Some(NewToken {
            value,
            lifetime: left,
        })
    }
}

impl Fleet {
    /// The token to take instead of renewing: the published one if it is
    /// worth taking, else one announced that the manager has not been
    /// handed yet (hearing it marked it served already).
    fn worth_taking(&self, published: Option<&Published>) -> Option<NewToken> {
        let heard = self
            .core
            .heard
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        self.core.worth_taking(published).or(heard)
    }

    async fn fetch_shared(&self, label: &str) -> Result<NewToken, SourceError> {
        let published = match self.core.board.read(&self.core.key).await {
            Ok(p) => p,
            Err(e) => return self.outage(label, StoreOp::Read, e).await,
        };
        if let Some(token) = self.worth_taking(published.as_ref()) {
            tracing::debug!(credential = %label, "took the token another replica published");
            return Ok(token);
        }
        // Another replica may hold the lease for as long as its TTL, and
        // one that dies leaves it to expire: wait that long, then give up
        // for now (the lifecycle retries).
        let deadline = Instant::now() + self.lease_ttl + LEASE_MARGIN;
        loop {
            match self.leases.acquire(&self.core.key, self.lease_ttl).await {
                // The store answered, but the lease's primary was not
                // vouched for: a plain retry, never a local fetch (every
                // replica would fetch its own token each attempt).
                Err(e @ StoreError::Unvouched { .. }) => {
                    store::count_error(StoreOp::Lease);
                    return Err(SourceError::new(format!(
                        "{e}; trying again (the current token serves meanwhile)"
                    )));
                }
                Err(e) => return self.outage(label, StoreOp::Lease, e).await,
                Ok(Some(lease)) => return self.renew_under(lease, label).await,
                Ok(None) => {}
            }
            // Another replica renews: serve the current token meanwhile.
            tokio::time::sleep(WAIT_POLL).await;
            let published = match self.core.board.read(&self.core.key).await {
                Ok(p) => p,
                Err(e) => return self.outage(label, StoreOp::Read, e).await,
            };
            if let Some(token) = self.worth_taking(published.as_ref()) {
                tracing::debug!(credential = %label, "took the token another replica renewed");
                return Ok(token);
            }
            if Instant::now() >= deadline {
                return Err(SourceError::new(
                    "another replica holds the renewal lease and published no token in time; waiting for it or for the lease to expire",
                ));
            }
        }
    }

    /// Renews while holding `lease`, publishes, releases.
    async fn renew_under(&self, lease: Lease, label: &str) -> Result<NewToken, SourceError> {
        // Someone may have published between the look and the lease.
        let published = match self.core.board.read(&self.core.key).await {
            Ok(p) => p,
            Err(e) => {
                self.release(lease, label).await;
                return self.outage(label, StoreOp::Read, e).await;
            }
        };
        if let Some(token) = self.worth_taking(published.as_ref()) {
            self.release(lease, label).await;
            return Ok(token);
        }
        let seen = published.as_ref().map_or(0, |p| p.generation);
        let Some(next) = next_generation(seen, self.core.serving()) else {
            self.release(lease, label).await;
            return Err(SourceError::new(format!(
                "shared token store key {} holds generation {seen}, the largest there is (damaged?); delete it to publish again",
                self.core.board.name(&self.core.key)
            )));
        };
        if !lease.outlives(self.request_bound + LEASE_MARGIN) {
            self.release(lease, label).await;
            return Err(SourceError::new(
                "the renewal lease was taken too late to cover a token request; trying again",
            ));
        }
        tracing::info!(credential = %label, "holding the fleet's renewal lease; renewing");
        let started = Instant::now();
        let (result, lease) = self.fetch_keeping(lease, label).await;
        let issued = match result {
            Ok(issued) => issued,
            Err(e) => {
                self.release(lease, label).await;
                return Err(e);
            }
        };
        let lifetime = issued.lifetime.saturating_sub(started.elapsed());
        match self
            .core
            .board
            .publish(
                &self.core.key,
                seen,
                next,
                issued.value.as_bytes(),
                lifetime,
            )
            .await
        {
            Ok(Ok(generation)) => {
                tracing::debug!(credential = %label, generation, "published the renewed token");
                self.core
                    .serve(Served::of(generation, issued.value.as_bytes()));
            }
            Ok(Err(found)) => {
                tracing::warn!(credential = %label, found, "another replica published a token during this renewal; both are valid");
            }
            Err(e) => {
                store::count_error(StoreOp::Publish);
                tracing::warn!(credential = %label, error = %e, "cannot publish the renewed token; the other replicas renew when theirs is due");
            }
        }
        self.release(lease, label).await;
        Ok(issued)
    }

    /// Runs the wrapped fetch to its end (never cut: a rotated refresh
    /// token must be stored), extending the lease meanwhile.
    async fn fetch_keeping(
        &self,
        mut lease: Lease,
        label: &str,
    ) -> (Result<NewToken, SourceError>, Lease) {
        let fetch = self.inner.fetch(label);
        tokio::pin!(fetch);
        let every = lease.ttl() / 3;
        loop {
            tokio::select! {
                result = &mut fetch => return (result, lease),
                () = tokio::time::sleep(every) => {}
            }
            // Keep driving the fetch while the lease is extended.
            let (renewed, done) = {
                let renew = lease.renew();
                tokio::pin!(renew);
                tokio::select! {
                    r = &mut renew => (Some(r), None),
                    result = &mut fetch => (None, Some(result)),
                }
            };
            if let Some(result) = done {
                return (result, lease);
            }
            let Some(renewed) = renewed else { continue };
            match renewed {
                Ok(true) => {}
                Ok(false) => {
                    tracing::error!(credential = %label, "the renewal lease ran out during a token request; the version check keeps a newer refresh token safe");
                }
                Err(e) => {
                    store::count_error(StoreOp::Lease);
                    tracing::warn!(credential = %label, error = %e, "cannot extend the renewal lease; the token request is bounded to end before it expires");
                }
            }
        }
    }

    async fn release(&self, lease: Lease, label: &str) {
        match lease.release().await {
            Ok(_) => {}
            Err(e) => {
                store::count_error(StoreOp::Lease);
                tracing::warn!(credential = %label, error = %e, "cannot release the renewal lease; it expires on its own");
            }
        }
    }

    /// The store failed at `op`: fetch locally if allowed, else keep the
    /// current token and say why.
    async fn outage(
        &self,
        label: &str,
        op: StoreOp,
        e: StoreError,
    ) -> Result<NewToken, SourceError> {
        store::count_error(op);
        if self.local_fallback {
            tracing::warn!(credential = %label, error = %e, "shared store unreachable; fetching a token locally (store.local_fallback)");
            return self.inner.fetch(label).await;
        }
        Err(SourceError::new(format!(
            "{e}; this credential is renewed only under the fleet's lease, never locally, so the current token serves until it expires"
        )))
    }
}

/// Whether the published token `published` is one to take instead of
/// `served`: a higher generation (even with the same value: the token
/// endpoint may hand back a still-valid token, and its fresh lifetime is
/// worth taking), or the same generation with another value (a store that
/// lost a publication got the next one under a generation already served).
/// Never a lower one: a store rolled back (restored, or failed over to a
/// replica behind) holds an older token than the one served.
fn newer(served: Option<Served>, published: Served) -> bool {
    match served {
        None => true,
        Some(s) => {
            published.generation > s.generation
                || (published.generation == s.generation && published.digest != s.digest)
        }
    }
}

/// The generation to publish a renewal as: after both the one read from
/// the store (`seen`) and the one served (a store that lost the last
/// publication holds an older one, or none, and a generation published
/// again would look, to an operator, like the one before). `None` past
/// `u64::MAX`: only a damaged store entry gets there.
fn next_generation(seen: u64, served: Option<Served>) -> Option<u64> {
    seen.max(served.map_or(0, |s| s.generation)).checked_add(1)
}

impl TokenSource for Fleet {
    fn fetch<'a>(&'a self, label: &'a str) -> Fetch<'a> {
        Box::pin(self.fetch_shared(label))
    }

    fn flush<'a>(&'a self, label: &'a str) -> Flush<'a> {
        self.inner.flush(label)
    }

    fn announced(&self) -> Fetch<'_> {
        Box::pin(async move { Ok(self.core.announced().await) })
    }

    fn noun(&self) -> &'static str {
        self.inner.noun()
    }
}

#[cfg(test)]
mod tests;
