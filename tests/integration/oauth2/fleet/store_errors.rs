//! `countersign_store_errors_total{op="grant"}` of a compiled countersign
//! whose store refuses the writes of a renewal: its Redis user loses
//! `HSET` (which the compare-and-set scripts run) at chosen moments, while
//! reads and leases still work. Refused before the token request, the
//! presented mark is not written and nothing is presented; refused after
//! it, the rotated refresh token is kept in memory and stored once the
//! store takes it. Each refusal is counted, and no refresh token is
//! presented twice.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::task::block_in_place;

use super::processes::no_reuse;
use crate::binary::{write_config, Process};
use crate::harness::*;
use crate::oauth2::{Api, ClientCheck, TokenServer};

fn config(redis: &RedisServer, tokens: &TokenServer, api: &Api) -> String {
    format!(
        r#"
[proxy]
listen = "127.0.0.1:0"
connect_timeout = "1s"
response_timeout = "2s"

[store]
url = "{redis}"
username = "cs-app"
password = "err-pass-51d0"
key_prefix = "cs-err:"
timeout = "500ms"

[credential.bank]
type = "oauth2"
token_url = "{token_url}"
grant = "refresh_token"
client_id = "c"
client_secret = "s"
refresh_token = "rt-seed"

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

/// The store's user may (`true`) or may not run `HSET`.
fn writes(redis: &RedisServer, allowed: bool) {
    let rule = if allowed { "+hset" } else { "-hset" };
    let out = redis.cli(&["ACL", "SETUSER", "cs-app", rule]);
    assert_eq!(String::from_utf8_lossy(&out).trim(), "OK");
}

async fn grant_errors(admin: SocketAddr) -> f64 {
    let req = http::Request::get("/metrics")
        .header("host", "admin")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let name = "countersign_store_errors_total{op=\"grant\"} ";
    send(admin, req)
        .await
        .body
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

async fn call(proxy: SocketAddr) -> u16 {
    send(proxy, get("http://bank.test/api"))
        .await
        .status
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_mark_and_a_refused_successor_are_counted_as_grant_errors() {
    let redis = RedisServer::start();
    redis.documented_acl_user("cs-app", "err-pass-51d0", "cs-err:");
    let tokens =
        TokenServer::start(&[("c", ClientCheck::Basic("s".into()))], 300, &["rt-seed"]).await;
    let api = Api::start(&tokens).await;
    let dir = tempfile::tempdir().unwrap();
    let mut p = Process::start(
        &write_config(dir.path(), &config(&redis, &tokens, &api)),
        &[],
    );
    let proxy = block_in_place(|| p.listening("forward"));
    let admin = block_in_place(|| p.listening("admin"));
    block_in_place(|| p.wait_for("countersign is serving"));
    assert_eq!(call(proxy).await, 200);
    assert_eq!(grant_errors(admin).await, 0.0);
    let n = tokens.request_count();

    // The presented mark refused: the bank refuses the token in use, the
    // renewal reads the grant and cannot mark it, and presents nothing.
    writes(&redis, false);
    let (auth, _) = api.seen().last().cloned().unwrap();
    tokens.revoke(auth.unwrap().strip_prefix("Bearer ").unwrap());
    let _ = call(proxy).await;
    eventually_async(
        "a refused mark counted",
        Duration::from_secs(10),
        || async {
            match grant_errors(admin).await {
                e if e >= 1.0 => Ok(()),
                e => Err(e),
            }
        },
    )
    .await;
    assert_eq!(tokens.request_count(), n, "presented without its mark");

    // The successor refused: the mark goes in and the token request is
    // held at the server; the store stops taking writes before it answers.
    tokens.hold();
    writes(&redis, true);
    eventually("a renewal reaches the token server", || {
        tokens.request_count() > n
    })
    .await;
    let before = grant_errors(admin).await;
    writes(&redis, false);
    tokens.release();
    block_in_place(|| p.wait_for("cannot store the rotated refresh token"));
    assert!(grant_errors(admin).await > before);

    // Back: the successor kept in memory is stored, and renewal goes on.
    writes(&redis, true);
    block_in_place(|| {
        p.wait_for("stored the rotated refresh token that could not be stored before")
    });
    eventually_async("serving again", Duration::from_secs(15), || async {
        match call(proxy).await {
            200 => Ok(()),
            s => Err(s),
        }
    })
    .await;
    no_reuse(&tokens, None);
    let denied = String::from_utf8(redis.cli(&["ACL", "LOG"])).unwrap();
    assert!(
        denied.contains("hset"),
        "the refusals were Redis's: {denied}"
    );
}
