//! The compiled binary as a child process: `countersign run` started on a
//! config, its stderr read line by line, signals, and what /proc says of
//! it. The integration suite's `binary` tests and the interop suite's
//! fleet tests both run it.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::{eventually_blocking, with_free_admin_port};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_countersign");

/// A running `countersign run`, its stderr read line by line.
pub(crate) struct Process {
    child: Child,
    lines: mpsc::Receiver<String>,
    pub(crate) seen: Vec<String>,
}

impl Process {
    pub(crate) fn start(config: &Path, env: &[(&str, &str)]) -> Process {
        Process::start_with(config, &[], env)
    }

    pub(crate) fn start_with(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Process {
        let mut command = Command::new(BIN);
        command.args(["run", "--config"]).arg(config).args(args);
        Process::spawn(command, env)
    }

    /// `countersign run --config CONFIG` under `ulimit -n NOFILE`.
    pub(crate) fn start_limited(config: &Path, nofile: u32) -> Process {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!(
                "ulimit -n {nofile} && exec \"$0\" run --config \"$1\""
            ))
            .arg(BIN)
            .arg(config);
        Process::spawn(command, &[])
    }

    fn spawn(mut command: Command, env: &[(&str, &str)]) -> Process {
        let mut child = command
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Process {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Every line logged so far.
    pub(crate) fn drain_lines(&mut self) -> &[String] {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        &self.seen
    }

    /// Waits (up to 20s) for a log line containing `needle`, read after
    /// every line taken so far; the lines after it stay for the next wait.
    pub(crate) fn wait_for(&mut self, needle: &str) -> String {
        let (lines, seen) = (&self.lines, &mut self.seen);
        let what = format!("a log line with {needle:?}");
        eventually_blocking(&what, Duration::from_secs(20), || loop {
            match lines.try_recv() {
                Ok(line) => {
                    seen.push(line.clone());
                    if line.contains(needle) {
                        return Ok(line);
                    }
                }
                Err(mpsc::TryRecvError::Empty) => return Err(format!("\n{}", seen.join("\n"))),
                Err(mpsc::TryRecvError::Disconnected) => {
                    panic!(
                        "the process exited before {what}; saw:\n{}",
                        seen.join("\n")
                    )
                }
            }
        })
    }

    /// The address from the `listening` line of `role`.
    pub(crate) fn listening(&mut self, role: &str) -> SocketAddr {
        local_addr(&self.wait_for(&format!("listening role={role}")))
    }

    /// The address from a `listening` line of `role` already read (for
    /// listeners bound before a line the test waited for).
    pub(crate) fn listened(&mut self, role: &str) -> SocketAddr {
        let needle = format!("listening role={role} ");
        let line = self
            .drain_lines()
            .iter()
            .rev()
            .find(|line| line.contains(&needle))
            .unwrap_or_else(|| panic!("no {needle:?} line yet"))
            .clone();
        local_addr(&line)
    }

    /// Waits (up to 30s) for the process to exit; returns its status and
    /// every log line it wrote. Its stderr closes as it exits, so reading
    /// it to the end is the wait.
    pub(crate) fn wait_exit(&mut self) -> (std::process::ExitStatus, Vec<String>) {
        let (lines, seen) = (&self.lines, &mut self.seen);
        let what = "the process to exit (its stderr to close)";
        eventually_blocking(what, Duration::from_secs(30), || loop {
            match lines.try_recv() {
                Ok(line) => seen.push(line),
                Err(mpsc::TryRecvError::Disconnected) => return Ok(()),
                Err(mpsc::TryRecvError::Empty) => return Err(format!("\n{}", seen.join("\n"))),
            }
        });
        let status = self.child.wait().expect("the exit status");
        (status, self.seen.clone())
    }

    pub(crate) fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Peak resident memory (VmHWM) in KiB.
    pub(crate) fn peak_rss_kib(&self) -> u64 {
        self.status_kib("VmHWM:")
    }

    /// A `/proc/PID/status` field in KiB (`VmRSS:`, `VmHWM:`).
    pub(crate) fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the process is alive");
        let line = status
            .lines()
            .find(|l| l.starts_with(field))
            .unwrap_or_else(|| panic!("no {field} in /proc status"));
        line.split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no number in {line:?}"))
    }

    /// Open file descriptors of the process.
    pub(crate) fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `local=` address of a `listening` log line.
fn local_addr(line: &str) -> SocketAddr {
    let addr = line.rsplit("local=").next().unwrap().trim();
    addr.parse()
        .unwrap_or_else(|_| panic!("no address in {line:?}"))
}

/// Writes `toml` as `proxy.toml` in `dir` (its admin listener on a free
/// port); the path.
pub(crate) fn write_config(dir: &Path, toml: &str) -> std::path::PathBuf {
    let path = dir.join("proxy.toml");
    std::fs::write(&path, with_free_admin_port(toml)).unwrap();
    path
}

/// `countersign run` as a child process on a config in its own temp
/// folder, for tests that otherwise would start the app in-process
/// (`Sidecar`): the same `DIR` placeholder, the forward listener's address.
pub(crate) struct BinarySidecar {
    pub(crate) process: Process,
    proxy: SocketAddr,
    pub(crate) dir: tempfile::TempDir,
}

impl BinarySidecar {
    /// `toml` may say `DIR` for the temp folder.
    pub(crate) async fn start(toml: &str) -> BinarySidecar {
        BinarySidecar::start_in(tempfile::tempdir().unwrap(), toml).await
    }

    pub(crate) async fn start_in(dir: tempfile::TempDir, toml: &str) -> BinarySidecar {
        let config = write_config(
            dir.path(),
            &toml.replace("DIR", &dir.path().display().to_string()),
        );
        // Reading its log blocks: off the test's runtime, which may be
        // serving the upstream fixtures.
        let (process, proxy) = tokio::task::spawn_blocking(move || {
            let mut process = Process::start(&config, &[]);
            let proxy = process.listening("forward");
            process.wait_for("countersign is serving");
            (process, proxy)
        })
        .await
        .expect("the binary starts");
        BinarySidecar {
            process,
            proxy,
            dir,
        }
    }

    pub(crate) fn proxy(&self) -> SocketAddr {
        self.proxy
    }
}
