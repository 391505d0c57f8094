//! The shared store's answers about items that are gone, on a real
//! `redis-server`: a session ended on another replica reads as ended, one
//! the store lost (`FLUSHALL`) as lost, for this replica and for one that
//! never saw it; and a successor left unsaved is written only over the
//! version carrying this replica's presented mark, never over a grant that
//! moved on, nor into a session that was ended. "Another replica" is a
//! store on another connection (a different `StoreConfig`), which keeps a
//! memory of its own, as another process does.

use std::time::Duration;

use countersign::config::{Secret, StoreConfig};
use countersign::creds::token::store::{
    process_id, seed_hash, Presented, RedisTokenStore, StoreKey, StoredGrant, TokenStore,
    UnsavedOutcome,
};
use countersign::creds::token::StoreError;

use super::*;

mod migrate;
mod spent;
mod token_cli;

/// `replica` tells the stores of two "processes" apart (their timeouts).
pub(super) fn store(redis: &RedisServer, replica: u64) -> RedisTokenStore {
    RedisTokenStore::open(&config(redis, replica)).unwrap()
}

/// The `[store]` of `store`.
pub(super) fn config(redis: &RedisServer, replica: u64) -> StoreConfig {
    StoreConfig {
        url: redis.url(),
        sentinel: None,
        username: None,
        password: None,
        key_prefix: "cs-lost:".into(),
        ca_pem: None,
        client_identity: None,
        store_key: None,
        timeout: Duration::from_millis(1000 + replica),
        wait_replicas: 0,
        local_fallback: false,
        unsaved_grace: Duration::from_secs(60),
    }
}

pub(super) fn seed() -> String {
    seed_hash(Some(&Secret::new("rt-seed")))
}

pub(super) fn grant(token: &str) -> StoredGrant {
    StoredGrant::new(seed(), Secret::new(token))
}

pub(super) fn marked(token: &str) -> StoredGrant {
    let mut g = grant(token);
    g.presented = Some(Presented {
        by: process_id().to_string(),
        at_unix: 1,
    });
    g
}

pub(super) fn token_of(s: &RedisTokenStore, key: &StoreKey) -> Option<String> {
    s.load(key)
        .unwrap()
        .map(|g| g.refresh_token.expose().to_string())
}

#[test]
fn a_session_ended_elsewhere_reads_as_ended_and_a_lost_one_as_lost_everywhere() {
    let redis = RedisServer::start();
    let (a, c) = (store(&redis, 1), store(&redis, 2));
    let ended = StoreKey::session("gmo", "alice");
    let lost = StoreKey::session("gmo", "bob");
    a.save(&ended, &grant("rt-alice")).unwrap();
    a.save(&lost, &grant("rt-bob")).unwrap();
    assert!(a.load(&ended).unwrap().is_some());
    assert!(a.load(&lost).unwrap().is_some());

    // Replica C ends alice's session (DELETE): A reads it as ended.
    c.delete(&ended).unwrap();
    assert!(a.load_versioned(&ended).unwrap().is_none(), "ended");

    // The store loses everything: A, which had seen bob's session, says
    // lost; so does D, which never saw it (A recorded it).
    redis.cli(&["FLUSHALL"]);
    // The first read after the loss (of another item, or the epoch watch)
    // is the one that sees the epoch change; bob is recorded then, and
    // read as lost afterwards, not as ended.
    assert!(a
        .load_versioned(&StoreKey::session("gmo", "zed"))
        .unwrap()
        .is_none());
    assert!(matches!(
        a.load_versioned(&lost),
        Err(StoreError::Lost { .. })
    ));
    let d = store(&redis, 3);
    assert!(matches!(
        d.load_versioned(&lost),
        Err(StoreError::Lost { .. })
    ));
    // A session never stored is unknown, not lost.
    assert!(d
        .load_versioned(&StoreKey::session("gmo", "carol"))
        .unwrap()
        .is_none());
    // Authorized again: the session is written, and no longer lost.
    d.save(&lost, &grant("rt-bob-2")).unwrap();
    assert_eq!(token_of(&a, &lost).as_deref(), Some("rt-bob-2"));
}

#[test]
fn a_lost_credential_grant_is_never_seeded_again_from_its_spent_seed() {
    let redis = RedisServer::start();
    let a = store(&redis, 1);
    let key = StoreKey::credential("bank");
    a.replace(&key, 0, &marked("rt-seed")).unwrap();
    a.replace(&key, 1, &grant("rt-2")).unwrap();
    redis.cli(&["FLUSHALL"]);
    match a.load_versioned(&key) {
        Err(StoreError::Lost { seeds, .. }) => assert_eq!(seeds, vec![seed()]),
        other => panic!("{other:?}"),
    }
    // A replica started since: it reads the loss, and the write of the
    // seed's presented mark (what precedes presenting it) is refused.
    let b = store(&redis, 2);
    assert!(matches!(
        b.load_versioned(&key),
        Err(StoreError::Lost { .. })
    ));
    assert!(matches!(
        b.replace(&key, 0, &marked("rt-seed")),
        Err(StoreError::Lost { .. })
    ));
    // A new seed is written.
    let new = StoredGrant::new(
        seed_hash(Some(&Secret::new("rt-new"))),
        Secret::new("rt-new"),
    );
    b.replace(&key, 0, &new).unwrap();
    assert_eq!(token_of(&a, &key).as_deref(), Some("rt-new"));
}

#[test]
fn an_unsaved_successor_is_written_only_over_this_replicas_mark() {
    let redis = RedisServer::start();
    let (a, c) = (store(&redis, 1), store(&redis, 2));

    // Still at the version A marked: stored.
    let key = StoreKey::credential("bank");
    let v = a.replace(&key, 0, &marked("rt-1")).unwrap();
    let out = a
        .store_unsaved(&key, Some(v), a.epoch().as_deref(), &grant("rt-2"))
        .unwrap();
    assert_eq!(out, UnsavedOutcome::Stored);
    assert_eq!(token_of(&c, &key).as_deref(), Some("rt-2"));

    // Moved on (another replica renewed after unsaved_grace): not
    // written over, whatever A holds.
    let v = a.replace(&key, 2, &marked("rt-2")).unwrap();
    let mut other = grant("rt-2");
    other.presented = Some(Presented {
        by: "another-replica".into(),
        at_unix: 2,
    });
    c.replace(&key, v, &other).unwrap();
    c.replace(&key, v + 1, &grant("rt-c")).unwrap();
    let out = a
        .store_unsaved(&key, Some(v), a.epoch().as_deref(), &grant("rt-a"))
        .unwrap();
    assert_eq!(out, UnsavedOutcome::Superseded(v + 2));
    assert_eq!(token_of(&c, &key).as_deref(), Some("rt-c"));

    // The same version number, but not A's mark on it: not written.
    let key = StoreKey::credential("other");
    let v = c.replace(&key, 0, &other).unwrap();
    let out = a
        .store_unsaved(&key, Some(v), a.epoch().as_deref(), &grant("rt-a"))
        .unwrap();
    assert_eq!(out, UnsavedOutcome::Superseded(v));

    // A session ended (DELETE on replica C) while A held a successor:
    // it is not written back.
    let session = StoreKey::session("gmo", "alice");
    a.save(&session, &grant("rt-s1")).unwrap();
    let v = a.load_versioned(&session).unwrap().unwrap().version;
    let v = a.replace(&session, v, &marked("rt-s1")).unwrap();
    c.delete(&session).unwrap();
    let out = a
        .store_unsaved(&session, Some(v), a.epoch().as_deref(), &grant("rt-s2"))
        .unwrap();
    assert_eq!(out, UnsavedOutcome::Ended);
    assert!(c.load_versioned(&session).unwrap().is_none());

    // The store lost everything: the successor, the newest refresh token
    // of the grant, is written back.
    let key = StoreKey::credential("restored");
    let v = a.replace(&key, 0, &marked("rt-r1")).unwrap();
    redis.cli(&["FLUSHALL"]);
    let out = a
        .store_unsaved(&key, Some(v), a.epoch().as_deref(), &grant("rt-r2"))
        .unwrap();
    assert_eq!(out, UnsavedOutcome::Stored);
    assert_eq!(token_of(&c, &key).as_deref(), Some("rt-r2"));
}

#[test]
fn a_seed_once_rotated_is_never_written_again_even_over_another_grant() {
    let redis = RedisServer::start();
    let a = store(&redis, 1);
    let key = StoreKey::credential("bank");
    let v = a.replace(&key, 0, &marked("rt-seed")).unwrap();
    let v = a.replace(&key, v, &grant("rt-2")).unwrap();
    // A new seed took over, then the config went back to the old one.
    let new = StoredGrant::new(
        seed_hash(Some(&Secret::new("rt-new"))),
        Secret::new("rt-new"),
    );
    let v = a.replace(&key, v, &new).unwrap();
    assert!(matches!(
        a.replace(&key, v, &marked("rt-seed")),
        Err(StoreError::Spent { .. })
    ));
    assert_eq!(token_of(&a, &key).as_deref(), Some("rt-new"));
}
