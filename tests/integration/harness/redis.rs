//! A real `redis-server` per test: its own temp folder, a unix socket
//! there (no port to collide on), no snapshots, and AOF only when asked.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::eventually_blocking;

pub struct RedisServer {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    aof: bool,
}

impl RedisServer {
    /// A fresh server with nothing persisted.
    pub fn start() -> RedisServer {
        RedisServer::start_with(false)
    }

    /// With `aof`, every write is in the append-only file, fsynced
    /// (`appendfsync always`), and survives a restart.
    pub fn start_with(aof: bool) -> RedisServer {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("redis.sock");
        let mut server = RedisServer {
            child: None,
            dir,
            socket,
            aof,
        };
        server.restart();
        server
    }

    /// `unix://` url of the server, for `[store] url`.
    pub fn url(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Stops the server (SIGKILL: nothing is written on the way out).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.socket);
    }

    /// Starts it again in the same folder (with AOF: with its data).
    pub fn restart(&mut self) {
        self.stop();
        let aof = if self.aof { "yes" } else { "no" };
        let child = Command::new("redis-server")
            .args(["--port", "0", "--save", "", "--appendonly", aof])
            .args(["--appendfsync", "always"])
            .arg("--unixsocket")
            .arg(&self.socket)
            .args(["--unixsocketperm", "700", "--dir"])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run redis-server ({e}); the shared-store tests need it: apt-get install redis-server (.ci/run installs it)")
            });
        self.child = Some(child);
        wait_for(&self.socket);
    }

    /// Runs `redis-cli` against the server; its output.
    pub fn cli(&self, args: &[&str]) -> Vec<u8> {
        let out = Command::new("redis-cli")
            .arg("-s")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("redis-cli comes with redis-server");
        assert!(out.status.success(), "redis-cli {args:?} failed");
        out.stdout
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Until the server answers on `socket` (at most 10 s).
fn wait_for(socket: &Path) {
    let what = format!("redis-server to answer PING on {}", socket.display());
    eventually_blocking(&what, Duration::from_secs(10), || {
        use std::io::{Read as _, Write as _};
        let mut s = std::os::unix::net::UnixStream::connect(socket).map_err(|e| e.to_string())?;
        let mut answer = [0u8; 7];
        s.write_all(b"PING\r\n").map_err(|e| e.to_string())?;
        s.read_exact(&mut answer).map_err(|e| e.to_string())?;
        match &answer {
            b"+PONG\r\n" => Ok(()),
            other => Err(format!("answered {:?}", String::from_utf8_lossy(other))),
        }
    })
}
