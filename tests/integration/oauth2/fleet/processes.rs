//! Three compiled countersigns sharing one rotating refresh-token grant
//! through a real `redis-server`, against the test's token server (which
//! rotates refresh tokens and revokes the grant when a spent one comes
//! back): under load, with the lease holder killed mid-request, with
//! Redis stopped and restarted, and with Redis stopped between the token
//! endpoint's answer and the write of the rotated refresh token.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::task::block_in_place;

use crate::binary::{write_config, Process};
use crate::harness::*;
use crate::oauth2::{Api, ClientCheck, Failure, TokenServer};

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const LEASE_LOG: &str = "holding the fleet's renewal lease";

pub(super) struct Replica {
    pub(super) p: Process,
    pub(super) proxy: SocketAddr,
    /// The admin listener (probes and /metrics).
    pub(super) admin: SocketAddr,
    _dir: tempfile::TempDir,
}

/// Three replicas' config: `grace` is `store.unsaved_grace`.
fn fleet_config(
    tokens: &TokenServer,
    api: &Api,
    redis: &RedisServer,
    refresh_at: f64,
    grace: &str,
) -> String {
    format!(
        r#"
[proxy]
listen = "127.0.0.1:0"
connect_timeout = "1s"
response_timeout = "1s"

[store]
url = "{redis}"
key_prefix = "cs-fleet:"
store_key = "{KEY}"
timeout = "500ms"
unsaved_grace = "{grace}"

[credential.bank]
type = "oauth2"
token_url = "{token_url}"
grant = "refresh_token"
client_id = "c"
client_secret = "s"
refresh_token = "rt-seed"
refresh_at = {refresh_at}

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

/// `n` countersigns on `toml`, each in its own folder, serving.
pub(super) fn start(toml: &str, n: usize) -> Vec<Replica> {
    (0..n)
        .map(|_| {
            let dir = tempfile::tempdir().unwrap();
            let mut p = Process::start(&write_config(dir.path(), toml), &[]);
            let proxy = p.listening("forward");
            let admin = p.listening("admin");
            p.wait_for("countersign is serving");
            Replica {
                p,
                proxy,
                admin,
                _dir: dir,
            }
        })
        .collect()
}

/// How old the token `r` serves is, by its `/metrics`.
async fn token_age(r: &Replica) -> Option<f64> {
    let req = http::Request::get("/metrics")
        .header("host", "admin")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    send(r.admin, req)
        .await
        .body
        .lines()
        .find(|l| l.starts_with("countersign_token_age_seconds"))
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse().ok())
}

pub(super) async fn call_at(proxy: SocketAddr) -> u16 {
    send(proxy, get("http://bank.test/api"))
        .await
        .status
        .as_u16()
}

/// Requests spread over `proxies` (three loops each) for `span`; the
/// statuses that were not 200, and how many were.
pub(super) async fn load(proxies: &[SocketAddr], span: Duration) -> (usize, Vec<u16>) {
    let until = Instant::now() + span;
    let mut tasks = Vec::new();
    for &proxy in proxies {
        for _ in 0..3 {
            tasks.push(tokio::spawn(async move {
                let (mut ok, mut bad) = (0, Vec::new());
                while Instant::now() < until {
                    match call_at(proxy).await {
                        200 => ok += 1,
                        status => bad.push(status),
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                (ok, bad)
            }));
        }
    }
    let (mut ok, mut bad) = (0, Vec::new());
    for t in tasks {
        let (o, b) = t.await.unwrap();
        ok += o;
        bad.extend(b);
    }
    (ok, bad)
}

/// No refresh token was presented twice (but for `unspent`, one the
/// server refused without spending), and the server saw no reuse.
pub(super) fn no_reuse(tokens: &TokenServer, unspent: Option<&str>) {
    assert!(!tokens.reuse_detected(), "a spent refresh token came back");
    let mut presented: Vec<String> = tokens
        .requests()
        .iter()
        .filter_map(|r| r.form.get("refresh_token").cloned())
        .collect();
    if let Some(unspent) = unspent {
        let first = presented.iter().position(|t| t == unspent).unwrap();
        presented.remove(first);
    }
    let distinct: HashSet<_> = presented.iter().collect();
    assert_eq!(distinct.len(), presented.len(), "{presented:?}");
}

/// The replica that logs `needle` after its first `seen` lines, waiting
/// up to 10 s for it.
fn logged_by(fleet: &mut [Replica], seen: &[usize], needle: &str) -> usize {
    let what = format!("a replica to log {needle:?}");
    eventually_blocking(&what, Duration::from_secs(10), || {
        fleet
            .iter_mut()
            .zip(seen)
            .position(|(r, &n)| r.p.drain_lines()[n..].iter().any(|l| l.contains(needle)))
            .ok_or("none has")
    })
}

pub(super) async fn all_serve(fleet: &[Replica]) {
    for r in fleet {
        assert_eq!(call_at(r.proxy).await, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_renew_one_rotating_grant_once_per_renewal_fleet_wide() {
    let redis = RedisServer::start_with(true);
    let tokens =
        TokenServer::start(&[("c", ClientCheck::Basic("s".into()))], 3, &["rt-seed"]).await;
    let api = Api::start(&tokens).await;
    let toml = fleet_config(&tokens, &api, &redis, 0.6, "30s");
    let fleet = block_in_place(|| start(&toml, 3));
    all_serve(&fleet).await;

    let proxies: Vec<SocketAddr> = fleet.iter().map(|r| r.proxy).collect();
    let before = tokens.request_count();
    let started = Instant::now();
    let (ok, failed) = load(&proxies, Duration::from_secs(12)).await;
    let took = started.elapsed().as_secs_f64();
    let requests = tokens.request_count() - before;
    // One renewal per refresh_at (0.6) of a 3 s lifetime, at the earliest
    // 0.9 of that (jitter): what one countersign alone would make. Three
    // renewing on their own would make three times as many.
    let periods = (took / (3.0 * 0.6 * 0.9)).ceil() as usize;
    eprintln!(
        "fleet of 3: {requests} token requests in {took:.1}s ({periods} renewal periods), {ok} requests ok, {} failed",
        failed.len()
    );
    assert!(failed.is_empty(), "failed requests: {failed:?}");
    assert!(ok > 100, "load ran: {ok}");
    assert!(
        requests <= periods + 2,
        "{requests} token requests for {periods} renewal periods"
    );
    no_reuse(&tokens, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_lease_holder_is_replaced_after_its_lease_and_the_grant_survives() {
    let redis = RedisServer::start_with(true);
    let tokens =
        TokenServer::start(&[("c", ClientCheck::Basic("s".into()))], 3, &["rt-seed"]).await;
    let api = Api::start(&tokens).await;
    let toml = fleet_config(&tokens, &api, &redis, 0.6, "2s");
    let mut fleet = block_in_place(|| start(&toml, 3));
    all_serve(&fleet).await;
    for r in &mut fleet {
        r.p.drain_lines();
    }
    let seen: Vec<usize> = fleet.iter_mut().map(|r| r.p.seen.len()).collect();

    // The next renewal is held at the token server (and then refused
    // without rotating: the server never processed it), and its sender
    // killed meanwhile.
    let held_at = tokens.request_count();
    tokens.fail_next(&[Failure::Status500]);
    let holding_from = std::time::Instant::now();
    tokens.hold();
    eventually("a renewal reaches the token server", || {
        tokens.request_count() > held_at
    })
    .await;
    let presented = tokens.requests()[held_at].form["refresh_token"].clone();
    // The log is written a few milliseconds after the line is logged.
    let holder = block_in_place(|| logged_by(&mut fleet, &seen, LEASE_LOG));
    let killed = fleet.remove(holder);
    killed.p.signal("-KILL");
    let killed_at = Instant::now();
    tokens.release();
    drop(killed);

    // The earliest another replica may present, from the config (as
    // `Leases::renewal_bound` and `Fleet::wrap` size the lease): the
    // killed holder's lease, taken no earlier than a moment (1 s: a few
    // store round trips on a local socket) before its request was held,
    // lasts the token request (connect + response timeouts) and four
    // store calls of `4 x timeout + 1 s` each, plus 2 s; and its presented
    // mark, written just before, holds the token back for
    // `unsaved_grace`, counted in whole seconds (so up to 1 s less).
    let (request, store_timeout, grace) = (
        Duration::from_secs(2),
        Duration::from_millis(500),
        Duration::from_secs(2),
    );
    let lease_ttl =
        request + (store_timeout * 4 + Duration::from_secs(1)) * 4 + Duration::from_secs(2);
    let slack = Duration::from_secs(1);
    let earliest = (holding_from + lease_ttl - slack).max(holding_from + grace - slack * 2);
    eventually_async(
        "another replica renews",
        lease_ttl + grace + Duration::from_secs(10),
        || {
            let n = tokens.request_count();
            std::future::ready(if n > held_at + 1 { Ok(()) } else { Err(n) })
        },
    )
    .await;
    let takeover = killed_at.elapsed();
    let next = &tokens.requests()[held_at + 1];
    assert!(
        next.at >= earliest,
        "another replica presented {:?} before the killed holder's lease expired",
        earliest - next.at
    );
    let next = next.form["refresh_token"].clone();
    assert_eq!(next, presented, "the survivor continues the grant");
    eprintln!(
        "lease holder killed: another replica renewed after {takeover:?} (lease {lease_ttl:?})"
    );
    eventually_async("renewals go on", Duration::from_secs(15), || {
        let n = tokens.request_count();
        std::future::ready(if n > held_at + 3 { Ok(()) } else { Err(n) })
    })
    .await;
    all_serve(&fleet).await;
    no_reuse(&tokens, Some(&presented));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_stopped_and_restarted_valid_tokens_serve_and_renewal_resumes() {
    let mut redis = RedisServer::start_with(true);
    let tokens =
        TokenServer::start(&[("c", ClientCheck::Basic("s".into()))], 16, &["rt-seed"]).await;
    let api = Api::start(&tokens).await;
    let toml = fleet_config(&tokens, &api, &redis, 0.5, "30s");
    let fleet = block_in_place(|| start(&toml, 3));
    all_serve(&fleet).await;
    let proxies: Vec<SocketAddr> = fleet.iter().map(|r| r.proxy).collect();

    // Right after a renewal is published (not only answered: a stop in
    // between leaves the holder unable to store it) every replica takes the
    // announced token, with 16 s left: Redis stays down 10 s, through the
    // next renewal (due 8 s in), which fails and is retried until Redis is
    // back.
    let published = || {
        let g = redis.cli(&["HGET", "cs-fleet:token:grant:bank", "g"]);
        String::from_utf8_lossy(&g)
            .trim()
            .parse::<u64>()
            .unwrap_or(0)
    };
    let before = published();
    eventually_async("a renewal published", Duration::from_secs(20), || {
        let now = published();
        std::future::ready(if now > before { Ok(()) } else { Err(now) })
    })
    .await;
    // Each replica reads the announced token from Redis: wait until every
    // one serves it before Redis goes.
    let renewed = Instant::now();
    for r in &fleet {
        eventually_async("every replica took it", Duration::from_secs(10), || async {
            match token_age(r).await {
                Some(age) if age <= renewed.elapsed().as_secs_f64() + 1.0 => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
    }
    redis.stop();
    let (ok, failed) = load(&proxies, Duration::from_secs(10)).await;
    assert!(failed.is_empty(), "failed during the outage: {failed:?}");
    assert!(ok > 20, "load ran: {ok}");
    redis.restart();

    let n = tokens.request_count();
    eventually_async("renewal resumes", Duration::from_secs(20), || {
        let now = tokens.request_count();
        std::future::ready(if now > n { Ok(()) } else { Err(now) })
    })
    .await;
    // A replica whose token ran out during the outage renews on its own
    // backoff schedule; once each serves again, none fails.
    for r in &fleet {
        eventually_async(
            "every replica serves again",
            Duration::from_secs(30),
            || async {
                match call_at(r.proxy).await {
                    200 => Ok(()),
                    other => Err(other),
                }
            },
        )
        .await;
    }
    let (ok, failed) = load(&proxies, Duration::from_secs(2)).await;
    assert!(failed.is_empty(), "failed after the restart: {failed:?}");
    assert!(ok > 20);
    no_reuse(&tokens, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_successor_the_store_could_not_take_is_never_preempted_by_another_replica() {
    let mut redis = RedisServer::start_with(true);
    let tokens =
        TokenServer::start(&[("c", ClientCheck::Basic("s".into()))], 3, &["rt-seed"]).await;
    let api = Api::start(&tokens).await;
    let toml = fleet_config(&tokens, &api, &redis, 0.6, "30s");
    let mut fleet = block_in_place(|| start(&toml, 3));
    all_serve(&fleet).await;
    for r in &mut fleet {
        r.p.drain_lines();
    }
    let seen: Vec<usize> = fleet.iter_mut().map(|r| r.p.seen.len()).collect();

    // The next renewal's answer is held at the token server while Redis
    // stops; then it rotates the refresh token and answers, and the
    // holder cannot store the successor. Redis comes back with the spent
    // token (AOF), marked as presented by the holder.
    let held_at = tokens.request_count();
    tokens.hold();
    eventually("a renewal reaches the token server", || {
        tokens.request_count() > held_at
    })
    .await;
    redis.stop();
    tokens.release();
    let holder =
        block_in_place(|| logged_by(&mut fleet, &seen, "cannot store the rotated refresh token"));
    redis.restart();

    // The others wait for the holder, which stores its successor; no
    // refresh token is presented twice and renewals go on.
    eventually_async("renewals go on", Duration::from_secs(30), || {
        let n = tokens.request_count();
        std::future::ready(if n > held_at + 3 { Ok(()) } else { Err(n) })
    })
    .await;
    block_in_place(|| {
        fleet[holder]
            .p
            .wait_for("stored the rotated refresh token that could not be stored before")
    });
    for r in &fleet {
        eventually_async("every replica serves", Duration::from_secs(15), || async {
            match call_at(r.proxy).await {
                200 => Ok(()),
                other => Err(other),
            }
        })
        .await;
    }
    no_reuse(&tokens, None);
}
