//! The independent verifiers the interop tests hand requests to: a script
//! (Python or Node.js) that reads one JSON document on stdin and answers
//! one on stdout.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs `program` (`python3`, `node`) on `script` (relative to the repo
/// root) with `input` on stdin; its JSON answer. `needs` says what must be
/// installed, for the failure message.
pub fn run(
    program: &str,
    script: &str,
    input: &serde_json::Value,
    needs: &str,
) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(script);
    let mut child = Command::new(program)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} does not run ({e})"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{} failed ({needs}): {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
