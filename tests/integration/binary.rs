//! The compiled binary as a user runs it, as a child process: the one-shot
//! `commands`, `run` over its `lifecycle`, and what it `logs`.

mod aws_env;
mod aws_sign;
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

/// Sends `req` through `proxy` with a body of `size` bytes: `chunk` sent
/// again and again (`size` a multiple of its length), as the app streams
/// it; the answer.
pub(crate) fn upload(
    rt: &tokio::runtime::Runtime,
    proxy: std::net::SocketAddr,
    req: http::request::Builder,
    size: u64,
    chunk: Bytes,
) -> Answer {
    rt.block_on(async {
        let (tx, body) = channel_body();
        let req = req.header("content-length", size).body(body).unwrap();
        let exchange = tokio::spawn(async move { try_send(proxy, req).await });
        for _ in 0..(size / chunk.len() as u64) {
            tx.send(Ok(chunk.clone())).await.unwrap();
        }
        drop(tx);
        exchange.await.unwrap().unwrap()
    })
}
