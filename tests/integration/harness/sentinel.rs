//! A real Redis Sentinel set per test: a primary and two replicas
//! (`redis-server` on 127.0.0.1 ports chosen free, since replication and
//! Sentinel speak TCP) and one or more Sentinels (`redis-server
//! sentinel.conf --sentinel`) monitoring the primary as `mymaster`, with a
//! quorum of one so a test can fail over at will. The data nodes require
//! `DATA_PASSWORD` and the Sentinels `SENTINEL_PASSWORD`, so a client must
//! send each its own. Nothing is persisted but the Sentinels' own config
//! files (they rewrite them).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const MASTER: &str = "mymaster";
pub const DATA_PASSWORD: &str = "data-pw-3kq";
pub const SENTINEL_PASSWORD: &str = "sentinel-pw-8vz";

pub struct SentinelSet {
    pub dir: tempfile::TempDir,
    /// The three data nodes: `(port, process)`; `None` once stopped.
    nodes: Vec<(u16, Option<Child>)>,
    sentinels: Vec<(u16, Child)>,
}

impl SentinelSet {
    /// A primary, two replicas of it (so that one is left to acknowledge
    /// writes after a failover), and `sentinels` Sentinels, all answering;
    /// the replicas in sync and every Sentinel seeing them.
    pub fn start(sentinels: usize) -> SentinelSet {
        let dir = tempfile::tempdir().unwrap();
        let primary = free_port();
        let replicas = [free_port(), free_port()];
        let mut nodes = vec![(primary, Some(data_node(dir.path(), primary, None)))];
        for r in replicas {
            nodes.push((r, Some(data_node(dir.path(), r, Some(primary)))));
        }
        let mut set = SentinelSet {
            nodes,
            sentinels: Vec::new(),
            dir,
        };
        wait_until("the primary and its replicas answer", || {
            set.nodes.iter().all(|(p, _)| ping(*p))
        });
        wait_until("the replicas are in sync", || {
            replicas
                .iter()
                .all(|r| info(*r, "replication").contains("master_link_status:up"))
        });
        for i in 0..sentinels {
            let port = free_port();
            let conf = set.dir.path().join(format!("sentinel-{i}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\ndir {dir}\n\
                     requirepass {SENTINEL_PASSWORD}\n\
                     sentinel monitor {MASTER} 127.0.0.1 {primary} 1\n\
                     sentinel auth-pass {MASTER} {DATA_PASSWORD}\n\
                     sentinel down-after-milliseconds {MASTER} 1000\n\
                     sentinel failover-timeout {MASTER} 10000\n\
                     sentinel parallel-syncs {MASTER} 1\n",
                    dir = set.dir.path().display()
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
                let seen = sentinel_cli(*p, &["SENTINEL", "REPLICAS", MASTER]);
                replicas.iter().all(|r| seen.contains(&r.to_string()))
            })
        });
        set
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
        let named = sentinel_cli(
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
        let answer = sentinel_cli(self.sentinels[0].0, &["SENTINEL", "FAILOVER", MASTER]);
        assert!(answer.contains("OK"), "SENTINEL FAILOVER: {answer}");
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
            new != old && info(new, "replication").contains("role:master")
        });
        new
    }

    /// Runs `redis-cli` against data node `port`.
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        cli(port, args)
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

fn data_node(dir: &Path, port: u16, replica_of: Option<u16>) -> Child {
    let mut cmd = Command::new("redis-server");
    cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .args([
            "--requirepass",
            DATA_PASSWORD,
            "--masterauth",
            DATA_PASSWORD,
        ])
        .arg("--dir")
        .arg(dir)
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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `redis-cli` against data node `port`.
fn cli(port: u16, args: &[&str]) -> String {
    cli_as(port, DATA_PASSWORD, args)
}

/// `redis-cli` against Sentinel `port`.
fn sentinel_cli(port: u16, args: &[&str]) -> String {
    cli_as(port, SENTINEL_PASSWORD, args)
}

fn cli_as(port: u16, password: &str, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["--no-auth-warning", "-a", password])
        .args(args)
        .output()
        .expect("redis-cli comes with redis-server");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ping(port: u16) -> bool {
    cli(port, &["PING"]).trim() == "PONG"
}

fn info(port: u16, section: &str) -> String {
    cli(port, &["INFO", section])
}

/// Until `condition` holds (at most 30 s: a failover takes the Sentinels'
/// down-after time plus an election).
fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(Instant::now() < deadline, "{what}: not within 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}
