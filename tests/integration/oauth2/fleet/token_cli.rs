//! `countersign token` with `[store]` set, the binary: it reads the shared
//! store (the grant's version, a presented mark, the published token's
//! generation and age, the lease) and fetches and prints nothing secret;
//! `--reveal` is refused, and an unreachable Redis is an error.

use std::process::Command;
use std::time::Duration;

use tokio::task::block_in_place;

use super::processes::{all_serve, start};
use crate::binary::{write_config, BIN};
use crate::harness::*;
use crate::oauth2::{Api, ClientCheck, TokenServer};

fn config(tokens: &TokenServer, api: &Api, redis: &RedisServer) -> String {
    format!(
        r#"
[proxy]
listen = "127.0.0.1:0"
connect_timeout = "1s"
response_timeout = "5s"

[store]
url = "{redis}"
key_prefix = "cs-cli:"
store_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
timeout = "500ms"

[credential.bank]
type = "oauth2"
token_url = "{token_url}"
grant = "refresh_token"
client_id = "c"
client_secret = "s"
refresh_token = "rt-seed"
refresh_at = 0.6

[credential.gmo]
type = "oauth2"
grant = "authorization_code"
token_url = "{token_url}"
authorize_url = "https://auth.bank.test/authorize"
redirect_uri = "https://app.example.test/oauth2/callback"
client_id = "gmo-client"
client_secret = "gmo-secret"

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

/// `countersign token --config CONFIG --credential bank [extra]`: exit
/// code, stdout, stderr.
fn token(config: &std::path::Path, extra: &[&str]) -> (Option<i32>, String, String) {
    token_of(config, "bank", extra)
}

fn token_of(
    config: &std::path::Path,
    credential: &str,
    extra: &[&str],
) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .args(["token", "--config"])
        .arg(config)
        .args(["--credential", credential])
        .args(extra)
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// No refresh token or access token the server handed out, nor the seed.
fn no_secret(tokens: &TokenServer, text: &str) {
    assert!(!text.contains("rt-seed"), "{text}");
    for t in tokens.issued() {
        assert!(!text.contains(&t), "{text}");
    }
    for r in tokens.requests() {
        if let Some(rt) = r.form.get("refresh_token") {
            assert!(!text.contains(rt.as_str()), "{text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn token_reads_the_shared_store_and_prints_no_secret() {
    let mut redis = RedisServer::start();
    let tokens =
        TokenServer::start(&[("c", ClientCheck::Basic("s".into()))], 3, &["rt-seed"]).await;
    let api = Api::start(&tokens).await;
    let toml = config(&tokens, &api, &redis);
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &toml);

    // Before any replica ran: nothing stored, nothing published, nothing
    // asked of the token server.
    let (code, text, err) = block_in_place(|| token(&path, &[]));
    assert_eq!(code, Some(0), "{err}");
    assert!(text.contains("shared store: unix://"), "{text}");
    assert!(
        text.contains("cs-cli:grant:bank (nothing stored yet"),
        "{text}"
    );
    assert!(
        text.contains("cs-cli:token:grant:bank (none published yet)"),
        "{text}"
    );
    assert!(
        text.contains("renewal lease: cs-cli:lease:grant:bank (free)"),
        "{text}"
    );
    assert!(text.contains("not fetched"), "{text}");
    assert_eq!(tokens.request_count(), 0, "the command fetched nothing");

    // A replica runs: a grant version and a published token show.
    let fleet = block_in_place(|| start(&toml, 1));
    all_serve(&fleet).await;
    let asked = tokens.request_count();
    let (code, text, err) = block_in_place(|| token(&path, &[]));
    assert_eq!(code, Some(0), "{err}");
    assert!(text.contains("cs-cli:grant:bank, version "), "{text}");
    assert!(text.contains("no refresh token presented"), "{text}");
    assert!(
        text.contains("cs-cli:token:grant:bank, generation 1, age "),
        "{text}"
    );
    assert_eq!(tokens.request_count(), asked, "the command fetched nothing");
    no_secret(&tokens, &text);

    // While a renewal is held at the token server: the presented mark, and
    // the lease held.
    tokens.hold();
    let held_at = tokens.request_count();
    eventually_async(
        "a renewal reaches the token server",
        Duration::from_secs(10),
        || {
            let n = tokens.request_count();
            std::future::ready(if n > held_at { Ok(()) } else { Err(n) })
        },
    )
    .await;
    let (code, text, err) = block_in_place(|| token(&path, &[]));
    tokens.release();
    assert_eq!(code, Some(0), "{err}");
    assert!(
        text.contains("presented the refresh token")
            && text.contains("has not stored its successor yet"),
        "{text}"
    );
    assert!(text.contains("(held by a replica now)"), "{text}");
    no_secret(&tokens, &text);

    // An authorization_code credential: its stored sessions are counted
    // (by key name; two of `gmo`, one of another credential).
    let (code, text, err) = block_in_place(|| token_of(&path, "gmo", &[]));
    assert_eq!(code, Some(0), "{err}");
    assert!(text.contains("sessions: 0 stored"), "{text}");
    for key in [
        "cs-cli:session:gmo:aaaa",
        "cs-cli:session:gmo:bbbb",
        "cs-cli:session:gmo2:cccc",
    ] {
        redis.cli(&["HSET", key, "v", "1", "d", "x"]);
    }
    let (code, text, err) = block_in_place(|| token_of(&path, "gmo", &[]));
    assert_eq!(code, Some(0), "{err}");
    assert!(text.contains("sessions: 2 stored"), "{text}");

    // --reveal is refused, with why.
    let (code, text, err) = block_in_place(|| token(&path, &["--reveal"]));
    assert_eq!(code, Some(2));
    assert!(text.is_empty(), "{text}");
    assert!(err.contains("never prints a token"), "{err}");

    // Redis away: it says so, and fails.
    drop(fleet);
    redis.stop();
    let (code, _, err) = block_in_place(|| token(&path, &[]));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("cannot reach the shared token store"), "{err}");
}
