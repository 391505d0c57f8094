//! One connection to the shared store per `[store]` config in the process,
//! and the blocking facade over it. The `TokenStore` seam is blocking (its
//! callers build credentials synchronously, at start and on reload, and run
//! reads and writes of refresh tokens in `spawn_blocking`); Redis is async.
//! The connection therefore lives on a runtime of its own (one thread), and
//! a blocking call hands its command there and waits, bounded by the
//! configured timeout. A caller on countersign's own async threads is never
//! asked to drive Redis, so waiting cannot deadlock them. Which server it
//! talks to, and following a Sentinel failover, is `primary.rs`; a command
//! that failed there is not repeated: its caller sees the store as
//! unreachable and retries as after any outage, so a write is never sent
//! twice.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Duration;

use redis::aio::ConnectionManager;

use crate::config::StoreConfig;

use super::super::StoreError;
use super::client::describe;
use super::primary::Primary;

mod vouch;

/// A live connection to the shared store.
pub struct Conn {
    runtime: Option<tokio::runtime::Runtime>,
    primary: Primary,
    pub timeout: Duration,
    /// `store.wait_replicas`: with Sentinels, what vouches for a lease's
    /// primary while no Sentinel answers (`vouch_lease`).
    wait_replicas: u32,
    /// For messages: the url (it holds no user info), or the Sentinels and
    /// master name.
    pub location: String,
    /// Keys this process has seen holding a grant, each with what it held
    /// (`Held`): one found empty later was deleted or lost (see
    /// `StoreError::Lost`), one found at a lower version of the same grant
    /// was rolled back. One entry per credential and session this process
    /// has used (a key name, a 64-character fingerprint and two numbers).
    seen: Mutex<HashMap<String, Held>>,
    /// The store's epoch (`PREFIX epoch`) as this process knows it: a
    /// store that lost its data no longer holds it.
    epoch: Mutex<Epochs>,
    /// Set once a watcher of the epoch runs for this connection.
    pub watched: std::sync::atomic::AtomicBool,
}

/// What a key held when this process last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The fingerprint of the configured seed the grant descends from.
    pub seed: String,
    /// When a session was authorized (its facts): a session ended and
    /// authorized again starts its versions over, under another time.
    pub since: Option<u64>,
    /// The highest version of this grant seen.
    pub version: u64,
}

impl Held {
    /// What `grant`, stored at `version`, is.
    pub fn of(grant: &super::super::StoredGrant, version: u64) -> Held {
        Held {
            seed: grant.seed_sha256.clone(),
            since: grant.facts.as_ref().and_then(|f| f.authorized_at),
            version,
        }
    }

    fn same_grant(&self, other: &Held) -> bool {
        self.seed == other.seed && self.since == other.since
    }
}

/// The store's epoch as this process knows it.
#[derive(Default)]
struct Epochs {
    /// The last one adopted: every item lost before it is recorded. What a
    /// read compares with.
    adopted: Option<String>,
    /// The last one read (newer than `adopted` while the items lost with
    /// `adopted` are being recorded).
    read: Option<String>,
    /// The items lost when `read` was first seen (each key with its seed's
    /// fingerprint), until they are recorded: not those seen since,
    /// which the store holds under the new epoch. At most one entry per
    /// key in `seen`.
    lost: Vec<(String, String)>,
}

/// What a read of the store's epoch tells (`Conn::epoch_peek`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EpochSeen {
    /// The one adopted (or the first one read).
    Same,
    /// Another one: the store lost its data, and what was lost (`lost`:
    /// the keys this process had seen before it, with their seeds'
    /// fingerprints) is not recorded yet. `first`: this read is the first
    /// to see it.
    Changed {
        first: bool,
        lost: Vec<(String, String)>,
    },
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // Allowed from async threads too, unlike dropping a runtime.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Conn {
    /// The connection for `config`, shared by every handle in the process
    /// while one is alive. Connects lazily: an unreachable Redis is an
    /// error of the first command, not of the start.
    pub fn shared(config: &StoreConfig) -> Result<Arc<Conn>, StoreError> {
        static CONNS: LazyLock<Mutex<HashMap<StoreConfig, Weak<Conn>>>> =
            LazyLock::new(Mutex::default);
        let mut conns = CONNS.lock().unwrap_or_else(|p| p.into_inner());
        conns.retain(|_, c| c.strong_count() > 0);
        if let Some(conn) = conns.get(config).and_then(Weak::upgrade) {
            return Ok(conn);
        }
        let conn = Arc::new(Conn::open(config)?);
        conns.insert(config.clone(), Arc::downgrade(&conn));
        Ok(conn)
    }

    fn open(config: &StoreConfig) -> Result<Conn, StoreError> {
        let location = config.url.clone();
        let fail = |cause: String| StoreError::Unreachable {
            location: location.clone(),
            cause,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("countersign-store")
            .enable_all()
            .build()
            .map_err(|e| fail(format!("cannot start its thread: {e}")))?;
        let primary = {
            let _inside = runtime.enter();
            Primary::open(config).map_err(fail)?
        };
        Ok(Conn {
            runtime: Some(runtime),
            primary,
            timeout: config.timeout,
            wait_replicas: config.wait_replicas,
            location,
            seen: Mutex::default(),
            epoch: Mutex::default(),
            watched: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The connection to the primary, found first if need be (call it on
    /// the store's thread: from the work given to `block`, `run`, `spawn`).
    pub async fn manager(&self) -> Result<ConnectionManager, StoreError> {
        let target = self
            .primary
            .target()
            .await
            .map_err(|c| self.unreachable(c))?;
        Ok(target.manager)
    }

    /// `manager`, with the address of the primary it reaches (with
    /// Sentinels), for `vouch_primary`.
    pub async fn manager_at(&self) -> Result<(ConnectionManager, Option<String>), StoreError> {
        let target = self
            .primary
            .target()
            .await
            .map_err(|c| self.unreachable(c))?;
        Ok((target.manager, target.address))
    }

    /// A client for a connection of one's own to the primary (found first
    /// if need be), and the primary's address (with Sentinels), for
    /// `forget_primary_at`.
    pub async fn client(&self) -> Result<(redis::Client, Option<String>), StoreError> {
        let target = self
            .primary
            .target()
            .await
            .map_err(|c| self.unreachable(c))?;
        Ok((target.client, target.address))
    }

    /// The store error for a command that failed with `e`. With Sentinels,
    /// a failure of the connection or of the primary (anything but an
    /// answer countersign could not read) drops the primary in use, so the
    /// next command asks the Sentinels which one it is now.
    pub fn failed(&self, e: &redis::RedisError) -> StoreError {
        use redis::ErrorKind as K;
        let ours = matches!(
            e.kind(),
            K::Parse | K::UnexpectedReturnType | K::InvalidClientConfig | K::Client
        );
        if !ours {
            self.forget_primary(&describe(e));
        }
        self.unreachable(describe(e))
    }

    /// See `Primary::confirm`: before a renewal, with Sentinels.
    pub async fn confirm_primary(&self) {
        self.primary.confirm().await;
    }

    /// The longest `run` waits for its work.
    pub fn budget(&self) -> Duration {
        self.bound()
    }

    /// The longest winning a lease and `vouch_lease` may take: the `SET`,
    /// asking the Sentinels (all at once: a connect and a command), then
    /// `WAIT` (half a timeout); zero without Sentinels.
    pub fn vouch_bound(&self) -> Duration {
        if self.primary.connections() == 0 {
            return Duration::ZERO;
        }
        self.timeout.saturating_mul(4)
    }

    /// With Sentinels, stops using the primary found (a command on it
    /// failed with `why`): the next command asks the Sentinels again.
    pub fn forget_primary(&self, why: &str) {
        self.primary.forget(None, why);
    }

    /// `forget_primary`, if the primary in use is still `at` (when given).
    pub fn forget_primary_at(&self, at: Option<&str>, why: &str) {
        self.primary.forget(at, why);
    }

    /// The longest a command may take: a connect, a command, a retry; and
    /// with Sentinels, asking each of them and checking the primary.
    fn bound(&self) -> Duration {
        let asking = self.primary.connections();
        self.timeout.saturating_mul(4 + 2 * asking.min(64)) + Duration::from_secs(1)
    }

    /// Runs `work` on the store's thread and waits for it (at most a few
    /// timeouts: a connect, a command, a retry).
    pub fn block<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let Some(rt) = &self.runtime else {
            return Err(self.unreachable("the store is closed".into()));
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        rt.spawn(async move {
            let _ = tx.send(work.await);
        });
        rx.recv_timeout(self.bound())
            .unwrap_or_else(|_| Err(self.unreachable("no answer in time".into())))
    }

    /// Runs `work` on the store's thread and awaits it, for async callers
    /// (bounded like `block`: `budget`); their own threads never drive
    /// Redis. Work not done in time is aborted, not left running unseen.
    pub async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let Some(rt) = &self.runtime else {
            return Err(self.unreachable("the store is closed".into()));
        };
        let task = rt.spawn(work);
        let abort = task.abort_handle();
        match tokio::time::timeout(self.bound(), task).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(self.unreachable("the command was interrupted".into())),
            Err(_) => {
                abort.abort();
                Err(self.unreachable("no answer in time".into()))
            }
        }
    }

    /// Runs `work` on the store's thread in the background, until it ends
    /// or the returned handle aborts it.
    pub fn spawn<F>(&self, work: F) -> Option<tokio::task::AbortHandle>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        Some(self.runtime.as_ref()?.spawn(work).abort_handle())
    }

    /// Notes that `name` holds `held` (`Some`; the highest version of
    /// the same grant is kept), or was deleted by this process (`None`).
    pub fn mark(&self, name: &str, held: Option<Held>) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        match held {
            Some(held) => match seen.get_mut(name) {
                Some(known) if known.same_grant(&held) => {
                    known.version = known.version.max(held.version);
                }
                _ => {
                    seen.insert(name.to_string(), held);
                }
            },
            None => {
                seen.remove(name);
            }
        }
    }

    /// The highest version of the grant `held` (the same seed, and for a
    /// session the same authorization) this process saw in `name`, if
    /// higher than `held`'s: the store was rolled back since.
    pub fn rolled_back(&self, name: &str, held: &Held) -> Option<u64> {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.get(name)
            .filter(|known| known.same_grant(held) && known.version > held.version)
            .map(|known| known.version)
    }

    /// The seed fingerprint of the grant `name` held when this process
    /// last looked; `None` if it held none.
    pub fn was_held(&self, name: &str) -> Option<String> {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.get(name).map(|h| h.seed.clone())
    }

    /// Every key this process has seen holding a grant, with its seed's
    /// fingerprint.
    pub fn all_held(&self) -> Vec<(String, String)> {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.iter()
            .map(|(k, v)| (k.clone(), v.seed.clone()))
            .collect()
    }

    /// The store's epoch as this process adopted it (`epoch_commit`).
    pub fn epoch(&self) -> Option<String> {
        let epoch = self.epoch.lock().unwrap_or_else(|p| p.into_inner());
        epoch.adopted.clone()
    }

    /// The store's epoch as this process last read it (newer than
    /// `epoch` while the items lost with that one are being recorded).
    pub fn epoch_read(&self) -> Option<String> {
        let epoch = self.epoch.lock().unwrap_or_else(|p| p.into_inner());
        epoch.read.clone()
    }

    /// Notes the store's epoch as read now (`epoch_commit` adopts it):
    /// whether it differs from the one adopted (the store lost its data
    /// since: flushed, or restarted without persistence), and whether
    /// this is the first read of it. A changed epoch reads as changed
    /// until every lost item is recorded and `epoch_commit` adopts it, so
    /// a failed record is tried again and no read meanwhile takes a lost
    /// session for an ended one. The first epoch read is adopted at once
    /// (nothing was seen before it).
    pub fn epoch_peek(&self, now: &str) -> EpochSeen {
        let mut epoch = self.epoch.lock().unwrap_or_else(|p| p.into_inner());
        let first = epoch.read.as_deref() != Some(now);
        if first {
            epoch.read = Some(now.to_string());
        }
        match epoch.adopted.as_deref() {
            None => {
                epoch.adopted = Some(now.to_string());
                EpochSeen::Same
            }
            Some(e) if e == now => EpochSeen::Same,
            Some(_) => {
                if first {
                    // Taken under the epoch's lock (`seen`'s is never held
                    // while waiting for it): every read of `now` gets
                    // this list, never one half made.
                    epoch.lost = self.all_held();
                }
                EpochSeen::Changed {
                    first,
                    lost: epoch.lost.clone(),
                }
            }
        }
    }

    /// Adopts the epoch `now`: every item lost with the one before is
    /// recorded in the store.
    pub fn epoch_commit(&self, now: &str) {
        let mut epoch = self.epoch.lock().unwrap_or_else(|p| p.into_inner());
        epoch.adopted = Some(now.to_string());
        if epoch.read.as_deref() == Some(now) {
            epoch.lost = Vec::new();
        }
    }

    pub fn unreachable(&self, cause: String) -> StoreError {
        StoreError::Unreachable {
            location: self.location.clone(),
            cause,
        }
    }
}

#[cfg(test)]
mod tests;
