//! The compiled countersign binary, run as a user runs it.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_countersign");

/// `countersign run` as a child process; killed on drop.
pub(super) struct Binary {
    child: Child,
    pub(super) proxy: SocketAddr,
    log: mpsc::Receiver<String>,
}

impl Binary {
    pub(super) fn start(config: &Path) -> Binary {
        let mut child = Command::new(BIN)
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let (tx, log) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut seen = Vec::new();
        let proxy = loop {
            let line = log
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("no forward listener; saw:\n{}", seen.join("\n")));
            if line.contains("listening role=forward") {
                let addr = line.rsplit("local=").next().unwrap().trim();
                break addr.parse().unwrap();
            }
            seen.push(line);
        };
        Binary { child, proxy, log }
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        while self.log.try_recv().is_ok() {}
    }
}
