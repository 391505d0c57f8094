//! The shared token store on a real `redis-server`: what it keeps, sealed
//! and bound to its key; a stale writer never overwriting a newer refresh
//! token; an unreachable Redis as a clear error; and countersigns that
//! continue one rotating grant from Redis, one after the other.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use countersign::config::{Secret, SecretBytes, StoreConfig};
use countersign::creds::token::store::{RedisTokenStore, StoreKey, StoredGrant, TokenStore};
use countersign::creds::token::StoreError;

use super::*;

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn store_config(redis: &RedisServer, key: Option<[u8; 32]>) -> StoreConfig {
    StoreConfig {
        url: redis.url(),
        sentinel: None,
        username: None,
        password: None,
        key_prefix: "cs-test:".into(),
        ca_pem: None,
        client_identity: None,
        store_key: key.map(SecretBytes::new),
        timeout: Duration::from_secs(1),
        wait_replicas: 0,
        local_fallback: false,
        unsaved_grace: std::time::Duration::from_secs(60),
    }
}

fn grant(token: &str) -> StoredGrant {
    StoredGrant::new("seed".into(), Secret::new(token))
}

/// Every key under the test prefix and its whole content, as redis-cli
/// shows it.
fn everything(redis: &RedisServer) -> String {
    let keys = String::from_utf8(redis.cli(&["--scan", "--pattern", "cs-test:*"])).unwrap();
    let mut all = keys.clone();
    for key in keys.lines() {
        all.push_str(&String::from_utf8_lossy(&redis.cli(&["HGETALL", key])));
        all.push_str(&String::from_utf8_lossy(
            &redis.cli(&["--no-raw", "DUMP", key]),
        ));
    }
    all
}

#[test]
fn sealed_values_hide_tokens_and_do_not_open_under_another_key() {
    let redis = RedisServer::start();
    let store = RedisTokenStore::open(&store_config(&redis, Some([5; 32]))).unwrap();
    let bank = StoreKey::credential("bank");
    let alice = StoreKey::session("gmo", "alice");
    assert_eq!(store.load(&bank).unwrap(), None);
    store.save(&bank, &grant("rt-bank-secret")).unwrap();
    store.save(&alice, &grant("rt-alice-secret")).unwrap();
    assert_eq!(store.load(&bank).unwrap(), Some(grant("rt-bank-secret")));
    assert_eq!(store.load(&alice).unwrap(), Some(grant("rt-alice-secret")));

    let all = everything(&redis);
    assert!(all.contains("cs-test:grant:bank"), "{all}");
    for secret in ["rt-bank-secret", "rt-alice-secret", "alice"] {
        assert!(!all.contains(secret), "{secret} shows in Redis: {all}");
    }

    // Alice's value copied over the credential's: it does not open there.
    let alice_key = store.name(&alice);
    redis.cli(&["COPY", &alice_key, "cs-test:grant:bank", "REPLACE"]);
    let e = store.load(&bank).unwrap_err();
    assert!(matches!(e, StoreError::Sealed { .. }), "{e}");
    assert!(e.to_string().contains("cs-test:grant:bank"), "{e}");
    // Nor does a value whose version was changed.
    redis.cli(&["HSET", &alice_key, "v", "7"]);
    assert!(matches!(store.load(&alice), Err(StoreError::Sealed { .. })));

    // Another key, no key, and a plain value under a key: clear errors.
    let other = RedisTokenStore::open(&store_config(&redis, Some([6; 32]))).unwrap();
    let none = RedisTokenStore::open(&store_config(&redis, None)).unwrap();
    let carol = StoreKey::session("gmo", "carol");
    none.save(&carol, &grant("rt-carol")).unwrap();
    assert!(matches!(other.load(&carol), Err(StoreError::Sealed { .. })));
    store.save(&carol, &grant("rt-carol-2")).unwrap();
    assert!(matches!(none.load(&carol), Err(StoreError::Sealed { .. })));
    redis.cli(&["HSET", "cs-test:grant:junk", "v", "1", "d", "not json"]);
    let junk = StoreKey::credential("junk");
    assert!(matches!(store.load(&junk), Err(StoreError::Damaged { .. })));
}

#[test]
fn a_writer_that_read_an_older_version_never_overwrites_a_newer_token() {
    let redis = RedisServer::start();
    let store = RedisTokenStore::open(&store_config(&redis, None)).unwrap();
    let bank = StoreKey::credential("bank");
    store.save(&bank, &grant("rt-1")).unwrap();
    let read_by_a = store.load_versioned(&bank).unwrap().unwrap();
    let read_by_b = store.load_versioned(&bank).unwrap().unwrap();
    assert_eq!(read_by_a.version, read_by_b.version);
    let v2 = store
        .replace(&bank, read_by_a.version, &grant("rt-2-from-a"))
        .unwrap();
    assert_eq!(v2, read_by_a.version + 1);
    let e = store
        .replace(&bank, read_by_b.version, &grant("rt-2-from-b"))
        .unwrap_err();
    assert!(matches!(e, StoreError::Stale { .. }), "{e}");
    let now = store.load_versioned(&bank).unwrap().unwrap();
    assert_eq!(now.grant, grant("rt-2-from-a"));
    assert_eq!(now.version, v2);
    store.delete(&bank).unwrap();
    assert_eq!(store.load(&bank).unwrap(), None);
    store.delete(&bank).unwrap();
}

#[test]
fn an_unreachable_store_is_a_bounded_clear_error() {
    let mut redis = RedisServer::start();
    let mut config = store_config(&redis, None);
    config.password = Some(Secret::new("hunter2-redis"));
    redis.stop();
    let store = RedisTokenStore::open(&config).expect("connects lazily");
    let started = Instant::now();
    let e = store.load(&StoreKey::credential("bank")).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10), "bounded");
    assert!(matches!(e, StoreError::Unreachable { .. }), "{e}");
    assert!(e.to_string().contains(&redis.url()), "{e}");
    assert!(!e.to_string().contains("hunter2"), "{e}");
}

fn shared_config(tokens: &TokenServer, api: &Api, redis: &RedisServer, seed: &str) -> String {
    let credential = format!(
        "grant = \"refresh_token\"\nclient_id = \"c\"\nclient_secret = \"s\"\nrefresh_token = \"{seed}\"\nrefresh_at = 0.5\n"
    );
    let store = format!(
        "[store]\nurl = \"{}\"\nkey_prefix = \"cs-test:\"\nstore_key = \"{KEY}\"\n",
        redis.url()
    );
    format!("{store}{}", config(tokens, api, &credential))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotating_grant_lives_in_redis_across_countersigns() {
    let redis = RedisServer::start();
    let tokens =
        TokenServer::start(&[("c", ClientCheck::Basic("s".into()))], 1, &["rt-seed"]).await;
    let api = Api::start(&tokens).await;
    let toml = shared_config(&tokens, &api, &redis, "rt-seed");

    let first = Sidecar::start(&toml).await;
    assert_eq!(call(&first, "/a").await.status, 200);
    eventually("three rotations", || tokens.request_count() >= 3).await;
    first.app.shutdown().await;
    drop(first);

    // A new countersign, in another folder, with no file at all: it
    // continues from the refresh token in Redis, not from the seed.
    let before = tokens.request_count();
    let second = Sidecar::start(&toml).await;
    assert_eq!(call(&second, "/b").await.status, 200);
    eventually("two more rotations", || {
        tokens.request_count() >= before + 2
    })
    .await;
    second.app.shutdown().await;

    assert!(
        !tokens.reuse_detected(),
        "a spent refresh token was presented"
    );
    let presented: Vec<String> = tokens
        .requests()
        .iter()
        .map(|r| r.form["refresh_token"].clone())
        .collect();
    let distinct: HashSet<_> = presented.iter().collect();
    assert_eq!(distinct.len(), presented.len(), "{presented:?}");
    assert_eq!(presented.iter().filter(|t| *t == "rt-seed").count(), 1);
    let all = everything(&redis);
    for token in tokens.refresh_tokens() {
        assert!(!all.contains(&token), "a refresh token shows in Redis");
    }
    let files: Vec<_> = std::fs::read_dir(second.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files.len(), 1, "only proxy.toml: {files:?}");
}

/// Authorizations under way: sealed and bound to their key, expiring with
/// their TTL, and taken once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_values_are_sealed_expire_and_are_taken_once() {
    use countersign::creds::token::store::{PendingKind, PendingStore, RedisPending};
    let redis = RedisServer::start();
    let config = store_config(&redis, Some([5; 32]));
    let pending = RedisPending::open(&config, "gmo").unwrap();
    let ttl = Duration::from_secs(600);
    let (t1, t2) = ("ticket-one-secret", "ticket-two-secret");
    pending
        .put(PendingKind::Ticket, t1, Secret::new("alice"), ttl)
        .await
        .unwrap();
    let name = pending.name(PendingKind::Ticket, t1);
    assert!(name.starts_with("cs-test:pending:gmo:ticket:"), "{name}");
    let all = String::from_utf8_lossy(&redis.cli(&["GET", &name])).into_owned();
    for clear in [t1, "alice"] {
        assert!(!all.contains(clear) && !name.contains(clear), "{all}");
    }
    let ttl_ms: u64 = String::from_utf8(redis.cli(&["PTTL", &name]))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(ttl_ms > 590_000 && ttl_ms <= 600_000, "{ttl_ms}");

    // Moved to another ticket's key, or to a state's, it does not open.
    for (kind, id) in [(PendingKind::Ticket, t2), (PendingKind::State, t1)] {
        redis.cli(&["COPY", &name, &pending.name(kind, id), "REPLACE"]);
        let e = pending.take(kind, id).await.unwrap_err();
        assert!(matches!(e, StoreError::Sealed { .. }), "{e}");
    }
    let got = pending.take(PendingKind::Ticket, t1).await.unwrap();
    assert_eq!(got.unwrap().expose(), "alice");
    assert_eq!(pending.take(PendingKind::Ticket, t1).await.unwrap(), None);

    // Expired: gone.
    pending
        .put(
            PendingKind::State,
            t2,
            Secret::new("x"),
            Duration::from_millis(50),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(pending.take(PendingKind::State, t2).await.unwrap(), None);
}
