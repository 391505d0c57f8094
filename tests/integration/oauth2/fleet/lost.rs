//! A Redis that lost its data (here `FLUSHALL`), with compiled countersigns:
//! the replica that had seen the grant reports it lost and records that in
//! Redis, so a replica started afterwards (which remembers nothing) does
//! not seed the empty store from the configured, long spent, refresh
//! token either (also between renewals: the epoch watch); a new refresh
//! token in the config (a person consented
//! again), reloaded, is the way back.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::task::block_in_place;

use crate::binary::{write_config, Process};
use crate::harness::*;
use crate::oauth2::{Api, ClientCheck, TokenServer};

use super::processes::call_at;

struct Replica {
    p: Process,
    proxy: SocketAddr,
    admin: SocketAddr,
    /// `/status`.
    control: SocketAddr,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

fn start(toml: &str) -> Replica {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), toml);
    let mut p = Process::start(&config, &[]);
    let proxy = p.listening("forward");
    let admin = p.listening("admin");
    p.wait_for("countersign is serving");
    let control = p.listened("control");
    Replica {
        p,
        proxy,
        admin,
        control,
        config,
        _dir: dir,
    }
}

fn config(tokens: &TokenServer, api: &Api, redis: &RedisServer, seed: &str) -> String {
    format!(
        r#"
[proxy]
listen = "127.0.0.1:0"
connect_timeout = "1s"
response_timeout = "1s"

[store]
url = "{redis}"
key_prefix = "cs-lost:"
timeout = "500ms"
unsaved_grace = "5s"

[credential.bank]
type = "oauth2"
token_url = "{token_url}"
grant = "refresh_token"
client_id = "c"
client_secret = "s"
refresh_token = "{seed}"
refresh_at = 0.5
required = true

[[route]]
name = "bank"
hosts = ["bank.test"]
upstream = "{api}"
credential = "bank"
"#,
        redis = redis.url(),
        token_url = tokens.url(),
        api = api.url(),
    )
}

async fn admin_get(admin: SocketAddr, path: &str) -> Answer {
    let req = http::Request::get(path)
        .header("host", "admin")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    send(admin, req).await
}

/// Waits until `/readyz` answers 503 naming the lost store.
async fn reports_lost(r: &Replica, what: &str) {
    let body = eventually_async(what, Duration::from_secs(20), || async {
        let ready = admin_get(r.admin, "/readyz").await;
        match (ready.status.as_u16(), ready.body.contains("lost its data")) {
            (503, true) => Ok(ready.body),
            _ => Err(ready.body),
        }
    })
    .await;
    assert!(body.contains("bank"), "{body}");
}

fn presented(tokens: &TokenServer, token: &str) -> usize {
    tokens
        .requests()
        .iter()
        .filter(|r| r.form.get("refresh_token").map(String::as_str) == Some(token))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_started_after_the_store_lost_its_data_does_not_reseed_a_spent_seed() {
    let redis = RedisServer::start_with(true);
    let tokens =
        TokenServer::start(&[("c", ClientCheck::Basic("s".into()))], 2, &["rt-seed"]).await;
    let api = Api::start(&tokens).await;
    let mut a = block_in_place(|| start(&config(&tokens, &api, &redis, "rt-seed")));
    assert_eq!(call_at(a.proxy).await, 200);
    // A holds a rotated grant: the seed is spent.
    eventually("a rotation stored", || {
        let v = redis.cli(&["HGET", "cs-lost:grant:bank", "v"]);
        String::from_utf8_lossy(&v)
            .trim()
            .parse::<u64>()
            .unwrap_or(0)
            >= 4
    })
    .await;
    assert_eq!(presented(&tokens, "rt-seed"), 1);

    redis.cli(&["FLUSHALL"]);
    reports_lost(&a, "A reports the store lost").await;
    // A wrote what it knows into the store, for the replicas to come.
    let recorded = redis.cli(&["SCARD", "cs-lost:lost:grant:bank"]);
    assert_eq!(String::from_utf8_lossy(&recorded).trim(), "1");

    // B starts afterwards, remembering nothing, on the same config: it does
    // not present the spent seed, and says the store is lost.
    let b = block_in_place(|| start(&config(&tokens, &api, &redis, "rt-seed")));
    reports_lost(&b, "B reports the store lost").await;
    let status = admin_get(b.control, "/status").await.body;
    assert!(status.contains("lost its data"), "{status}");
    assert_eq!(presented(&tokens, "rt-seed"), 1, "the spent seed came back");
    assert!(!tokens.reuse_detected());
    let metrics = admin_get(b.admin, "/metrics").await.body;
    assert!(
        metrics.lines().any(
            |l| l.starts_with("countersign_store_errors_total{op=\"lost\"} ") && !l.ends_with(" 0")
        ),
        "{metrics}"
    );

    // A person consented again: the new refresh token, reloaded, recovers
    // both replicas (one presents it, under the lease).
    tokens.add_refresh_token("rt-new");
    for r in [&mut a, &b] {
        let text = std::fs::read_to_string(&r.config).unwrap();
        let text = text.replace("refresh_token = \"rt-seed\"", "refresh_token = \"rt-new\"");
        std::fs::write(&r.config, text).unwrap();
        r.p.signal("-HUP");
    }
    for r in [&a, &b] {
        eventually_async("recovered", Duration::from_secs(20), || async {
            match admin_get(r.admin, "/readyz").await.status.as_u16() {
                200 => Ok(()),
                s => Err(s),
            }
        })
        .await;
        assert_eq!(call_at(r.proxy).await, 200);
    }
    assert_eq!(presented(&tokens, "rt-new"), 1);
    assert_eq!(presented(&tokens, "rt-seed"), 1);
    assert!(!tokens.reuse_detected());
    drop(a);
}

/// Without any renewal due (300 s tokens), the replica that remembers the
/// store still records its loss within `WATCH_EVERY` (5 s): a replica
/// started after that does not seed it either.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_loss_is_recorded_between_renewals_by_the_epoch_watch() {
    let redis = RedisServer::start_with(true);
    let tokens =
        TokenServer::start(&[("c", ClientCheck::Basic("s".into()))], 300, &["rt-seed"]).await;
    let api = Api::start(&tokens).await;
    let toml = config(&tokens, &api, &redis, "rt-seed");
    let a = block_in_place(|| start(&toml));
    assert_eq!(call_at(a.proxy).await, 200);
    eventually("the rotation stored", || {
        let v = redis.cli(&["HGET", "cs-lost:grant:bank", "v"]);
        String::from_utf8_lossy(&v)
            .trim()
            .parse::<u64>()
            .unwrap_or(0)
            >= 2
    })
    .await;
    redis.cli(&["FLUSHALL"]);
    eventually_async("A records the loss", Duration::from_secs(15), || {
        let n = redis.cli(&["SCARD", "cs-lost:lost:grant:bank"]);
        let n = String::from_utf8_lossy(&n).trim().to_string();
        std::future::ready(if n == "1" { Ok(()) } else { Err(n) })
    })
    .await;
    // A still serves its valid token; it has renewed nothing.
    assert_eq!(call_at(a.proxy).await, 200);
    assert_eq!(tokens.request_count(), 1);
    let b = block_in_place(|| start(&toml));
    reports_lost(&b, "B reports the store lost").await;
    assert_eq!(presented(&tokens, "rt-seed"), 1, "the spent seed came back");
    assert!(!tokens.reuse_detected());
}

/// The epoch key alone deleted (an eviction, an operator): every replica
/// reads that as a loss and records its items, although they are all
/// there. A credential whose stored refresh token is still its seed (the
/// server does not rotate) is not refused for it: it stays ready and
/// renews from Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_spurious_epoch_change_never_blocks_a_seed_that_is_still_the_stored_token() {
    let redis = RedisServer::start_with(true);
    let tokens =
        TokenServer::start(&[("c", ClientCheck::Basic("s".into()))], 2, &["rt-seed"]).await;
    tokens.set_rotation(false);
    let api = Api::start(&tokens).await;
    let a = block_in_place(|| start(&config(&tokens, &api, &redis, "rt-seed")));
    assert_eq!(call_at(a.proxy).await, 200);
    eventually("a renewal after the first", || tokens.request_count() >= 2).await;

    redis.cli(&["DEL", "cs-lost:epoch"]);
    eventually_async("A records its item", Duration::from_secs(15), || {
        let n = redis.cli(&["SCARD", "cs-lost:lost:grant:bank"]);
        let n = String::from_utf8_lossy(&n).trim().to_string();
        std::future::ready(if n == "1" { Ok(()) } else { Err(n) })
    })
    .await;
    let recorded = tokens.request_count();
    // Renewals go on (2 s tokens renewed at half their life), from the
    // seed, which the server still accepts.
    eventually_async("renewals after the record", Duration::from_secs(15), || {
        let n = tokens.request_count();
        std::future::ready(if n >= recorded + 2 { Ok(()) } else { Err(n) })
    })
    .await;
    let ready = admin_get(a.admin, "/readyz").await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_eq!(call_at(a.proxy).await, 200);
    let spent = redis.cli(&["SCARD", "cs-lost:spent:grant:bank"]);
    assert_eq!(String::from_utf8_lossy(&spent).trim(), "0");
    assert!(tokens
        .requests()
        .iter()
        .all(|r| r.form.get("refresh_token").map(String::as_str) == Some("rt-seed")));
    assert!(!tokens.reuse_detected());
}
