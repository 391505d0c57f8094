//! Builds and runs countersign from a config file: loads it, builds the first
//! snapshot, binds every listener, and starts the reload triggers. `main` and
//! the integration tests start countersign the same way. This is where the
//! parts meet: which service answers which listener (`dispatch`), the
//! admin's handle on the app (`control`), and the reload (`swap`).

mod control;
mod dispatch;
mod swap;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex as StdMutex, Weak};

use arc_swap::ArcSwap;
use tokio::sync::{watch, Mutex};

use crate::config::{self, ConfigError, Problem};
use crate::creds::TokenRegistry;
use crate::drain::Drain;
use crate::egress::OwnAddrs;
use crate::listener::Listener;
use crate::metrics::Metrics;
use crate::reload;
use crate::snapshot::{Kept, ListenerRole, Snapshot};

/// What else `start` should run besides the listeners.
#[derive(Debug, Clone, Copy, Default)]
pub struct StartOptions {
    /// Reload when the config file, a `${file:}` secret or a CA file changes.
    pub watch_files: bool,
    /// Reload on SIGHUP (the binary; tests leave it off).
    pub reload_on_sighup: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr} for the {role}: {source}")]
    Bind {
        role: ListenerRole,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot watch config files: {0}")]
    Watch(String),
}

/// A running countersign. Cloning shares it.
#[derive(Clone)]
pub struct App {
    pub(crate) inner: Arc<AppInner>,
}

/// The app's state; only `app` and its submodules touch it.
pub(crate) struct AppInner {
    config_path: PathBuf,
    cell: Arc<ArcSwap<Snapshot>>,
    /// Held for the whole of a reload, so reloads never interleave.
    reloading: Mutex<()>,
    /// Held only while listeners are bound and the snapshot swapped (never
    /// across file reads), so shutdown never waits for a slow reload.
    listeners: Mutex<BTreeMap<ListenerRole, Listener>>,
    /// Bound addresses, readable without waiting for a reload to finish.
    addrs: StdMutex<BTreeMap<ListenerRole, SocketAddr>>,
    generation: watch::Sender<u64>,
    last_error: StdMutex<Option<ConfigError>>,
    /// Where countersign listens: never a destination.
    own: OwnAddrs,
    metrics: Arc<Metrics>,
    drain: Drain,
    /// OAuth2 token managers, kept across reloads by credential content.
    tokens: Arc<TokenRegistry>,
    /// Upstream clients and the leaf cache, kept across reloads likewise.
    kept: Kept,
    me: Weak<AppInner>,
}

impl App {
    /// Loads `config_path` and binds every listener; a bad config is refused
    /// before anything is bound.
    pub async fn start(config_path: &Path, options: StartOptions) -> Result<App, StartError> {
        crate::pki::provider::install();
        let config = load(config_path).await?;
        let own = OwnAddrs::default();
        let tokens = Arc::new(TokenRegistry::new());
        let kept = Kept::default();
        let snapshot =
            Snapshot::build(config, 1, &own, &tokens, &kept).map_err(|problems| ConfigError {
                problems,
                watched_files: Vec::new(),
            })?;
        let mut bound = Vec::new();
        for (role, addr) in snapshot.listeners() {
            let (tcp, _) =
                Listener::bind(role.clone(), addr)
                    .await
                    .map_err(|source| StartError::Bind {
                        role: role.clone(),
                        addr,
                        source,
                    })?;
            bound.push((role, addr, tcp));
        }
        let inner = Arc::new_cyclic(|me| AppInner {
            me: me.clone(),
            config_path: config_path.to_path_buf(),
            cell: Arc::new(ArcSwap::from_pointee(snapshot)),
            reloading: Mutex::new(()),
            listeners: Mutex::new(BTreeMap::new()),
            addrs: StdMutex::new(BTreeMap::new()),
            generation: watch::channel(1).0,
            last_error: StdMutex::new(None),
            own,
            metrics: Arc::new(Metrics::default()),
            drain: Drain::default(),
            tokens,
            kept,
        });
        {
            let mut listeners = inner.listeners.lock().await;
            let mut addrs = inner.addrs.lock().unwrap_or_else(|p| p.into_inner());
            for (role, addr, tcp) in bound {
                let accept = inner
                    .accept(&role)
                    .ok_or_else(|| StartError::Watch("shutting down".into()))?;
                let l = Listener::spawn(role.clone(), addr, tcp, accept);
                addrs.insert(role.clone(), l.local);
                listeners.insert(role, l);
            }
            inner.own.set(addrs.values().copied().collect());
        }
        let app = App { inner };
        if options.watch_files {
            let files = app.snapshot().watched_files.clone();
            reload::watch_files(app.clone(), &files).map_err(StartError::Watch)?;
        }
        if options.reload_on_sighup {
            reload::on_sighup(app.clone()).map_err(|e| StartError::Watch(e.to_string()))?;
        }
        Ok(app)
    }

    /// The bound address of the admin listener: the probes.
    pub fn admin_addr(&self) -> SocketAddr {
        self.addr(&ListenerRole::Admin)
            .expect("invariant: the admin listener always exists")
    }

    /// The bound address of the control listener.
    pub fn control_addr(&self) -> SocketAddr {
        self.addr(&ListenerRole::Control)
            .expect("invariant: the control listener always exists")
    }

    /// Where the browser endpoints are served: the browser listener, or
    /// the control listener when there is none (`browser_listen =
    /// "control"`, or no credential has user sessions).
    pub fn browser_addr(&self) -> SocketAddr {
        self.addr(&ListenerRole::Browser)
            .unwrap_or_else(|| self.control_addr())
    }

    /// The bound address of the forward-proxy listener.
    pub fn proxy_addr(&self) -> SocketAddr {
        self.addr(&ListenerRole::Forward)
            .expect("invariant: the forward listener always exists")
    }

    /// The bound address of a route's own listener, if it has one.
    pub fn route_addr(&self, route: &str) -> Option<SocketAddr> {
        self.addr(&ListenerRole::Reverse(route.to_string()))
    }

    fn addr(&self, role: &ListenerRole) -> Option<SocketAddr> {
        self.inner
            .addrs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(role)
            .copied()
    }

    /// The snapshot serving new requests now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.cell.load_full()
    }

    /// Follows the generation of the serving config (1 at start, +1 per
    /// successful reload).
    pub fn generations(&self) -> watch::Receiver<u64> {
        self.inner.generation.subscribe()
    }

    /// The problems of the last refused reload, if the last attempt failed.
    pub fn last_reload_error(&self) -> Option<ConfigError> {
        self.inner.last_reload_error()
    }

    /// Loads, validates and builds the config again, then swaps it in at once.
    /// On any problem the old config keeps serving.
    pub async fn reload(&self) -> Result<u64, ConfigError> {
        self.inner.reload().await
    }

    /// Stops accepting, lets requests in flight finish (up to the config's
    /// `drain_timeout`), then stops every token renewal, waiting for a token
    /// request under way (a rotated refresh token is always stored).
    /// Returns whether every request finished in time. A reload under way
    /// (say, one reading a file on a stalled volume) does not hold it up.
    pub async fn shutdown(&self) -> bool {
        let timeout = self.snapshot().proxy.drain_timeout;
        // The drain signal stops every accept loop and makes `context()`
        // refuse new listeners; a reload under way then only finishes its
        // bind and swap, so the lock below is never held for long.
        let drained = self.inner.drain.drain(timeout).await;
        self.inner.listeners.lock().await.clear();
        if !drained {
            tracing::warn!(?timeout, "drain timeout: closing connections still open");
        }
        self.inner.tokens.shutdown().await;
        drained
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }
}

impl AppInner {
    fn last_reload_error(&self) -> Option<ConfigError> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl reload::Target for App {
    fn reload_watched(&self) -> impl Future<Output = Vec<PathBuf>> + Send {
        let app = self.clone();
        async move {
            let refused = app.reload().await.err();
            let mut files = app.snapshot().watched_files.clone();
            files.extend(refused.into_iter().flat_map(|e| e.watched_files));
            files
        }
    }
}

/// Reads the config off the async threads (it touches several files).
async fn load(path: &Path) -> Result<config::Config, ConfigError> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || config::load(&path))
        .await
        .unwrap_or_else(|e| {
            Err(ConfigError {
                problems: vec![Problem {
                    path: "config".into(),
                    message: format!("loading the config panicked: {e}"),
                }],
                watched_files: Vec::new(),
            })
        })
}
