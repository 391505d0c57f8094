//! `countersign token` on an empty grant key says what Redis records of
//! it: nothing (the first replica seeds it), a loss, or spent seeds, and
//! whether the configured refresh_token is among them; it never promises
//! that a replica stores a seed the store would refuse.

use std::process::Command;

use super::*;
use crate::binary::BIN;

fn token(dir: &std::path::Path, redis: &RedisServer) -> String {
    let path = dir.join("token.toml");
    std::fs::write(&path, super::migrate::config(dir, redis)).unwrap();
    let out = Command::new(BIN)
        .args(["token", "--credential", "rt", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    text
}

const FIRST: &str = "the first replica to start stores the configured refresh_token";

#[test]
fn an_empty_grant_is_described_by_what_redis_records_of_it() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let text = token(dir.path(), &redis);
    assert!(text.contains(FIRST), "{text}");

    // Rotated, then the key alone deleted: the seed is recorded spent.
    let a = store(&redis, 1);
    let key = StoreKey::credential("rt");
    let v = a.replace(&key, 0, &marked("rt-seed")).unwrap();
    a.replace(&key, v, &grant("rt-2")).unwrap();
    redis.cli(&["DEL", "cs-lost:grant:rt"]);
    let text = token(dir.path(), &redis);
    assert!(!text.contains(FIRST), "{text}");
    assert!(
        text.contains("1 configured refresh_token(s) recorded spent"),
        "{text}"
    );
    assert!(
        text.contains("the configured refresh_token is one of them"),
        "{text}"
    );

    // Rotated again, then the store flushed and the loss recorded.
    let v = a.replace(&key, 0, &grant("rt-3")).unwrap();
    assert_eq!(v, 1);
    redis.cli(&["FLUSHALL"]);
    assert!(matches!(
        a.load_versioned(&key),
        Err(StoreError::Lost { .. })
    ));
    let text = token(dir.path(), &redis);
    assert!(!text.contains(FIRST), "{text}");
    assert!(
        text.contains("recorded lost with the store's data"),
        "{text}"
    );
    assert!(
        text.contains("the configured refresh_token is one of them"),
        "{text}"
    );
    assert!(
        !text.contains("rt-seed") && !text.contains("rt-3"),
        "{text}"
    );
}
