//! Countersigns in the test process sharing a store: a token one renews is
//! announced and taken by the other without waiting for its own renewal;
//! an unreachable Redis keeps the valid token, renews nothing locally and
//! says why once the token expires (or fetches locally for
//! client_credentials when `local_fallback` allows); a Redis that comes
//! back empty is a lost store, not a reason to present the seed again.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::oauth2::{call, config, Api, ClientCheck, TokenServer};

fn store(redis: &RedisServer, extra: &str) -> String {
    format!(
        "[store]\nurl = \"{}\"\nkey_prefix = \"cs-side:\"\ntimeout = \"300ms\"\n{extra}\n",
        redis.url()
    )
}

/// Two countersigns sharing one Redis and one client_credentials grant,
/// both serving the one token a fetched (generation 1).
struct Pair {
    redis: RedisServer,
    tokens: TokenServer,
    api: Api,
    toml: String,
    a: Sidecar,
    b: Sidecar,
}

impl Pair {
    async fn start() -> Pair {
        let redis = RedisServer::start();
        let tokens = TokenServer::start(&[("c", ClientCheck::Basic("s".into()))], 300, &[]).await;
        let api = Api::start(&tokens).await;
        let credential =
            "grant = \"client_credentials\"\nclient_id = \"c\"\nclient_secret = \"s\"\n";
        let toml = format!("{}{}", store(&redis, ""), config(&tokens, &api, credential));
        let a = Sidecar::start(&toml).await;
        assert_eq!(call(&a, "/a").await.status, 200);
        let b = Sidecar::start(&toml).await;
        assert_eq!(call(&b, "/b").await.status, 200);
        assert_eq!(tokens.request_count(), 1, "b took a's token");
        Pair {
            redis,
            tokens,
            api,
            toml,
            a,
            b,
        }
    }
}

async fn probe(sidecar: &Sidecar, path: &str) -> Answer {
    let req = http::Request::get(path)
        .header("host", "admin")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    send(sidecar.probes(), req).await
}

/// `path` on the controls' listener (`/status`).
async fn control(sidecar: &Sidecar, path: &str) -> Answer {
    let req = http::Request::get(path)
        .header("host", "admin")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    send(sidecar.control(), req).await
}

/// The samples of `/metrics` whose name starts with `prefix`.
async fn metrics(sidecar: &Sidecar, prefix: &str) -> BTreeMap<String, f64> {
    probe(sidecar, "/metrics")
        .await
        .body
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_one_replica_renews_is_taken_by_the_other_when_announced() {
    let Pair {
        redis: _redis,
        tokens,
        api,
        toml: _,
        a,
        b,
    } = Pair::start().await;

    // The upstream refuses the token: a renews it (one request) and
    // announces it; b takes it before it sends anything.
    let first = tokens.issued()[0].clone();
    tokens.revoke(&first);
    assert_eq!(call(&a, "/a2").await.status, 200);
    assert_eq!(tokens.request_count(), 2);
    let renewed = Instant::now();
    eventually_async(
        "b serves the announced token",
        Duration::from_secs(5),
        || async {
            let age = metrics(&b, "countersign_token_age_seconds").await;
            match age.values().next() {
                Some(&age) if age <= renewed.elapsed().as_secs_f64() => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    let before = api.seen().len();
    assert_eq!(call(&b, "/b2").await.status, 200);
    let after: Vec<u16> = api.seen()[before..].iter().map(|(_, s)| *s).collect();
    assert_eq!(after, [200], "b never sent the refused token");
    assert_eq!(tokens.request_count(), 2, "b asked for nothing");
}

/// A store that lost the published token (a failover promoted a replica
/// that had not received it yet: Redis replicates asynchronously) gets the
/// next renewal published under a generation no replica serves, and the
/// other replica takes it instead of renewing for itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_published_after_the_store_lost_the_last_one_is_taken_by_the_others() {
    let Pair {
        redis,
        tokens,
        api: _api,
        toml: _,
        a,
        b,
    } = Pair::start().await;

    let published = "cs-side:token:grant:bank";
    let generation = || String::from_utf8(redis.cli(&["HGET", published, "g"])).unwrap();
    assert_eq!(generation().trim(), "1");
    redis.cli(&["DEL", published]);
    tokens.revoke(&tokens.issued()[0]);
    assert_eq!(call(&a, "/a2").await.status, 200);
    assert_eq!(tokens.request_count(), 2);
    assert_eq!(
        generation().trim(),
        "2",
        "published after the generation a served, not as the first again"
    );
    assert_eq!(call(&b, "/b2").await.status, 200);
    assert_eq!(
        tokens.request_count(),
        2,
        "b took a's token: one renewal for the two"
    );
}

/// The lost token's generation published again, with another token: a
/// replica started after the loss serves nothing, so it publishes its first
/// renewal as generation 1, the one the others serve. They take it (its
/// value differs) instead of renewing for themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_served_generation_published_again_with_another_token_is_taken() {
    let Pair {
        redis,
        tokens,
        api: _api,
        toml,
        a: _a,
        b,
    } = Pair::start().await;

    let published = "cs-side:token:grant:bank";
    let generation = || String::from_utf8(redis.cli(&["HGET", published, "g"])).unwrap();
    redis.cli(&["DEL", published]);
    let c = Sidecar::start(&toml).await;
    assert_eq!(call(&c, "/c").await.status, 200);
    assert_eq!(
        tokens.request_count(),
        2,
        "c renewed: nothing was published"
    );
    assert_eq!(generation().trim(), "1", "the generation b serves");

    tokens.revoke(&tokens.issued()[0]);
    assert_eq!(call(&b, "/b2").await.status, 200);
    assert_eq!(
        tokens.request_count(),
        2,
        "b took c's token: one renewal for the three"
    );
}

/// Commands Redis has processed so far (the INFO asking counts as one).
fn commands(redis: &RedisServer) -> u64 {
    let info = String::from_utf8(redis.cli(&["INFO", "stats"])).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("total_commands_processed:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("INFO stats has total_commands_processed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_signed_without_a_redis_round_trip() {
    let redis = RedisServer::start();
    let tokens = TokenServer::start(&[("c", ClientCheck::Basic("s".into()))], 300, &[]).await;
    let api = Api::start(&tokens).await;
    let credential = "grant = \"client_credentials\"\nclient_id = \"c\"\nclient_secret = \"s\"\n";
    let toml = format!("{}{}", store(&redis, ""), config(&tokens, &api, credential));
    let sidecar = Sidecar::start(&toml).await;
    assert_eq!(call(&sidecar, "/warm").await.status, 200);
    let before = commands(&redis);
    for i in 0..50 {
        assert_eq!(call(&sidecar, &format!("/{i}")).await.status, 200);
    }
    let during = commands(&redis) - before;
    // The second INFO is the one command expected.
    assert!(during <= 2, "{during} Redis commands for 50 requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_store_keeps_the_token_renews_nothing_and_then_says_why() {
    let mut redis = RedisServer::start_with(true);
    let tokens =
        TokenServer::start(&[("c", ClientCheck::Basic("s".into()))], 2, &["rt-seed"]).await;
    let api = Api::start(&tokens).await;
    let credential = "grant = \"refresh_token\"\nclient_id = \"c\"\nclient_secret = \"s\"\nrefresh_token = \"rt-seed\"\nrequired = true\nrefresh_at = 0.9\n";
    let toml = format!("{}{}", store(&redis, ""), config(&tokens, &api, credential));
    let sidecar = Sidecar::start(&toml).await;
    assert_eq!(call(&sidecar, "/a").await.status, 200);
    let n = tokens.request_count();
    redis.stop();
    // The token in memory still signs.
    assert_eq!(call(&sidecar, "/b").await.status, 200);
    eventually_async("/readyz says why", Duration::from_secs(10), || async {
        let ready = probe(&sidecar, "/readyz").await;
        match ready.status.as_u16() {
            503 => Ok(ready.body),
            _ => Err(ready.body),
        }
    })
    .await;
    let ready = probe(&sidecar, "/readyz").await.body;
    assert!(
        ready.contains("bank (cannot reach the shared token store"),
        "{ready}"
    );
    assert!(ready.contains("never locally"), "{ready}");
    assert_eq!(tokens.request_count(), n, "nothing renewed locally");
    let errors = metrics(&sidecar, "countersign_store_errors_total").await;
    assert!(
        errors[r#"countersign_store_errors_total{op="read"}"#] >= 1.0,
        "{errors:?}"
    );
    // /status says the same to whoever runs the fleet: the credential
    // waits, and its last error names the store (never a token).
    let status = control(&sidecar, "/status").await;
    assert_eq!(status.status, 200, "{}", status.body);
    let status: serde_json::Value = serde_json::from_str(&status.body).unwrap();
    let bank = status["credentials"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["name"] == "bank"))
        .unwrap_or_else(|| panic!("no bank in {status}"));
    assert_eq!(bank["state"], "waiting", "{bank}");
    let last_error = bank["token"]["last_error"].as_str().unwrap_or_default();
    assert!(
        last_error.contains("cannot reach the shared token store")
            && last_error.contains(&redis.url())
            && last_error.contains("never locally"),
        "{bank}"
    );
    for issued in tokens.issued() {
        assert!(!status.to_string().contains(&issued), "a token in {status}");
    }

    // Back (with its data): renewal resumes, from the stored refresh token.
    redis.restart();
    eventually("renewal resumes", || tokens.request_count() > n).await;
    assert!(!tokens.reuse_detected());
    eventually_async("ready again", Duration::from_secs(10), || async {
        match probe(&sidecar, "/readyz").await.status.as_u16() {
            200 => Ok(()),
            s => Err(s),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_fetch_locally_when_the_store_is_down_if_allowed() {
    let mut redis = RedisServer::start();
    let tokens = TokenServer::start(&[("c", ClientCheck::Basic("s".into()))], 1, &[]).await;
    let api = Api::start(&tokens).await;
    let credential = "grant = \"client_credentials\"\nclient_id = \"c\"\nclient_secret = \"s\"\n";
    let toml = format!(
        "{}{}",
        store(&redis, "local_fallback = true"),
        config(&tokens, &api, credential)
    );
    let sidecar = Sidecar::start(&toml).await;
    assert_eq!(call(&sidecar, "/a").await.status, 200);
    redis.stop();
    let n = tokens.request_count();
    eventually("renewed locally", || tokens.request_count() >= n + 2).await;
    assert_eq!(call(&sidecar, "/b").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_comes_back_empty_is_lost_and_not_reseeded() {
    let mut redis = RedisServer::start();
    let tokens =
        TokenServer::start(&[("c", ClientCheck::Basic("s".into()))], 2, &["rt-seed"]).await;
    let api = Api::start(&tokens).await;
    let credential = "grant = \"refresh_token\"\nclient_id = \"c\"\nclient_secret = \"s\"\nrefresh_token = \"rt-seed\"\nrequired = true\nrefresh_at = 0.5\n";
    let toml = format!("{}{}", store(&redis, ""), config(&tokens, &api, credential));
    let sidecar = Sidecar::start(&toml).await;
    assert_eq!(call(&sidecar, "/a").await.status, 200);
    eventually("a rotation", || tokens.request_count() >= 2).await;
    // The token server has answered; wait until the rotated grant is
    // stored too. A restart between the two leaves this process holding
    // the newest refresh token unsaved, and it rightly writes that into
    // the empty store when it is back: the grant is then not lost.
    eventually("the rotation stored", || {
        let v = redis.cli(&["HGET", "cs-side:grant:bank", "v"]);
        String::from_utf8_lossy(&v)
            .trim()
            .parse::<u64>()
            .unwrap_or(0)
            >= 2
    })
    .await;
    // No persistence: it restarts empty.
    redis.restart();
    let ready = eventually_async(
        "/readyz says the store is lost",
        Duration::from_secs(10),
        || async {
            let ready = probe(&sidecar, "/readyz").await;
            match ready.status.as_u16() {
                503 => Ok(ready.body),
                _ => Err(ready.body),
            }
        },
    )
    .await;
    assert!(ready.contains("lost its data"), "{ready}");
    let seeds = tokens
        .requests()
        .iter()
        .filter(|r| r.form.get("refresh_token").map(String::as_str) == Some("rt-seed"))
        .count();
    assert_eq!(seeds, 1, "the seed was presented again");
    assert!(!tokens.reuse_detected());
}
