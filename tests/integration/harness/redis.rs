//! A real `redis-server` per test: its own temp folder, a unix socket
//! there (no port to collide on), no snapshots, and AOF only when asked;
//! with `start_tls`, also a TLS port requiring a client certificate; ACL
//! users added with `acl_user`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::eventually_blocking;

use super::sentinel::{free_port, TlsFiles};

pub struct RedisServer {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    aof: bool,
    /// The TLS port (the unix socket stays plain, for `cli`).
    tls_port: Option<u16>,
}

impl RedisServer {
    /// A fresh server with nothing persisted.
    pub fn start() -> RedisServer {
        RedisServer::start_with(false)
    }

    /// With `aof`, every write is in the append-only file, fsynced
    /// (`appendfsync always`), and survives a restart.
    pub fn start_with(aof: bool) -> RedisServer {
        RedisServer::start_in(tempfile::tempdir().unwrap(), aof, None)
    }

    /// Also listening for TLS on 127.0.0.1 with `ca`'s `localhost`
    /// certificate, and requiring a client certificate `ca` signed
    /// (`tls_files` names the client's files).
    pub fn start_tls(ca: &super::TestCa) -> RedisServer {
        let dir = tempfile::tempdir().unwrap();
        TlsFiles::write(dir.path(), ca);
        RedisServer::start_in(dir, false, Some(free_port()))
    }

    fn start_in(dir: tempfile::TempDir, aof: bool, tls_port: Option<u16>) -> RedisServer {
        let socket = dir.path().join("redis.sock");
        let mut server = RedisServer {
            child: None,
            dir,
            socket,
            aof,
            tls_port,
        };
        server.restart();
        server
    }

    /// `rediss://` url of the TLS port (with `start_tls`).
    pub fn tls_url(&self) -> String {
        let port = self.tls_port.expect("started with start_tls");
        format!("rediss://localhost:{port}")
    }

    /// The client's TLS files: `store.ca_file`, `client_cert`, `client_key`.
    pub fn tls_files(&self) -> TlsFiles {
        TlsFiles::in_dir(self.dir.path())
    }

    /// Adds (or changes) ACL user `name` allowed exactly what
    /// docs/replicas.md ("Which Redis") says an ACL user needs: the keys
    /// and channels under `prefix`, and the commands the docs list, read
    /// from the docs themselves so the two cannot drift apart.
    pub fn documented_acl_user(&self, name: &str, password: &str, prefix: &str) {
        let rules = documented_acl_rules(prefix);
        let rules: Vec<&str> = rules.iter().map(String::as_str).collect();
        self.acl_user(name, password, &rules);
    }

    /// Adds (or changes) ACL user `name` with `password` and the ACL
    /// `rules` (`~keys`, `&channels`, `+command`, ...).
    pub fn acl_user(&self, name: &str, password: &str, rules: &[&str]) {
        let pass = format!(">{password}");
        let mut args = vec!["ACL", "SETUSER", name, "reset", "on", pass.as_str()];
        args.extend_from_slice(rules);
        let out = self.cli(&args);
        assert_eq!(
            String::from_utf8_lossy(&out).trim(),
            "OK",
            "ACL SETUSER {name}"
        );
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
            .args(self.tls_args())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run redis-server ({e}); the shared-store tests need it: apt-get install redis-server (.ci/run installs it)")
            });
        self.child = Some(child);
        wait_for(&self.socket);
    }

    /// The TLS port and its settings, when there is one.
    fn tls_args(&self) -> Vec<String> {
        let Some(port) = self.tls_port else {
            return Vec::new();
        };
        let mut args = vec![
            "--tls-port".to_string(),
            port.to_string(),
            "--bind".to_string(),
            "127.0.0.1".to_string(),
        ];
        for (name, value) in self.tls_files().server_settings() {
            args.push(format!("--{name}"));
            args.push(value);
        }
        args
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

/// The ACL rules docs/replicas.md gives an ACL user: `~PREFIX*`,
/// `&PREFIX*`, and `+command` for each command named between "these
/// commands:" and "(the tests" in its "Which Redis" section.
pub fn documented_acl_rules(prefix: &str) -> Vec<String> {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/replicas.md"))
        .expect("docs/replicas.md");
    let from = docs.find("these commands:").expect("the ACL paragraph");
    let list = &docs[from..];
    let list = &list[..list.find("(the tests").expect("its end")];
    let mut rules = vec![format!("~{prefix}*"), format!("&{prefix}*")];
    for quoted in list.split('`').skip(1).step_by(2) {
        assert!(
            quoted.chars().all(|c| c.is_ascii_uppercase() || c == '|'),
            "not a command in the ACL list: {quoted:?}"
        );
        rules.push(format!("+{}", quoted.to_ascii_lowercase()));
    }
    assert!(rules.len() > 10, "too few commands read: {rules:?}");
    rules
}
