//! Test servers, a test CA, a sidecar started from a TOML string, and a
//! client that talks to it the way an app behind HTTP_PROXY does.

#![allow(dead_code)]

mod client;
mod intercept;
mod redis;
mod test_ca;
mod upstream;

pub use client::*;
#[allow(unused_imports)] // the interop suite shares this harness and intercepts nothing
pub use intercept::*;
#[allow(unused_imports)] // the interop suite starts no Redis
pub use redis::*;
pub use test_ca::*;
pub use upstream::*;

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

/// Tests run in parallel: unless a config says otherwise, its admin
/// listener takes a port the OS picks instead of the fixed default.
pub fn with_free_admin_port(toml: &str) -> String {
    if toml.contains("[admin]") {
        toml.to_string()
    } else {
        format!("{toml}\n[admin]\nlisten = \"127.0.0.1:0\"\n")
    }
}

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
    for _ in 0..1000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for: {what}");
}
