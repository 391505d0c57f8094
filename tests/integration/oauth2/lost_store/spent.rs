//! Every stored successor of a credential's seed records the seed as
//! spent (`PREFIX spent:ITEM`): the compare-and-set, the write of a
//! successor left unsaved (over this replica's mark, or into a store that
//! lost the grant), and `store migrate` of a file holding a successor.
//! The seed is then refused, never presented again.

use super::migrate::{file_holding, migrate, said};
use super::*;

fn spent(redis: &RedisServer, item: &str) -> String {
    let members = redis.cli(&["SMEMBERS", &format!("cs-lost:spent:{item}")]);
    String::from_utf8_lossy(&members).trim().to_string()
}

#[test]
fn a_successor_written_after_its_first_write_failed_spends_its_seed() {
    let redis = RedisServer::start();
    let (a, c) = (store(&redis, 1), store(&redis, 2));

    // Over A's mark.
    let key = StoreKey::credential("bank");
    let v = a.replace(&key, 0, &marked("rt-seed")).unwrap();
    let epoch = a.epoch();
    assert_eq!(
        spent(&redis, "grant:bank"),
        "",
        "the seed itself spends nothing"
    );
    let out = a
        .store_unsaved(&key, Some(v), epoch.as_deref(), &grant("rt-2"))
        .unwrap();
    assert_eq!(out, UnsavedOutcome::Stored);
    assert!(spent(&redis, "grant:bank").contains(&seed()));
    // Another replica whose config still names the seed: refused.
    assert!(matches!(
        c.replace(&key, v + 1, &marked("rt-seed")),
        Err(StoreError::Spent { .. })
    ));
    assert_eq!(token_of(&c, &key).as_deref(), Some("rt-2"));

    // Into a store that lost the grant.
    let key = StoreKey::credential("restored");
    let v = a.replace(&key, 0, &marked("rt-seed")).unwrap();
    // The epoch of the mark, from before the store lost everything.
    let epoch = a.epoch();
    redis.cli(&["FLUSHALL"]);
    let out = a
        .store_unsaved(&key, Some(v), epoch.as_deref(), &grant("rt-r2"))
        .unwrap();
    assert_eq!(out, UnsavedOutcome::Stored);
    assert!(spent(&redis, "grant:restored").contains(&seed()));

    // A session's successor records nothing (a session has no seed).
    let session = StoreKey::session("gmo", "alice");
    a.save(&session, &grant("rt-s1")).unwrap();
    let v = a.load_versioned(&session).unwrap().unwrap().version;
    let v = a.replace(&session, v, &marked("rt-s1")).unwrap();
    let epoch = a.epoch();
    let out = a
        .store_unsaved(&session, Some(v), epoch.as_deref(), &grant("rt-s2"))
        .unwrap();
    assert_eq!(out, UnsavedOutcome::Stored);
    let sessions = redis.cli(&["KEYS", "cs-lost:spent:session:*"]);
    assert!(sessions.trim_ascii().is_empty(), "{sessions:?}");
}

#[test]
fn migrating_a_successor_spends_its_seed_and_migrating_the_seed_does_not() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let toml = super::migrate::config(dir.path(), &redis);
    let key = StoreKey::credential("rt");

    // The file holds the seed itself: nothing is spent.
    file_holding(dir.path(), "rt-seed");
    let out = migrate(dir.path(), &toml, &[]);
    assert!(out.status.success(), "{}", said(&out));
    assert_eq!(spent(&redis, "grant:rt"), "");

    // The file holds a successor (the single countersign rotated).
    redis.cli(&["FLUSHALL"]);
    file_holding(dir.path(), "rt-7");
    let out = migrate(dir.path(), &toml, &[]);
    assert!(out.status.success(), "{}", said(&out));
    assert!(spent(&redis, "grant:rt").contains(&seed()));
    let a = store(&redis, 1);
    let v = a.load_versioned(&key).unwrap().unwrap().version;
    assert!(matches!(
        a.replace(&key, v, &marked("rt-seed")),
        Err(StoreError::Spent { .. })
    ));
    assert_eq!(token_of(&a, &key).as_deref(), Some("rt-7"));
}
