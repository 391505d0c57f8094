//! Test servers, a test CA, a sidecar started from a TOML string, and a
//! client that talks to it the way an app behind HTTP_PROXY does.

#![allow(
    dead_code,
    reason = "the integration and interop tests both include the harness; each uses a part"
)]

mod client;
pub mod gate;
mod intercept;
pub mod process;
mod redis;
mod sentinel;
mod test_ca;
mod upstream;

pub use client::*;
#[allow(
    unused_imports,
    reason = "the interop suite shares this harness and intercepts nothing"
)]
pub use intercept::*;
#[allow(unused_imports, reason = "the interop suite starts no Redis")]
pub use redis::*;
#[allow(unused_imports, reason = "the interop suite starts no Sentinel")]
pub use sentinel::*;
pub use test_ca::*;
pub use upstream::*;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use countersign::{App, StartOptions};

/// countersign started in-process from a config file in its own temp folder.
pub struct Sidecar {
    pub app: App,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
}

impl Sidecar {
    /// `toml` may say `DIR` for the sidecar's temp folder.
    pub async fn start(toml: &str) -> Sidecar {
        let dir = tempfile::tempdir().unwrap();
        Sidecar::start_in(dir, toml).await
    }

    pub async fn start_in(dir: tempfile::TempDir, toml: &str) -> Sidecar {
        let config_path = dir.path().join("proxy.toml");
        write_atomically(
            &config_path,
            &with_free_admin_port(&toml.replace("DIR", &dir.path().display().to_string())),
        );
        let options = StartOptions {
            watch_files: true,
            reload_on_sighup: false,
        };
        let app = App::start(&config_path, options)
            .await
            .expect("countersign starts");
        Sidecar {
            app,
            dir,
            config_path,
        }
    }

    pub fn proxy(&self) -> SocketAddr {
        self.app.proxy_addr()
    }

    /// Where the probes are: `/healthz`, `/readyz`, `/metrics`.
    pub fn probes(&self) -> SocketAddr {
        reachable(self.app.admin_addr())
    }

    /// Where the controls are: `/status`, `POST /reload`,
    /// `POST /oauth2/NAME/authorize`.
    pub fn control(&self) -> SocketAddr {
        reachable(self.app.control_addr())
    }

    /// Where the browser endpoints are: `/oauth2/NAME/start`, `/callback`.
    pub fn browser(&self) -> SocketAddr {
        reachable(self.app.browser_addr())
    }

    /// Replaces the config file the way editors and Kubernetes do (new file,
    /// then rename), so no reader ever sees half a file.
    pub fn rewrite(&self, toml: &str) {
        write_atomically(
            &self.config_path,
            &with_free_admin_port(&toml.replace("DIR", &self.dir.path().display().to_string())),
        );
    }

    /// Waits (bounded) until the generation passes `after`.
    pub async fn wait_for_generation(&self, after: u64) -> u64 {
        let mut rx = self.app.generations();
        let wait = rx.wait_for(|g| *g > after);
        let g = tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .expect("a reload happened within 10s")
            .expect("the app is running");
        *g
    }
}

/// A listener bound to every address (`0.0.0.0:PORT`) is reached on
/// loopback.
pub fn reachable(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
    } else {
        addr
    }
}

/// Tests run in parallel: unless a config says otherwise, its admin
/// listeners (probes, controls, browsers) take ports the OS picks instead
/// of the fixed defaults.
pub fn with_free_admin_port(toml: &str) -> String {
    if toml.contains("[admin]") {
        toml.to_string()
    } else {
        format!("{toml}\n{FREE_ADMIN_PORTS}")
    }
}

/// An `[admin]` section with every listener on a port the OS picks.
pub const FREE_ADMIN_PORTS: &str = "[admin]\nlisten = \"127.0.0.1:0\"\ncontrol_listen = \"127.0.0.1:0\"\nbrowser_listen = \"127.0.0.1:0\"\n";

pub fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp-write");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Open file descriptors of this process that point into `dir` (spool files
/// show up as `DIR/#123 (deleted)` or `DIR/.tmpXYZ (deleted)`).
pub fn open_files_in(dir: &Path) -> usize {
    let prefix = dir.display().to_string();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.display().to_string().starts_with(&prefix))
        .count()
}

/// Polls `condition` every 10ms for up to 10s.
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let probe = || std::future::ready(condition().then_some(()).ok_or("still false"));
    eventually_async(what, Duration::from_secs(10), probe).await
}

/// Polls the async `probe` every 10ms until it gives `Ok`, for up to
/// `within`, and returns what it gave. Past `within` it panics with `what`
/// and the probe's last `Err`: make that what it saw (a log, a body).
pub async fn eventually_async<T, E, Fut>(
    what: &str,
    within: Duration,
    mut probe: impl FnMut() -> Fut,
) -> T
where
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(last) if tokio::time::Instant::now() >= deadline => {
                panic!("timed out after {within:?} waiting for: {what}\nlast seen: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// `eventually_async` for code that blocks (child processes, their logs,
/// blocking clients): polls `probe` every 10ms on this thread until it
/// gives `Ok`, for up to `within`, and returns what it gave. Past `within`
/// it panics with `what` and the probe's last `Err`: make that what it saw.
pub fn eventually_blocking<T, E>(
    what: &str,
    within: Duration,
    mut probe: impl FnMut() -> Result<T, E>,
) -> T
where
    E: std::fmt::Display,
{
    let deadline = std::time::Instant::now() + within;
    loop {
        match probe() {
            Ok(value) => return value,
            Err(last) if std::time::Instant::now() >= deadline => {
                panic!("timed out after {within:?} waiting for: {what}\nlast seen: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}
