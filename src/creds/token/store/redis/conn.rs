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

mod memory;
mod vouch;

use memory::Epochs;
pub use memory::{EpochSeen, Held};

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

    pub fn unreachable(&self, cause: String) -> StoreError {
        StoreError::Unreachable {
            location: self.location.clone(),
            cause,
        }
    }
}

#[cfg(test)]
mod tests;
