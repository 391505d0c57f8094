//! A reload stuck reading a secret never holds up shutdown (issue 9, item
//! 6). The secret files are regular files that stall the way a hung network
//! volume does: another process holds a write lease on each (Linux
//! `F_SETLEASE`), so countersign's `open` blocks until the lease is given
//! up or the kernel breaks it (`/proc/sys/fs/lease-break-time`, 45 s by
//! default). Each stalled read is abandoned at its 5 s timeout and the
//! next one stalls again, so a reload of `FILES` such secrets is stuck for
//! `FILES` x 5 s, far longer than shutdown may take.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::binary::{write_config, Process};
use crate::harness::*;

/// Secrets that stall: the reload is stuck for at least `FILES` x 5 s (30 s).
const FILES: usize = 6;
/// The drain timeout of the configs below.
const DRAIN: Duration = Duration::from_secs(1);
/// What shutdown may take beyond the drain: generous, and still half of
/// the time the reload is stuck.
const MARGIN: Duration = Duration::from_secs(14);

/// Holds a write lease on each file, so that another process's `open`
/// blocks. Killed (and the leases given up) on drop.
struct Leases {
    child: Child,
    lines: mpsc::Receiver<String>,
}

const HOLD: &str = r#"
import fcntl, os, signal, sys, time
fds = [os.open(p, os.O_RDONLY) for p in sys.argv[1:]]
signal.signal(signal.SIGIO, lambda *_: print("opened", flush=True))
for fd in fds:
    fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_WRLCK)
print("held", flush=True)
while True:
    time.sleep(60)
"#;

impl Leases {
    fn take(files: &[PathBuf]) -> Leases {
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(HOLD)
            .args(files)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let leases = Leases { child, lines };
        leases.wait_for("held", "the leases are taken (fs.leases-enable?)");
        leases
    }

    fn wait_for(&self, line: &str, what: &str) {
        match self.lines.recv_timeout(Duration::from_secs(20)) {
            Ok(l) if l == line => {}
            other => panic!("waiting for {what}: {other:?}"),
        }
    }

    /// Returns once countersign is blocked opening one of the files.
    fn wait_until_opened(&self) {
        self.wait_for("opened", "countersign to open a leased secret");
    }
}

impl Drop for Leases {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A config whose one credential takes a header from each of `FILES`
/// secret files in `dir`, written there.
fn config(dir: &Path, upstream: &str) -> (String, Vec<PathBuf>) {
    let mut headers = Vec::new();
    let mut files = Vec::new();
    for i in 0..FILES {
        let file = dir.join(format!("secret{i}"));
        std::fs::write(&file, format!("s{i}\n")).unwrap();
        headers.push(format!("X-S{i} = \"${{file:secret{i}}}\""));
        files.push(file);
    }
    let toml = format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\ndrain_timeout = \"{}s\"\n\
         [credential.api]\ntype = \"header\"\nheaders = {{ {} }}\n\
         [[route]]\nname = \"api\"\nhosts = [\"api.example.test\"]\nupstream = \"{upstream}\"\ncredential = \"api\"\n",
        DRAIN.as_secs(),
        headers.join(", ")
    );
    (toml, files)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_returns_while_a_reload_is_stuck_reading_secrets() {
    let upstream = Upstream::http().await;
    let dir = tempfile::tempdir().unwrap();
    let (toml, files) = config(dir.path(), &upstream.http_url());
    let sidecar = Sidecar::start_in(dir, &toml).await;
    let served = send(sidecar.proxy(), get("http://api.example.test/")).await;
    assert_eq!(served.status, 200, "{served:?}");
    assert_eq!(upstream.last().header("x-s0"), Some("s0"));

    let leases = Leases::take(&files);
    let app = sidecar.app.clone();
    let reload = tokio::spawn(async move { app.reload().await });
    let leases = tokio::task::spawn_blocking(move || {
        leases.wait_until_opened();
        leases
    })
    .await
    .unwrap();

    let started = Instant::now();
    let stopped = tokio::time::timeout(DRAIN + MARGIN, sidecar.app.shutdown()).await;
    let took = started.elapsed();
    assert!(
        stopped.is_ok(),
        "shutdown waited on a reload stuck reading a secret"
    );
    assert!(
        !reload.is_finished(),
        "the reload ended before shutdown did ({took:?}): it was not stuck"
    );
    eprintln!("shutdown with a reload stuck on {FILES} stalled secrets took {took:?}");

    // Given up, the leases let every read finish, and the reload with them.
    drop(leases);
    let ended = tokio::time::timeout(Duration::from_secs(20), reload).await;
    assert!(
        ended.is_ok(),
        "the reload did not end once the files opened"
    );
}

/// The binary: `POST /reload` stuck on the stalled secrets, then SIGTERM.
/// The process exits 0 after the drain, and before the reload ever ends
/// (its "config reload refused" line is never written).
#[test]
fn sigterm_exits_while_a_reload_is_stuck_reading_secrets() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let upstream = rt.block_on(Upstream::http());
    let dir = tempfile::tempdir().unwrap();
    let (toml, files) = config(dir.path(), &upstream.http_url());
    let mut p = Process::start(&write_config(dir.path(), &toml), &[]);
    p.wait_for("countersign is serving");
    let control = p.listened("control");

    let leases = Leases::take(&files);
    let reload = http::Request::post("/reload")
        .header("host", "admin")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let stuck = rt.spawn(async move { try_send(control, reload).await });
    leases.wait_until_opened();

    let started = Instant::now();
    p.signal("-TERM");
    let (status, lines) = p.wait_exit();
    let took = started.elapsed();
    assert_eq!(status.code(), Some(0), "{}", lines.join("\n"));
    assert!(
        took < DRAIN + MARGIN,
        "SIGTERM took {took:?} with a reload stuck:\n{}",
        lines.join("\n")
    );
    assert!(
        !lines.iter().any(|l| l.contains("config reload refused")),
        "the reload ended before the process did:\n{}",
        lines.join("\n")
    );
    eprintln!("SIGTERM with a reload stuck on {FILES} stalled secrets: exit 0 after {took:?}");
    // The reload's connection closed with the process, unanswered.
    let answer = rt.block_on(stuck).unwrap();
    assert!(answer.is_err(), "the stuck reload was answered: {answer:?}");
    drop(leases);
}
