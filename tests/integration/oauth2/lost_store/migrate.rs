//! `countersign store migrate` after the store lost its data: the files
//! went stale at the first renewal on Redis, so migrate refuses an item
//! Redis records as lost (naming it) and copies it only with `--force`,
//! keeping the record of the seed spent.

use std::path::Path;
use std::process::{Command, Output};

use countersign::config::TokenStoreConfig;
use countersign::creds::token::store::FileStore;

use super::*;
use crate::binary::BIN;

/// A config whose credential `rt` keeps its file at `DIR/rt.store` and
/// whose `[store]` is `redis`, under the prefix the stores here use.
pub(super) fn config(dir: &Path, redis: &RedisServer) -> String {
    format!(
        r#"[store]
url = "{}"
key_prefix = "cs-lost:"

[proxy]
listen = "127.0.0.1:0"

[credential.rt]
type = "oauth2"
token_url = "http://127.0.0.1:9/token"
grant = "refresh_token"
client_id = "c"
client_secret = "s"
refresh_token = "rt-seed"
token_store = "{}/rt.store"

[[route]]
name = "rt"
hosts = ["rt.test"]
upstream = "http://127.0.0.1:9"
credential = "rt"
"#,
        redis.url(),
        dir.display()
    )
}

pub(super) fn migrate(dir: &Path, toml: &str, extra: &[&str]) -> Output {
    let path = dir.join("migrate.toml");
    std::fs::write(&path, toml).unwrap();
    Command::new(BIN)
        .args(["store", "migrate", "--config"])
        .arg(&path)
        .args(extra)
        .output()
        .expect("the binary runs")
}

pub(super) fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Writes the plain file store of `rt` holding `token`.
pub(super) fn file_holding(dir: &Path, token: &str) {
    let file = FileStore::new(&TokenStoreConfig {
        path: dir.join("rt.store"),
        key: None,
    });
    file.save(&grant(token)).unwrap();
}

#[test]
fn after_a_loss_migrate_refuses_the_lost_item_unless_forced_and_keeps_its_record() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    // The files went stale: they hold the seed, which the fleet rotated
    // on Redis (rt-seed -> rt-2).
    file_holding(dir.path(), "rt-seed");
    let a = store(&redis, 1);
    let key = StoreKey::credential("rt");
    let v = a.replace(&key, 0, &marked("rt-seed")).unwrap();
    a.replace(&key, v, &grant("rt-2")).unwrap();
    redis.cli(&["FLUSHALL"]);
    assert!(matches!(
        a.load_versioned(&key),
        Err(StoreError::Lost { .. })
    ));
    let toml = config(dir.path(), &redis);

    // Refused, naming the item and what --force risks; nothing written.
    let out = migrate(dir.path(), &toml, &[]);
    let text = said(&out);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("cs-lost:grant:rt"), "{text}");
    assert!(text.contains("records these items as lost"), "{text}");
    assert!(text.contains("--force copies them anyway"), "{text}");
    assert!(text.contains("revoke"), "{text}");
    assert!(text.contains("nothing was copied"), "{text}");
    assert!(!text.contains("rt-seed"), "a token was printed: {text}");
    assert!(matches!(
        store(&redis, 2).load_versioned(&key),
        Err(StoreError::Lost { .. })
    ));

    // With --force: copied, at the documented risk; the record of the
    // spent seed stays.
    let out = migrate(dir.path(), &toml, &["--force"]);
    assert!(out.status.success(), "{}", said(&out));
    // (Read by a process that remembers nothing: `a` saw version 2 and
    // takes the copy, at version 1, for a rollback, and refuses it.)
    assert_eq!(
        token_of(&store(&redis, 3), &key).as_deref(),
        Some("rt-seed")
    );
    assert!(matches!(
        a.load_versioned(&key),
        Err(StoreError::Lost { .. })
    ));
    let records =
        String::from_utf8_lossy(&redis.cli(&["SMEMBERS", "cs-lost:lost:grant:rt"])).to_string();
    assert!(records.contains(&seed()), "{records}");
}
