//! What the app may ask of an authorized session on the control listener:
//! `GET /oauth2/NAME/sessions/ID`, its facts (scope, times, and the token
//! response fields `session_facts` selects, such as Korea open banking's
//! `user_seq_no`), kept with the stored grant so that they survive a
//! restart and read the same on every replica; never a token. And
//! `DELETE`, which revokes the refresh token at the provider (RFC 7009)
//! and ends the session, after which the app's calls are refused.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::*;
use crate::oauth2::Api;

const FACTS: &str = "session_facts = [\"user_seq_no\", \"client_use_code\"]\n";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The sessions config with `keys` added to the credential.
fn with_keys(tokens: &TokenServer, upstream: &Upstream, keys: &str) -> String {
    config(tokens, upstream).replace("token_store =", &format!("{keys}token_store ="))
}

async fn servers() -> (TokenServer, Upstream) {
    let tokens = TokenServer::start(
        &[("gmo-client", ClientCheck::Basic("gmo-secret".into()))],
        300,
        &[],
    )
    .await;
    (tokens, Upstream::http().await)
}

async fn in_folder(toml: &str) -> Sidecar {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sessions")).unwrap();
    Sidecar::start_in(dir, toml).await
}

/// `GET` (or `DELETE`) on the session, from the app.
async fn session(sidecar: &Sidecar, method: &str, id: &str) -> Answer {
    admin_with(
        sidecar,
        method,
        &format!("/oauth2/bank/sessions/{id}"),
        None,
    )
    .await
}

fn json(answer: &Answer) -> Value {
    assert_eq!(
        answer.header("content-type"),
        Some("application/json"),
        "{answer:?}"
    );
    serde_json::from_str(&answer.body).unwrap()
}

/// No token the provider issued, and no client secret, is in `text`.
fn holds_no_secret(tokens: &TokenServer, text: &str) {
    for token in tokens.issued().iter().chain(tokens.refresh_tokens().iter()) {
        assert!(!text.contains(token.as_str()), "{token} in {text}");
    }
    assert!(!text.contains("gmo-secret"), "{text}");
    for name in ["access_token", "refresh_token", "id_token"] {
        assert!(!text.contains(name), "{name} in {text}");
    }
}

#[tokio::test]
async fn facts_show_the_selected_fields_survive_a_restart_and_follow_renewals() {
    let (tokens, upstream) = servers().await;
    // Not selected: never shown.
    tokens.set_field("internal_note", "not for the app".into());
    let toml = with_keys(&tokens, &upstream, FACTS);
    let sidecar = in_folder(&toml).await;
    let before = now();
    let done = authorize(&sidecar, &tokens, "alice", "code-f").await;
    assert_eq!(done.status, 200, "{}", done.body);
    let access = tokens.issued().last().unwrap().clone();
    let seq_no = tokens.user_seq_no(&access).unwrap();

    let answer = session(&sidecar, "GET", "alice").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    holds_no_secret(&tokens, &answer.body);
    assert!(!answer.body.contains("not for the app"), "{}", answer.body);
    let facts = json(&answer);
    assert_eq!(facts["credential"], "bank");
    assert_eq!(facts["session"], "alice");
    assert_eq!(facts["authorized"], true);
    assert_eq!(facts["scope"], "private:account private:virtual-account");
    assert_eq!(facts["facts"], serde_json::json!({ "user_seq_no": seq_no }));
    let authorized_at = facts["authorized_at"].as_u64().unwrap();
    assert!((before..=now()).contains(&authorized_at), "{facts}");
    assert_eq!(facts["renewed_at"], Value::Null);
    let left = facts["token_expires_in"].as_u64().unwrap();
    assert!(left <= 300, "{facts}");

    // An id percent-encoded by the client is the same session.
    let encoded = session(&sidecar, "GET", "%61lice").await;
    assert_eq!(json(&encoded)["facts"], facts["facts"]);
    let unknown = session(&sidecar, "GET", "mallory").await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert!(
        unknown.body.contains("`mallory` is not authorized"),
        "{}",
        unknown.body
    );
    let bad = session(&sidecar, "GET", "..%2Fx").await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    let put = session(&sidecar, "PUT", "alice").await;
    assert_eq!(put.status, 405);
    assert_eq!(put.header("allow"), Some("GET, DELETE"));

    // After a restart the facts are read from the session's file; this
    // process holds no access token for it until the app calls.
    sidecar.app.shutdown().await;
    let dir = sidecar.dir;
    let again = Sidecar::start_in(dir, &toml).await;
    let restarted = json(&session(&again, "GET", "alice").await);
    assert_eq!(restarted["facts"], facts["facts"]);
    assert_eq!(restarted["authorized_at"], authorized_at);
    assert_eq!(restarted["scope"], facts["scope"]);
    assert_eq!(restarted["token_expires_in"], Value::Null);

    // The renewal's answer carries another selected field: kept too.
    tokens.set_field("client_use_code", "F000000001".into());
    assert_eq!(call(&again, Some("alice")).await.status, 200);
    let renewed = session(&again, "GET", "alice").await;
    holds_no_secret(&tokens, &renewed.body);
    let renewed = json(&renewed);
    assert_eq!(renewed["facts"]["user_seq_no"], seq_no.as_str());
    assert_eq!(renewed["facts"]["client_use_code"], "F000000001");
    assert_eq!(renewed["authorized_at"], authorized_at);
    assert!(renewed["renewed_at"].as_u64().unwrap() >= authorized_at);
    assert!(renewed["token_expires_in"].as_u64().is_some(), "{renewed}");
    assert!(!tokens.reuse_detected());

    assert_eq!(
        std::fs::read_dir(again.dir.path().join("sessions"))
            .unwrap()
            .count(),
        1
    );

    // Without a revocation_url, ending the session is local.
    let ended = session(&again, "DELETE", "alice").await;
    assert_eq!(ended.status, 200, "{}", ended.body);
    let ended = json(&ended);
    assert_eq!(ended["ended"], true);
    assert_eq!(ended["revocation"], "not_offered");
    assert!(tokens.revocations().is_empty());
    assert_eq!(
        std::fs::read_dir(again.dir.path().join("sessions"))
            .unwrap()
            .count(),
        0,
        "the session's file is gone"
    );
}

#[tokio::test]
async fn delete_revokes_at_the_provider_and_the_next_call_is_not_authorized() {
    let (tokens, upstream) = servers().await;
    let keys = format!("{FACTS}revocation_url = \"{}\"\n", tokens.revocation_url());
    let sidecar = in_folder(&with_keys(&tokens, &upstream, &keys)).await;
    for (who, code) in [("alice", "code-a"), ("bob", "code-b")] {
        let done = authorize(&sidecar, &tokens, who, code).await;
        assert_eq!(done.status, 200, "{}", done.body);
    }
    let alice_access = tokens.issued()[0].clone();
    assert_eq!(call(&sidecar, Some("alice")).await.status, 200);

    let ended = session(&sidecar, "DELETE", "alice").await;
    assert_eq!(ended.status, 200, "{}", ended.body);
    assert_eq!(ended.header("cache-control"), Some("no-store"));
    holds_no_secret(&tokens, &ended.body);
    let ended = json(&ended);
    assert_eq!(ended["session"], "alice");
    assert_eq!(ended["revocation"], "revoked");
    assert_eq!(ended["revocation_error"], Value::Null);
    // RFC 7009: the refresh token of alice's grant, with the client's
    // authentication (Basic, as at the token endpoint).
    let revocations = tokens.revocations();
    assert_eq!(revocations.len(), 1);
    let sent = &revocations[0];
    assert_eq!(sent.form["token_type_hint"], "refresh_token");
    let revoked = &sent.form["token"];
    assert!(revoked.starts_with("rt-"), "{revoked}");
    assert_eq!(
        tokens.user_seq_no(revoked),
        tokens.user_seq_no(&alice_access),
        "alice's grant"
    );
    assert!(sent
        .authorization
        .as_deref()
        .is_some_and(|a| a.starts_with("Basic ")));
    assert!(!tokens.refresh_live(revoked));

    let refused = call(&sidecar, Some("alice")).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(
        refused.header("x-countersign-error"),
        Some("session-unauthorized")
    );
    assert!(
        refused.body.contains("`alice` is not authorized"),
        "{}",
        refused.body
    );
    assert_eq!(session(&sidecar, "GET", "alice").await.status, 404);
    assert_eq!(session(&sidecar, "DELETE", "alice").await.status, 404);
    assert_eq!(
        call(&sidecar, Some("bob")).await.status,
        200,
        "bob is untouched"
    );

    // The provider fails: reported, and the session is ended here anyway.
    tokens.set_revocation_down(true);
    let ended = json(&session(&sidecar, "DELETE", "bob").await);
    assert_eq!(ended["ended"], true);
    assert_eq!(ended["revocation"], "failed");
    let why = ended["revocation_error"].as_str().unwrap();
    assert!(
        why.contains("503") && why.contains("temporarily_unavailable"),
        "{why}"
    );
    assert_eq!(call(&sidecar, Some("bob")).await.status, 403);
    assert!(!tokens.reuse_detected(), "no revoked token was presented");
}

/// With `authorize_secret`, reading and ending a session need it (or the
/// control secret), as starting one does.
#[tokio::test]
async fn with_an_authorize_secret_only_the_app_reads_or_ends_a_session() {
    let (tokens, upstream) = servers().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sessions")).unwrap();
    std::fs::write(dir.path().join("start-secret"), "s3cret-for-the-app-only\n").unwrap();
    let keys = format!("{FACTS}authorize_secret = \"${{file:DIR/start-secret}}\"\n");
    let sidecar = Sidecar::start_in(dir, &with_keys(&tokens, &upstream, &keys)).await;
    let to = |method: &'static str, authorization: Option<&'static str>| {
        let mut req = http::Request::builder()
            .method(method)
            .uri("/oauth2/bank/sessions/alice")
            .header("host", "admin");
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        send(
            sidecar.control(),
            req.body(http_body_util::Full::new(bytes::Bytes::new()))
                .unwrap(),
        )
    };
    for method in ["GET", "DELETE"] {
        let refused = to(method, None).await;
        assert_eq!(refused.status, 401, "{}", refused.body);
        assert_eq!(refused.header("www-authenticate"), Some("Bearer"));
        let refused = to(method, Some("Bearer s3cret-for-the-app")).await;
        assert_eq!(refused.status, 401, "{}", refused.body);
        // Admitted: nothing is stored for alice.
        let unknown = to(method, Some("Bearer s3cret-for-the-app-only")).await;
        assert_eq!(unknown.status, 404, "{}", unknown.body);
    }
}

/// 32 bytes, base64: the store_key.
const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// Replicas on one Redis read the same facts: authorized on A, read on B
/// and C, renewed by B, which A then reports. Redis holds them sealed.
/// Ended on A, the session is refused on B as soon as B finds out (the
/// provider refuses B's access token, and B's renewal finds no grant).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facts_read_the_same_on_every_replica_and_an_end_reaches_them_all() {
    let redis = RedisServer::start();
    let (tokens, _upstream) = servers().await;
    // An API that takes only live tokens: a revoked grant's are refused.
    let api = Api::start(&tokens).await;
    let store = format!(
        "[store]\nurl = \"{}\"\nkey_prefix = \"cs-test:\"\nstore_key = \"{KEY}\"\n",
        redis.url()
    );
    let keys = format!(
        "{FACTS}revocation_url = \"{}\"\nwait_for_token = \"1s\"\n",
        tokens.revocation_url()
    );
    let upstream = Upstream::http().await;
    let toml = format!("{store}{}", with_keys(&tokens, &upstream, &keys))
        .replace("token_store = \"DIR/sessions\"\n", "")
        .replace(&upstream.http_url(), &api.url());
    let (a, b, c) = (
        Sidecar::start(&toml).await,
        Sidecar::start(&toml).await,
        Sidecar::start(&toml).await,
    );
    let done = authorize(&a, &tokens, "alice", "code-r").await;
    assert_eq!(done.status, 200, "{}", done.body);
    let seq_no = tokens.user_seq_no(&tokens.issued()[0]).unwrap();

    let on_a = json(&session(&a, "GET", "alice").await);
    assert_eq!(on_a["facts"]["user_seq_no"], seq_no.as_str());
    for other in [&b, &c] {
        let there = json(&session(other, "GET", "alice").await);
        for same in [
            "facts",
            "scope",
            "authorized_at",
            "renewed_at",
            "authorized",
        ] {
            assert_eq!(there[same], on_a[same], "{same}");
        }
        assert_eq!(there["token_expires_in"], Value::Null, "holds no token yet");
    }
    // B opens the session from the store and renews it; A reads that.
    tokens.set_field("client_use_code", "F000000002".into());
    assert_eq!(call(&b, Some("alice")).await.status, 200);
    let renewed = json(&session(&a, "GET", "alice").await);
    assert!(renewed["renewed_at"].as_u64().is_some(), "{renewed}");
    assert_eq!(renewed["facts"]["client_use_code"], "F000000002");
    assert_eq!(renewed["facts"]["user_seq_no"], seq_no.as_str());
    // Sealed in Redis: no fact, no token in the clear.
    let keys = String::from_utf8(redis.cli(&["--scan", "--pattern", "cs-test:*"])).unwrap();
    for key in keys.lines() {
        let kind = String::from_utf8(redis.cli(&["TYPE", key])).unwrap();
        let read = if kind.trim() == "hash" {
            "HGETALL"
        } else {
            "GET"
        };
        let value = String::from_utf8_lossy(&redis.cli(&[read, key])).into_owned();
        assert!(!value.contains(&seq_no), "{key}: {value}");
        assert!(!value.contains("F000000002"), "{key}: {value}");
    }

    // Ended on C (which never served it): revoked at the provider.
    let ended = json(&session(&c, "DELETE", "alice").await);
    assert_eq!(ended["revocation"], "revoked");
    for replica in [&a, &b, &c] {
        assert_eq!(session(replica, "GET", "alice").await.status, 404);
    }
    // B still holds an access token, which the provider now refuses; its
    // renewal finds the grant gone, and from then on B refuses the session.
    let refused = eventually_async(
        "B refuses the ended session",
        std::time::Duration::from_secs(10),
        || async {
            let answer = call(&b, Some("alice")).await;
            match answer.status.as_u16() {
                403 => Ok(answer),
                _ => Err(format!("{} {}", answer.status, answer.body)),
            }
        },
    )
    .await;
    assert_eq!(
        refused.header("x-countersign-error"),
        Some("session-unauthorized")
    );
    assert!(
        !tokens.reuse_detected(),
        "no revoked refresh token was presented"
    );
}
