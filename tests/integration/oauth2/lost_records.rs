//! Recording a loss in the shared store, on a real `redis-server`: a
//! record that failed (the store's user may not run `SADD` for a while) is
//! written at a later read of the epoch (the epoch watch), and until then
//! every read of the replica sees the store as changed, so a lost session
//! reads as lost, never as ended. A session's successor held through a
//! loss goes back into its emptied key.

use std::time::Duration;

use countersign::config::Secret;
use countersign::creds::token::store::{RedisTokenStore, StoreKey, TokenStore, UnsavedOutcome};
use countersign::creds::token::StoreError;

use super::lost_store::{config, grant, marked, seed, store};
use super::*;

/// Every command the store uses (docs/replicas.md, "Which Redis").
const RULES: &[&str] = &[
    "~cs-lost:*",
    "&cs-lost:*",
    "+ping",
    "+set",
    "+get",
    "+getdel",
    "+hset",
    "+hget",
    "+hmget",
    "+hdel",
    "+sadd",
    "+sismember",
    "+smembers",
    "+del",
    "+exists",
    "+scan",
    "+pexpire",
    "+time",
    "+wait",
    "+publish",
    "+subscribe",
    "+evalsha",
    "+script|load",
];

/// A store ("replica" 1) logged in as the ACL user `cs-app`.
fn store_as_app(redis: &RedisServer) -> RedisTokenStore {
    redis.acl_user("cs-app", "lost-pass-11", RULES);
    let mut config = config(redis, 1);
    config.username = Some(Secret::new("cs-app"));
    config.password = Some(Secret::new("lost-pass-11"));
    RedisTokenStore::open(&config).unwrap()
}

/// The store's user may (`true`) or may not run `SADD`.
fn records(redis: &RedisServer, allowed: bool) {
    let rule = if allowed { "+sadd" } else { "-sadd" };
    let out = redis.cli(&["ACL", "SETUSER", "cs-app", rule]);
    assert_eq!(String::from_utf8_lossy(&out).trim(), "OK");
}

fn recorded(redis: &RedisServer, item: &str) -> bool {
    let lost = format!("cs-lost:lost:{item}");
    let out = redis.cli(&["SISMEMBER", &lost, &seed()]);
    String::from_utf8_lossy(&out).trim() == "1"
}

#[test]
fn a_loss_whose_record_failed_is_recorded_later_and_reads_lost_meanwhile() {
    let redis = RedisServer::start();
    let a = store_as_app(&redis);
    let key = StoreKey::credential("bank");
    let v = a.replace(&key, 0, &marked("rt-seed")).unwrap();
    a.replace(&key, v, &grant("rt-2")).unwrap();
    let session = StoreKey::session("gmo", "bob");
    a.save(&session, &grant("rt-bob")).unwrap();
    // A reads the store (and its epoch).
    assert!(a.load(&session).unwrap().is_some());

    // The store loses its data while A may not write the records.
    records(&redis, false);
    redis.cli(&["FLUSHALL"]);
    // A's next read sees the new epoch; the records fail.
    assert!(a
        .load_versioned(&StoreKey::session("gmo", "zed"))
        .unwrap()
        .is_none());
    assert!(!recorded(&redis, "grant:bank"), "SADD was refused");
    // Meanwhile the store still reads as changed: bob's session, which A
    // had seen, is lost, not ended.
    assert!(matches!(
        a.load_versioned(&session),
        Err(StoreError::Lost { .. })
    ));

    // SADD allowed again: A's epoch watch (every 5 s) records both,
    // without any read of A's in between.
    records(&redis, true);
    eventually_blocking(
        "the epoch watch to record the lost items",
        Duration::from_secs(20),
        || match recorded(&redis, "grant:bank") {
            true => Ok(()),
            false => Err("not recorded yet"),
        },
    );
    let session_hash = countersign::creds::token::store::session_hash("gmo", "bob");
    assert!(recorded(&redis, &format!("session:gmo:{session_hash}")));
    // A replica started since finds both lost, and does not seed the grant.
    let d = store(&redis, 2);
    assert!(matches!(
        d.load_versioned(&session),
        Err(StoreError::Lost { .. })
    ));
    assert!(matches!(
        d.replace(&key, 0, &marked("rt-seed")),
        Err(StoreError::Lost { .. })
    ));
}

#[test]
fn a_sessions_successor_held_through_a_loss_is_written_back() {
    let redis = RedisServer::start();
    let (a, c) = (store(&redis, 1), store(&redis, 2));
    let session = StoreKey::session("gmo", "alice");
    a.save(&session, &grant("rt-s1")).unwrap();
    let v = a.load_versioned(&session).unwrap().unwrap().version;
    // A marks the refresh token it presents, under the epoch it read.
    let epoch = a.epoch();
    let v = a.replace(&session, v, &marked("rt-s1")).unwrap();
    // The store loses everything before A can store the successor, and
    // A reads the new epoch (a renewal of another item, or its watch).
    redis.cli(&["FLUSHALL"]);
    assert!(a
        .load_versioned(&StoreKey::session("gmo", "zed"))
        .unwrap()
        .is_none());
    assert!(a.epoch().is_some_and(|now| Some(now) != epoch));
    // The successor is the session's newest refresh token: written back,
    // not taken for a session ended under the same epoch.
    let out = a
        .store_unsaved(&session, Some(v), epoch.as_deref(), &grant("rt-s2"))
        .unwrap();
    assert_eq!(out, UnsavedOutcome::Stored);
    let back = c.load(&session).unwrap().unwrap();
    assert_eq!(back.refresh_token.expose(), "rt-s2");
}
