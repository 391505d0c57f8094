//! A shared store rolled back (a key restored from an older backup, or a
//! restart or failover that lost acknowledged writes), on a real
//! `redis-server`: a replica that saw a newer version of the same grant
//! refuses the older one as lost (its refresh token may be spent), records
//! it, and presents nothing; the newest version restored is used again. A
//! session ended and authorized again starts its versions over, and is not
//! taken for a rolled-back one.

use std::process::{Command, Stdio};

use countersign::creds::token::store::{Facts, StoreKey, StoredGrant, TokenStore};
use countersign::creds::token::StoreError;

use super::lost_store::{grant, seed, store, token_of};
use super::*;

/// `DUMP` of `key` (what a backup holds of it).
fn dump(redis: &RedisServer, key: &str) -> Vec<u8> {
    let mut out = redis.cli(&["DUMP", key]);
    assert_eq!(out.pop(), Some(b'\n'), "redis-cli ends its answer");
    out
}

/// Puts `key` back as `dumped` (a restore of the backup).
fn restore(redis: &RedisServer, key: &str, dumped: &[u8]) {
    redis.cli(&["DEL", key]);
    let mut cli = Command::new("redis-cli")
        .arg("-s")
        .arg(&redis.socket)
        .args(["-x", "RESTORE", key, "0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    cli.stdin.take().unwrap().write_all(dumped).unwrap();
    let out = cli.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK");
}

fn authorized(token: &str, at: u64) -> StoredGrant {
    grant(token).with_facts(Some(Facts {
        authorized_at: Some(at),
        ..Facts::default()
    }))
}

#[test]
fn a_grant_rolled_back_to_an_older_version_is_refused_as_lost() {
    let redis = RedisServer::start();
    let a = store(&redis, 1);
    let key = StoreKey::credential("bank");
    let name = "cs-lost:grant:bank";
    // Renewals: rt-1 .. rt-3, a backup, then rt-4 and rt-5.
    let mut v = 0;
    for n in 1..=3 {
        v = a.replace(&key, v, &grant(&format!("rt-{n}"))).unwrap();
    }
    let backup = dump(&redis, name);
    for n in 4..=5 {
        v = a.replace(&key, v, &grant(&format!("rt-{n}"))).unwrap();
    }
    assert_eq!(token_of(&a, &key).as_deref(), Some("rt-5"));
    let newest = dump(&redis, name);

    // Restored from the older backup: rt-3 was spent long ago.
    restore(&redis, name, &backup);
    match a.load_versioned(&key) {
        Err(StoreError::Lost { seeds, .. }) => assert_eq!(seeds, vec![seed()]),
        other => panic!("rt-3 would be presented: {other:?}"),
    }
    let lost = String::from_utf8(redis.cli(&["SISMEMBER", "cs-lost:lost:grant:bank", &seed()]));
    assert_eq!(lost.unwrap().trim(), "1", "recorded for every replica");
    // Still refused at the next read: nothing is presented.
    assert!(matches!(
        a.load_versioned(&key),
        Err(StoreError::Lost { .. })
    ));

    // The newest version restored: used again.
    restore(&redis, name, &newest);
    assert_eq!(token_of(&a, &key).as_deref(), Some("rt-5"));
}

#[test]
fn a_session_authorized_again_is_not_taken_for_a_rolled_back_one() {
    let redis = RedisServer::start();
    let (a, c) = (store(&redis, 1), store(&redis, 2));
    let session = StoreKey::session("gmo", "alice");
    a.save(&session, &authorized("rt-s1", 100)).unwrap();
    let v = a.load_versioned(&session).unwrap().unwrap().version;
    let v = a.replace(&session, v, &authorized("rt-s2", 100)).unwrap();
    a.replace(&session, v, &authorized("rt-s3", 100)).unwrap();
    assert_eq!(token_of(&a, &session).as_deref(), Some("rt-s3"));

    // Ended on replica C and authorized again there: version 1 again,
    // under another authorization time.
    c.delete(&session).unwrap();
    c.save(&session, &authorized("rt-t1", 200)).unwrap();
    assert_eq!(token_of(&a, &session).as_deref(), Some("rt-t1"));

    // The same authorization put back at an older version: rolled back.
    let name = a.name(&session);
    let backup = dump(&redis, &name);
    let v = a.load_versioned(&session).unwrap().unwrap().version;
    a.replace(&session, v, &authorized("rt-t2", 200)).unwrap();
    assert_eq!(token_of(&a, &session).as_deref(), Some("rt-t2"));
    restore(&redis, &name, &backup);
    assert!(matches!(
        a.load_versioned(&session),
        Err(StoreError::Lost { .. })
    ));
}
