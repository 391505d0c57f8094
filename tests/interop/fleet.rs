//! Three compiled countersigns sharing one rotating refresh-token grant of
//! oidc-provider (rotation with reuse detection: a spent refresh token
//! presented again revokes the grant) through a real `redis-server` with
//! AOF, 3 s access tokens, and 30 s of load spread over the three: no
//! request fails, the server refuses nothing, and the fleet asks for about
//! one token per renewal period, as one countersign alone would.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::task::block_in_place;

use crate::integration::harness::process::{write_config, Process};
use crate::integration::harness::*;
use crate::oidc_provider::OidcProvider;
use crate::toml_str;

const LOAD: Duration = Duration::from_secs(30);
/// oidc-provider's access token lifetime for `fleet-client` (server.mjs).
const LIFETIME_S: f64 = 3.0;
const REFRESH_AT: f64 = 0.6;

fn config(server: &OidcProvider, redis: &RedisServer, upstream: &Upstream) -> String {
    format!(
        r#"
[proxy]
listen = "127.0.0.1:0"

[store]
url = "{redis}"
key_prefix = "cs-interop:"

[credential.api]
type = "oauth2"
token_url = {token_url}
grant = "refresh_token"
client_id = "fleet-client"
client_secret = {secret}
refresh_token = {seed}
refresh_at = {REFRESH_AT}

[[route]]
name = "api"
hosts = ["api.interop.test"]
upstream = "{upstream}"
credential = "api"
"#,
        redis = redis.url(),
        token_url = toml_str(&server.info.token_endpoint),
        secret = toml_str(server.secret("fleet-client")),
        seed = toml_str(&server.info.fleet_refresh_token),
        upstream = upstream.http_url(),
    )
}

async fn call(proxy: SocketAddr) -> u16 {
    send(proxy, get("http://api.interop.test/v1/things"))
        .await
        .status
        .as_u16()
}

/// Three request loops per proxy until `span` has passed: how many got 200,
/// and the statuses of the others.
async fn load(proxies: &[SocketAddr], span: Duration) -> (usize, Vec<u16>) {
    let until = Instant::now() + span;
    let mut loops = Vec::new();
    for &proxy in proxies {
        for _ in 0..3 {
            loops.push(tokio::spawn(async move {
                let (mut ok, mut failed) = (0, Vec::new());
                while Instant::now() < until {
                    match call(proxy).await {
                        200 => ok += 1,
                        status => failed.push(status),
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                (ok, failed)
            }));
        }
    }
    let (mut ok, mut failed) = (0, Vec::new());
    for l in loops {
        let (o, f) = l.await.unwrap();
        ok += o;
        failed.extend(f);
    }
    (ok, failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "interop: needs `npm ci` in tests/interop/oidc-provider and redis-server; run by .ci/run"]
async fn three_replicas_share_one_rotating_grant_for_30_seconds() {
    let server = OidcProvider::start();
    let redis = RedisServer::start_with(true);
    let upstream = Upstream::http().await;
    let toml = config(&server, &redis, &upstream);
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut fleet: Vec<Process> = block_in_place(|| {
        dirs.iter()
            .map(|d| Process::start(&write_config(d.path(), &toml), &[]))
            .collect()
    });
    let proxies: Vec<SocketAddr> = block_in_place(|| {
        fleet
            .iter_mut()
            .map(|p| {
                let proxy = p.listening("forward");
                p.wait_for("countersign is serving");
                proxy
            })
            .collect()
    });

    let started = Instant::now();
    let (ok, failed) = load(&proxies, LOAD).await;
    let took = started.elapsed().as_secs_f64();
    // A token the upstream just saw is one the server still honours.
    assert_eq!(call(proxies[0]).await, 200);
    let auth = upstream.last().header("authorization").unwrap().to_string();
    let token = auth.strip_prefix("Bearer ").unwrap();
    server.assert_active(token, "fleet-client").await;

    let requests = server.grants("refresh_token", "fleet-client").await;
    let distinct: HashSet<String> = upstream
        .received()
        .iter()
        .filter_map(|r| r.header("authorization").map(str::to_string))
        .collect();
    // One renewal per refresh_at of the lifetime, at the earliest 0.9 of
    // that (jitter), plus the first: what one countersign alone makes.
    let periods = (took / (LIFETIME_S * REFRESH_AT * 0.9)).ceil() as usize;
    eprintln!(
        "oidc-provider fleet of 3: {requests} token requests in {took:.1}s ({periods} renewal periods), {} distinct tokens at the upstream, {ok} requests ok, {} failed",
        distinct.len(),
        failed.len()
    );
    assert!(
        failed.is_empty(),
        "failed requests: {failed:?}\n{}",
        server.log()
    );
    assert!(ok > 300, "load ran: {ok}");
    assert_eq!(
        server.refusals().await,
        Vec::<String>::new(),
        "the server refused a token request (a refresh token presented twice revokes the grant)"
    );
    assert!(
        requests <= periods + 2,
        "{requests} token requests for {periods} renewal periods"
    );
    assert!(
        distinct.len() <= requests,
        "every token the upstream saw was one of the fleet's {requests}: {}",
        distinct.len()
    );
}
