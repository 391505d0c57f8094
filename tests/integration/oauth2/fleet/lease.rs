//! The lease scripts against a real `redis-server`: one holder at a time,
//! renew and release act only for the holder, an expired lease is free.

use std::time::Duration;

use countersign::config::StoreConfig;
use countersign::creds::token::store::{Leases, StoreKey};

use crate::harness::RedisServer;

fn config(redis: &RedisServer) -> StoreConfig {
    StoreConfig {
        url: redis.url(),
        sentinel: None,
        username: None,
        password: None,
        key_prefix: "cs-lease:".into(),
        ca_pem: None,
        client_identity: None,
        store_key: None,
        timeout: Duration::from_secs(1),
        wait_replicas: 0,
        local_fallback: false,
        unsaved_grace: std::time::Duration::from_secs(60),
    }
}

#[tokio::test]
async fn one_holder_at_a_time_and_only_the_holder_renews_or_releases() {
    let redis = RedisServer::start();
    let leases = Leases::open(&config(&redis)).unwrap();
    let bank = StoreKey::credential("bank");
    let alice = StoreKey::session("bank", "alice");
    let ttl = Duration::from_millis(600);

    let mut a = leases.acquire(&bank, ttl).await.unwrap().expect("free");
    assert!(a.outlives(Duration::from_millis(300)));
    assert!(!a.outlives(ttl));
    assert!(leases.acquire(&bank, ttl).await.unwrap().is_none(), "held");
    assert!(leases.held(&bank).await.unwrap());
    // Another item (a session of the same credential) has its own lease.
    let s = leases
        .acquire(&alice, ttl)
        .await
        .unwrap()
        .expect("own lease");
    assert!(
        !leases.name(&alice).contains("alice"),
        "no user id in a key"
    );

    // Renewing keeps it past its first TTL.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(a.renew().await.unwrap());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        leases.acquire(&bank, ttl).await.unwrap().is_none(),
        "renewed"
    );

    // Released: free at once.
    assert!(a.release().await.unwrap());
    assert!(!leases.held(&bank).await.unwrap());
    let mut b = leases
        .acquire(&bank, ttl)
        .await
        .unwrap()
        .expect("free again");

    // An expired lease taken by another: the old holder neither renews
    // nor releases the new holder's.
    tokio::time::sleep(ttl + Duration::from_millis(100)).await;
    assert!(!b.renew().await.unwrap(), "expired");
    assert!(!b.outlives(Duration::ZERO));
    let c = leases
        .acquire(&bank, ttl)
        .await
        .unwrap()
        .expect("expired lease is free");
    assert!(!b.renew().await.unwrap());
    assert!(!b.release().await.unwrap(), "not the holder");
    assert!(leases.held(&bank).await.unwrap(), "c still holds it");
    assert!(c.release().await.unwrap());
    drop(s);
}

#[tokio::test]
async fn an_unreachable_store_is_an_error_not_a_lease() {
    let mut redis = RedisServer::start();
    let leases = Leases::open(&config(&redis)).unwrap();
    redis.stop();
    let e = leases
        .acquire(&StoreKey::credential("bank"), Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("cannot reach"), "{e}");
}

#[tokio::test]
async fn the_published_token_is_sealed_bound_to_its_key_and_written_by_generation() {
    use countersign::config::SecretBytes;
    use countersign::creds::token::store::Board;
    let redis = RedisServer::start();
    let mut sealed = config(&redis);
    sealed.store_key = Some(SecretBytes::new([7; 32]));
    let board = Board::open(&sealed).unwrap();
    let (bank, other) = (StoreKey::credential("bank"), StoreKey::credential("other"));
    assert!(board.read(&bank).await.unwrap().is_none());

    let life = Duration::from_secs(60);
    let g = board
        .publish(&bank, 0, 1, b"Bearer at-secret-1", life)
        .await
        .unwrap();
    assert_eq!(g, Ok(1));
    // A writer that saw no publication (generation 0) does not overwrite it.
    let stale = board
        .publish(&bank, 0, 1, b"Bearer at-secret-x", life)
        .await
        .unwrap();
    assert_eq!(stale, Err(1));
    let p = board.read(&bank).await.unwrap().unwrap();
    assert_eq!(
        (p.generation, p.value.as_slice()),
        (1, &b"Bearer at-secret-1"[..])
    );
    assert!(p.left_ms > 55_000 && p.left_ms <= 60_000, "{}", p.left_ms);
    assert_eq!(p.lifetime, life);

    let dump = redis.cli(&["HGETALL", &board.name(&bank)]);
    assert!(
        !String::from_utf8_lossy(&dump).contains("at-secret"),
        "a token shows in Redis"
    );
    // Moved to another key, or given another generation: it does not open.
    redis.cli(&["COPY", &board.name(&bank), &board.name(&other)]);
    assert!(board.read(&other).await.is_err(), "moved");
    redis.cli(&["HSET", &board.name(&bank), "g", "2"]);
    assert!(board.read(&bank).await.is_err(), "another generation");
}
