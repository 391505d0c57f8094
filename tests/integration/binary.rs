//! The compiled binary as a user runs it, as a child process: the one-shot
//! `commands`, `run` over its `lifecycle`, and what it `logs`.

mod commands;
mod hmac_recipes;
mod httpsig;
mod jws;
mod lifecycle;
mod logs;
mod stacked;
mod streaming;

use std::path::Path;
use std::process::Command;

use bytes::Bytes;

use crate::harness::*;

pub(crate) use crate::harness::process::{write_config, Process, BIN};

/// `countersign check --config PATH`, run to its end.
pub(crate) fn check(path: &Path) -> std::process::Output {
    Command::new(BIN)
        .args(["check", "--config"])
        .arg(path)
        .output()
        .expect("the binary runs")
}
