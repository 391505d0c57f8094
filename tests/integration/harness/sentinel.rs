//! A real Redis Sentinel set per test: a primary and two replicas
//! (`redis-server` on 127.0.0.1 ports chosen free, since replication and
//! Sentinel speak TCP) and one or more Sentinels (`redis-server
//! sentinel.conf --sentinel`) monitoring the primary as `mymaster`, with a
//! quorum of one so a test can fail over at will. The data nodes require
//! `DATA_PASSWORD` and the Sentinels `SENTINEL_PASSWORD`, so a client must
//! send each its own. `start_tls` speaks only TLS everywhere (clients,
//! replication, Sentinels), with certificates from a `TestCa` and client
//! certificates required. Nothing is persisted but the Sentinels' own
//! config files (they rewrite them).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::eventually_blocking;

pub const MASTER: &str = "mymaster";
pub const DATA_PASSWORD: &str = "data-pw-3kq";
pub const SENTINEL_PASSWORD: &str = "sentinel-pw-8vz";

pub struct SentinelSet {
    pub dir: tempfile::TempDir,
    /// The three data nodes: `(port, process)`; `None` once stopped.
    nodes: Vec<(u16, Option<Child>)>,
    sentinels: Vec<(u16, Child)>,
    tls: bool,
}

/// The files of a TLS set, in its folder.
pub struct TlsFiles {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl TlsFiles {
    /// Writes `ca`'s root, its `localhost` server certificate and a client
    /// certificate it signed into `dir`; their paths.
    pub fn write(dir: &Path, ca: &super::TestCa) -> TlsFiles {
        let files = TlsFiles::in_dir(dir);
        let (cert, key) = ca.server_cert_pem();
        let (client_cert, client_key) = ca.client_cert("countersign", 30);
        for (path, text) in [
            (&files.ca, &ca.ca_pem),
            (&files.server_cert, &cert),
            (&files.server_key, &key),
            (&files.client_cert, &client_cert),
            (&files.client_key, &client_key),
        ] {
            std::fs::write(path, text).unwrap();
        }
        files
    }

    pub(super) fn in_dir(dir: &Path) -> TlsFiles {
        let at = |name: &str| dir.join(name);
        TlsFiles {
            ca: at("ca.pem"),
            server_cert: at("server.pem"),
            server_key: at("server.key"),
            client_cert: at("client.pem"),
            client_key: at("client.key"),
        }
    }

    /// The server side of Redis's TLS settings, as `name value` pairs.
    pub(super) fn server_settings(&self) -> Vec<(&'static str, String)> {
        let path = |p: &Path| p.display().to_string();
        vec![
            ("tls-cert-file", path(&self.server_cert)),
            ("tls-key-file", path(&self.server_key)),
            ("tls-ca-cert-file", path(&self.ca)),
            ("tls-replication", "yes".into()),
            ("tls-auth-clients", "yes".into()),
        ]
    }
}

impl SentinelSet {
    /// A primary, two replicas of it (so that one is left to acknowledge
    /// writes after a failover), and `sentinels` Sentinels, all answering;
    /// the replicas in sync and every Sentinel seeing them.
    pub fn start(sentinels: usize) -> SentinelSet {
        SentinelSet::start_with(sentinels, None)
    }

    /// The same, over TLS only: servers present `ca`'s `localhost` /
    /// 127.0.0.1 certificate and require a client certificate it signed
    /// (`tls_files` names the ones to use).
    pub fn start_tls(sentinels: usize, ca: &super::TestCa) -> SentinelSet {
        SentinelSet::start_with(sentinels, Some(ca))
    }

    fn start_with(sentinels: usize, ca: Option<&super::TestCa>) -> SentinelSet {
        let dir = tempfile::tempdir().unwrap();
        if let Some(ca) = ca {
            TlsFiles::write(dir.path(), ca);
        }
        let primary = free_port();
        let replicas = [free_port(), free_port()];
        let mut set = SentinelSet {
            nodes: Vec::new(),
            sentinels: Vec::new(),
            tls: ca.is_some(),
            dir,
        };
        let child = set.data_node(primary, None);
        set.nodes.push((primary, Some(child)));
        for r in replicas {
            let child = set.data_node(r, Some(primary));
            set.nodes.push((r, Some(child)));
        }
        wait_until("the primary and its replicas answer", || {
            set.nodes.iter().all(|(p, _)| set.ping(*p))
        });
        wait_until("the replicas are in sync", || {
            replicas.iter().all(|r| {
                set.info(*r, "replication")
                    .contains("master_link_status:up")
            })
        });
        for i in 0..sentinels {
            let port = free_port();
            let conf = set.dir.path().join(format!("sentinel-{i}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "{listen}bind 127.0.0.1\ndir {dir}\n\
                     requirepass {SENTINEL_PASSWORD}\n\
                     sentinel monitor {MASTER} 127.0.0.1 {primary} 1\n\
                     sentinel auth-pass {MASTER} {DATA_PASSWORD}\n\
                     sentinel down-after-milliseconds {MASTER} 1000\n\
                     sentinel failover-timeout {MASTER} 10000\n\
                     sentinel parallel-syncs {MASTER} 1\n",
                    dir = set.dir.path().display(),
                    listen = set.listen(port),
                ),
            )
            .unwrap();
            let child = Command::new("redis-server")
                .arg(&conf)
                .arg("--sentinel")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server runs as a Sentinel with --sentinel");
            set.sentinels.push((port, child));
        }
        wait_until("every Sentinel sees the replicas", || {
            set.sentinels.iter().all(|(p, _)| {
                let seen = set.sentinel_cli(*p, &["SENTINEL", "REPLICAS", MASTER]);
                replicas.iter().all(|r| seen.contains(&r.to_string()))
            })
        });
        set
    }

    /// The client-side TLS files (CA, client certificate and key), for
    /// `store.ca_file`, `client_cert`, `client_key`.
    pub fn tls_files(&self) -> TlsFiles {
        TlsFiles::in_dir(self.dir.path())
    }

    /// `host:port` of each Sentinel, for `store.sentinels`.
    pub fn sentinel_addrs(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .map(|(p, _)| format!("127.0.0.1:{p}"))
            .collect()
    }

    /// The port of the data node the Sentinels name as primary now.
    pub fn primary_port(&self) -> u16 {
        let named = self.sentinel_cli(
            self.sentinels[0].0,
            &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER],
        );
        named
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or_else(|| panic!("the Sentinel names no primary: {named:?}"))
    }

    /// Asks the first Sentinel to fail over, and waits until another
    /// data node is the primary (by the Sentinel and by its own `ROLE`).
    pub fn failover(&self) -> u16 {
        let old = self.primary_port();
        // A Sentinel refuses (NOGOODSLAVE) until it has fresh word from a
        // replica; ask until it accepts.
        let mut answer = String::new();
        wait_until("a Sentinel accepts SENTINEL FAILOVER", || {
            answer = self.sentinel_cli(self.sentinels[0].0, &["SENTINEL", "FAILOVER", MASTER]);
            answer.contains("OK")
        });
        self.wait_for_new_primary(old)
    }

    /// Kills the primary (SIGKILL) and waits until the Sentinels have
    /// promoted a replica.
    pub fn kill_primary(&mut self) -> u16 {
        let old = self.primary_port();
        for (port, child) in &mut self.nodes {
            if *port == old {
                if let Some(mut c) = child.take() {
                    let _ = c.kill();
                    let _ = c.wait();
                }
            }
        }
        self.wait_for_new_primary(old)
    }

    fn wait_for_new_primary(&self, old: u16) -> u16 {
        let mut new = old;
        wait_until("the Sentinels promote the replica", || {
            new = self.primary_port();
            new != old && self.info(new, "replication").contains("role:master")
        });
        new
    }

    /// Stops every Sentinel (SIGSTOP) with its port left open: a client's
    /// connection is accepted and its command goes unanswered, as with a
    /// Sentinel too busy to answer in time. Nothing changes in the set
    /// meanwhile (a primary replaced by a failover stays undemoted).
    pub fn pause_sentinels(&self) {
        self.signal_sentinels("-STOP");
    }

    /// Lets the paused Sentinels go on (SIGCONT).
    pub fn resume_sentinels(&self) {
        self.signal_sentinels("-CONT");
    }

    fn signal_sentinels(&self, signal: &str) {
        for (_, child) in &self.sentinels {
            let sent = Command::new("kill")
                .arg(signal)
                .arg(child.id().to_string())
                .status()
                .expect("kill runs");
            assert!(sent.success(), "kill {signal} a Sentinel");
        }
    }

    /// Runs `redis-cli` against data node `port`.
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        self.cli_as(port, DATA_PASSWORD, args)
    }

    /// `redis-cli` against Sentinel `port`.
    fn sentinel_cli(&self, port: u16, args: &[&str]) -> String {
        self.cli_as(port, SENTINEL_PASSWORD, args)
    }

    fn cli_as(&self, port: u16, password: &str, args: &[&str]) -> String {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(["--no-auth-warning", "-a", password]);
        if self.tls {
            let files = self.tls_files();
            cmd.arg("--tls")
                .arg("--cacert")
                .arg(&files.ca)
                .arg("--cert")
                .arg(&files.client_cert)
                .arg("--key")
                .arg(&files.client_key);
        }
        let out = cmd
            .args(args)
            .output()
            .expect("redis-cli comes with redis-server");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn ping(&self, port: u16) -> bool {
        self.cli(port, &["PING"]).trim() == "PONG"
    }

    fn info(&self, port: u16, section: &str) -> String {
        self.cli(port, &["INFO", section])
    }

    /// The `port` (or `tls-port`) lines of a Sentinel's config, with its
    /// TLS settings.
    fn listen(&self, port: u16) -> String {
        if !self.tls {
            return format!("port {port}\n");
        }
        let mut text = format!("port 0\ntls-port {port}\n");
        for (name, value) in self.tls_files().server_settings() {
            text.push_str(&format!("{name} {value}\n"));
        }
        text
    }

    fn data_node(&self, port: u16, replica_of: Option<u16>) -> Child {
        let mut cmd = Command::new("redis-server");
        if self.tls {
            cmd.args(["--port", "0", "--tls-port", &port.to_string()]);
            for (name, value) in self.tls_files().server_settings() {
                cmd.arg(format!("--{name}")).arg(value);
            }
        } else {
            cmd.args(["--port", &port.to_string()]);
        }
        cmd.args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args([
                "--requirepass",
                DATA_PASSWORD,
                "--masterauth",
                DATA_PASSWORD,
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--dbfilename", &format!("dump-{port}.rdb")]);
        if let Some(primary) = replica_of {
            cmd.args(["--replicaof", "127.0.0.1", &primary.to_string()]);
        }
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run redis-server ({e}); the shared-store tests need it: apt-get install redis-server (.ci/run installs it)")
            })
    }
}

impl Drop for SentinelSet {
    fn drop(&mut self) {
        for (_, c) in &mut self.sentinels {
            let _ = c.kill();
            let _ = c.wait();
        }
        for (_, c) in &mut self.nodes {
            if let Some(c) = c {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

pub(super) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Until `condition` holds (at most 30 s: a failover takes the Sentinels'
/// down-after time plus an election).
fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let probe = || condition().then_some(()).ok_or("still false");
    eventually_blocking(what, Duration::from_secs(30), probe)
}
