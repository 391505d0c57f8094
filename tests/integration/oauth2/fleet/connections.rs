//! The ways of reaching one Redis that `[store]` documents besides a plain
//! url, each with a real `redis-server` and one round trip through it (a
//! token one countersign renews and publishes, the other reads instead of
//! asking the token endpoint): a direct `rediss://` url with `ca_file` and
//! a client certificate, and an ACL user (`username`, `password`) allowed
//! only what docs/replicas.md lists. A wrong password is an error naming
//! the store, never the password.

use std::time::Duration;

use crate::harness::*;
use crate::oauth2::{call, config, Api, ClientCheck, TokenServer};

const CREDENTIAL: &str =
    "grant = \"client_credentials\"\nclient_id = \"c\"\nclient_secret = \"s\"\nrequired = true\n";

/// `store` in front of a client_credentials credential: two countersigns
/// on it, the second taking the token the first fetched and published.
async fn round_trip(redis: &RedisServer, store: &str, prefix: &str) {
    let tokens = TokenServer::start(&[("c", ClientCheck::Basic("s".into()))], 300, &[]).await;
    let api = Api::start(&tokens).await;
    let toml = format!("{store}{}", config(&tokens, &api, CREDENTIAL));
    let a = Sidecar::start(&toml).await;
    assert_eq!(call(&a, "/a").await.status, 200);
    let b = Sidecar::start(&toml).await;
    assert_eq!(call(&b, "/b").await.status, 200);
    assert_eq!(
        tokens.request_count(),
        1,
        "b read the token a published instead of fetching its own"
    );
    let keys =
        String::from_utf8(redis.cli(&["--scan", "--pattern", &format!("{prefix}*")])).unwrap();
    assert!(
        keys.contains(&format!("{prefix}token:grant:bank")),
        "{keys}"
    );
}

async fn probe(sidecar: &Sidecar, path: &str) -> Answer {
    let req = http::Request::get(path)
        .header("host", "admin")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    send(sidecar.probes(), req).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rediss_url_with_a_ca_file_and_a_client_certificate() {
    let ca = TestCa::new();
    let redis = tokio::task::block_in_place(|| RedisServer::start_tls(&ca));
    let files = redis.tls_files();
    let store = format!(
        "[store]\nurl = \"{}\"\nca_file = \"{}\"\nclient_cert = \"{}\"\nclient_key = \"{}\"\nkey_prefix = \"cs-tls-url:\"\ntimeout = \"1s\"\n",
        redis.tls_url(),
        files.ca.display(),
        files.client_cert.display(),
        files.client_key.display(),
    );
    round_trip(&redis, &store, "cs-tls-url:").await;
    // The connections came over TLS (the unix socket is only the test's).
    let clients = String::from_utf8(redis.cli(&["CLIENT", "LIST"])).unwrap();
    assert!(
        clients.lines().any(|l| l.contains("addr=127.0.0.1:")),
        "{clients}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acl_user_allowed_only_the_documented_commands() {
    let redis = RedisServer::start();
    redis.documented_acl_user("cs-app", "acl-pass-3f9a", "cs-acl:");
    let store = format!(
        "[store]\nurl = \"{}\"\nusername = \"cs-app\"\npassword = \"acl-pass-3f9a\"\nkey_prefix = \"cs-acl:\"\ntimeout = \"1s\"\n",
        redis.url()
    );
    round_trip(&redis, &store, "cs-acl:").await;
    let clients = String::from_utf8(redis.cli(&["CLIENT", "LIST"])).unwrap();
    assert!(clients.contains("user=cs-app"), "{clients}");
    let denied = String::from_utf8(redis.cli(&["ACL", "LOG"])).unwrap();
    assert!(denied.trim().is_empty(), "commands refused: {denied}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_names_the_store_and_not_the_password() {
    let redis = RedisServer::start();
    redis.documented_acl_user("cs-app", "acl-pass-3f9a", "cs-acl:");
    let tokens = TokenServer::start(&[("c", ClientCheck::Basic("s".into()))], 300, &[]).await;
    let api = Api::start(&tokens).await;
    let wrong = "wrong-pass-77c1";
    let store = format!(
        "[store]\nurl = \"{}\"\nusername = \"cs-app\"\npassword = \"{wrong}\"\nkey_prefix = \"cs-acl:\"\ntimeout = \"1s\"\n",
        redis.url()
    );
    let toml = format!("{store}{}", config(&tokens, &api, CREDENTIAL));
    let sidecar = Sidecar::start(&toml).await;
    let ready = eventually_async("/readyz says why", Duration::from_secs(10), || async {
        let ready = probe(&sidecar, "/readyz").await;
        match ready.status.as_u16() {
            503 if ready.body.contains("shared token store") => Ok(ready.body),
            _ => Err(ready.body),
        }
    })
    .await;
    assert!(
        ready.contains(&format!(
            "cannot reach the shared token store {}",
            redis.url()
        )),
        "{ready}"
    );
    assert!(
        ready.contains("Password authentication failed"),
        "the cause is said: {ready}"
    );
    assert!(!ready.contains(wrong), "{ready}");
    assert!(!ready.contains("acl-pass-3f9a"), "{ready}");
    assert_eq!(
        tokens.request_count(),
        0,
        "nothing fetched outside the lease"
    );
}
