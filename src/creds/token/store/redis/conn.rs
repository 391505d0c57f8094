//! One connection to the shared store per `[store]` config in the process,
//! and the blocking facade over it. The `TokenStore` seam is blocking (its
//! callers build credentials synchronously, at start and on reload, and run
//! reads and writes of refresh tokens in `spawn_blocking`); Redis is async.
//! The connection therefore lives on a runtime of its own (one thread), and
//! a blocking call hands its command there and waits, bounded by the
//! configured timeout. A caller on countersign's own async threads is never
//! asked to drive Redis, so waiting cannot deadlock them.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::config::StoreConfig;

use super::super::StoreError;

/// A live connection to the shared store.
pub struct Conn {
    runtime: Option<tokio::runtime::Runtime>,
    pub manager: ConnectionManager,
    /// For connections of their own (a pub/sub subscription).
    pub client: redis::Client,
    pub timeout: Duration,
    /// For messages: the url (it holds no user info).
    pub location: String,
    /// Keys this process has seen holding a grant: one found empty later
    /// means the store lost its data (see `StoreError::Lost`).
    pub seen: Mutex<std::collections::HashSet<String>>,
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
        let client = client(config).map_err(|e| fail(describe(&e)))?;
        let settings = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let manager = {
            let _inside = runtime.enter();
            ConnectionManager::new_lazy_with_config(client.clone(), settings)
                .map_err(|e| fail(describe(&e)))?
        };
        Ok(Conn {
            runtime: Some(runtime),
            manager,
            client,
            timeout: config.timeout,
            location,
            seen: Mutex::default(),
        })
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
        rx.recv_timeout(self.timeout * 4 + Duration::from_secs(1))
            .unwrap_or_else(|_| Err(self.unreachable("no answer in time".into())))
    }

    /// Runs `work` on the store's thread and awaits it, for async callers
    /// (bounded like `block`); their own threads never drive Redis.
    pub async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let Some(rt) = &self.runtime else {
            return Err(self.unreachable("the store is closed".into()));
        };
        let task = rt.spawn(work);
        match tokio::time::timeout(self.timeout * 4 + Duration::from_secs(1), task).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(self.unreachable("the command was interrupted".into())),
            Err(_) => Err(self.unreachable("no answer in time".into())),
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

    /// Notes that `name` holds a grant (`true`) or was deleted (`false`).
    pub fn mark(&self, name: &str, held: bool) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if held {
            seen.insert(name.to_string());
        } else {
            seen.remove(name);
        }
    }

    /// Whether `name` held a grant when this process last looked.
    pub fn was_held(&self, name: &str) -> bool {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.contains(name)
    }

    pub fn unreachable(&self, cause: String) -> StoreError {
        StoreError::Unreachable {
            location: self.location.clone(),
            cause,
        }
    }
}

/// A client for `config`: user, password and TLS material from their own
/// keys, never from the url.
fn client(config: &StoreConfig) -> redis::RedisResult<redis::Client> {
    use redis::IntoConnectionInfo as _;
    let info = config.url.as_str().into_connection_info()?;
    let mut settings = info.redis_settings().clone();
    if let Some(user) = &config.username {
        settings = settings.set_username(user.expose());
    }
    if let Some(password) = &config.password {
        settings = settings.set_password(password.expose());
    }
    let info = info.set_redis_settings(settings);
    if !config.is_tls() {
        return redis::Client::open(info);
    }
    let certs = redis::TlsCertificates {
        client_tls: config
            .client_identity
            .as_ref()
            .map(|(cert, key)| redis::ClientTlsConfig {
                client_cert: cert.clone(),
                client_key: key.expose().to_vec(),
            }),
        root_cert: config.ca_pem.clone(),
    };
    redis::Client::build_with_tls(info, certs)
}

/// A Redis error as a message: its kind and text (Redis never echoes a
/// value or a password in them).
pub fn describe(e: &redis::RedisError) -> String {
    e.to_string()
}
