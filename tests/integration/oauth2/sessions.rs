//! The authorization-code flow with per-user sessions (the GMO Aozora
//! appliance's job): authorize with `state` and PKCE on the admin listener,
//! exchange the code, then each request's session header picks that user's
//! token, is stripped, and an unknown session is refused.

use super::{ClientCheck, TokenServer};
use crate::harness::*;

const REDIRECT: &str = "https://app.example.test/oauth2/callback";

fn config(tokens: &TokenServer, upstream: &Upstream) -> String {
    format!(
        r#"
[proxy]
listen = "127.0.0.1:0"

[credential.bank]
type = "oauth2"
grant = "authorization_code"
token_url = "{}"
authorize_url = "https://auth.bank.test/authorize?prompt=consent"
redirect_uri = "{REDIRECT}"
client_id = "gmo-client"
client_secret = "gmo-secret"
scope = "private:account private:virtual-account"
token_store = "DIR/sessions"

[[route]]
name = "bank"
hosts = ["bank.test"]
upstream = "{}"
credential = "bank"
"#,
        tokens.url(),
        upstream.http_url()
    )
}

async fn admin(sidecar: &Sidecar, path: &str) -> Answer {
    let req = http::Request::get(path)
        .header("host", "admin")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    send(sidecar.app.admin_addr(), req).await
}

fn query_param(url: &str, name: &str) -> String {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    query
        .split('&')
        .find_map(|p| p.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {url}"))
        .to_string()
}

/// Authorizes `session` the way a person's browser would: follow the
/// redirect to the provider, consent (the provider issues `code`), come back.
async fn authorize(sidecar: &Sidecar, tokens: &TokenServer, session: &str, code: &str) -> Answer {
    let start = admin(
        sidecar,
        &format!("/oauth2/bank/authorize?session={session}"),
    )
    .await;
    assert_eq!(start.status, 302, "{start:?}");
    let location = start.header("location").unwrap().to_string();
    assert!(
        location.starts_with("https://auth.bank.test/authorize?prompt=consent&"),
        "{location}"
    );
    assert_eq!(query_param(&location, "response_type"), "code");
    assert_eq!(query_param(&location, "client_id"), "gmo-client");
    assert_eq!(query_param(&location, "code_challenge_method"), "S256");
    assert_eq!(
        query_param(&location, "scope"),
        "private%3Aaccount+private%3Avirtual-account"
    );
    assert_eq!(
        query_param(&location, "redirect_uri"),
        "https%3A%2F%2Fapp.example.test%2Foauth2%2Fcallback"
    );
    let state = query_param(&location, "state");
    tokens.add_code(code, &query_param(&location, "code_challenge"), REDIRECT);
    admin(
        sidecar,
        &format!("/oauth2/bank/callback?code={code}&state={state}"),
    )
    .await
}

async fn call(sidecar: &Sidecar, session: Option<&str>) -> Answer {
    let mut req = get("http://bank.test/accounts");
    if let Some(s) = session {
        req.headers_mut()
            .insert("x-countersign-session", s.parse().unwrap());
    }
    send(sidecar.proxy(), req).await
}

async fn setup() -> (TokenServer, Upstream, Sidecar) {
    let tokens = TokenServer::start(
        &[("gmo-client", ClientCheck::Basic("gmo-secret".into()))],
        300,
        &[],
    )
    .await;
    let upstream = Upstream::http().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sessions")).unwrap();
    let sidecar = Sidecar::start_in(dir, &config(&tokens, &upstream)).await;
    (tokens, upstream, sidecar)
}

#[tokio::test]
async fn each_session_gets_its_own_token_and_the_header_is_stripped() {
    let (tokens, upstream, sidecar) = setup().await;
    let done = authorize(&sidecar, &tokens, "alice", "code-alice").await;
    assert_eq!(done.status, 200, "{}", done.body);
    let alice_token = tokens.issued().last().unwrap().clone();
    assert_eq!(
        authorize(&sidecar, &tokens, "bob", "code-bob").await.status,
        200
    );
    let bob_token = tokens.issued().last().unwrap().clone();
    assert_ne!(alice_token, bob_token);

    assert_eq!(call(&sidecar, Some("alice")).await.status, 200);
    let got = upstream.last();
    assert_eq!(
        got.header("authorization"),
        Some(&*format!("Bearer {alice_token}"))
    );
    assert!(
        got.header("x-countersign-session").is_none(),
        "the session header must not go upstream"
    );
    assert_eq!(call(&sidecar, Some("bob")).await.status, 200);
    assert_eq!(
        upstream.last().header("authorization"),
        Some(&*format!("Bearer {bob_token}"))
    );
    // The code exchange presented the PKCE verifier and the redirect URI.
    let exchange = tokens
        .requests()
        .into_iter()
        .find(|r| r.form.get("grant_type").map(String::as_str) == Some("authorization_code"))
        .unwrap();
    assert_eq!(
        exchange.form.get("code_verifier").map(String::len),
        Some(43)
    );
}

#[tokio::test]
async fn unknown_or_missing_sessions_are_refused_never_served_with_another_token() {
    let (tokens, upstream, sidecar) = setup().await;
    assert_eq!(
        authorize(&sidecar, &tokens, "alice", "code-a").await.status,
        200
    );
    let unknown = call(&sidecar, Some("mallory")).await;
    assert_eq!(unknown.status, 403);
    assert_eq!(
        unknown.header("x-countersign-error"),
        Some("session-unauthorized")
    );
    assert!(
        unknown
            .body
            .contains("/oauth2/bank/authorize?session=mallory"),
        "{}",
        unknown.body
    );
    let missing = call(&sidecar, None).await;
    assert_eq!(missing.status, 400);
    assert!(
        missing.body.contains("x-countersign-session"),
        "{}",
        missing.body
    );
    let bad = call(&sidecar, Some("../../etc/passwd")).await;
    assert_eq!(bad.status, 400);
    assert!(upstream.received().is_empty());
}

#[tokio::test]
async fn state_is_checked_and_used_once() {
    let (tokens, _upstream, sidecar) = setup().await;
    let forged = admin(&sidecar, "/oauth2/bank/callback?code=x&state=forged").await;
    assert_eq!(forged.status, 400);
    assert!(forged.body.contains("state"), "{}", forged.body);

    let start = admin(&sidecar, "/oauth2/bank/authorize?session=carol").await;
    let location = start.header("location").unwrap().to_string();
    let state = query_param(&location, "state");
    tokens.add_code(
        "code-c",
        &query_param(&location, "code_challenge"),
        REDIRECT,
    );
    let ok = admin(
        &sidecar,
        &format!("/oauth2/bank/callback?code=code-c&state={state}"),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    tokens.add_code(
        "code-c2",
        &query_param(&location, "code_challenge"),
        REDIRECT,
    );
    let replay = admin(
        &sidecar,
        &format!("/oauth2/bank/callback?code=code-c2&state={state}"),
    )
    .await;
    assert_eq!(replay.status, 400, "a state is good for one callback only");
    let denied = admin(
        &sidecar,
        "/oauth2/bank/callback?error=access_denied&state=x",
    )
    .await;
    assert_eq!(denied.status, 400);
    assert!(denied.body.contains("access_denied"));
}

#[tokio::test]
async fn sessions_survive_a_restart_through_their_stored_refresh_tokens() {
    let (tokens, upstream, sidecar) = setup().await;
    assert_eq!(
        authorize(&sidecar, &tokens, "alice", "code-r").await.status,
        200
    );
    let first = tokens.issued().len();
    sidecar.app.shutdown().await;
    let dir = sidecar.dir;
    let store = std::fs::read_dir(dir.path().join("sessions"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&store).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let again = Sidecar::start_in(dir, &config(&tokens, &upstream)).await;
    let answer = call(&again, Some("alice")).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    // A new access token came from the stored (and now rotated) refresh token.
    assert_eq!(tokens.issued().len(), first + 1);
    assert!(!tokens.reuse_detected());
    assert_eq!(
        upstream.last().header("authorization"),
        Some(&*format!("Bearer {}", tokens.issued().last().unwrap()))
    );
}

/// Apps written against the GMO appliance name the session in a
/// `sessionId` query parameter; with `session_param` countersign takes it
/// from there and removes it from the upstream URL.
#[tokio::test]
async fn a_session_query_parameter_works_like_the_appliance() {
    let tokens = TokenServer::start(
        &[("gmo-client", ClientCheck::Basic("gmo-secret".into()))],
        300,
        &[],
    )
    .await;
    let upstream = Upstream::http().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sessions")).unwrap();
    let toml = config(&tokens, &upstream).replace(
        "token_store =",
        "session_param = \"sessionId\"\ntoken_store =",
    );
    let sidecar = Sidecar::start_in(dir, &toml).await;
    assert_eq!(
        authorize(&sidecar, &tokens, "alice", "code-q").await.status,
        200
    );
    let token = tokens.issued().last().unwrap().clone();
    let answer = send(
        sidecar.proxy(),
        get("http://bank.test/corporation/v1/accounts?sessionId=alice&page=2"),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let got = upstream.last();
    assert_eq!(got.uri.to_string(), "/corporation/v1/accounts?page=2");
    assert_eq!(
        got.header("authorization"),
        Some(&*format!("Bearer {token}"))
    );
    // Named twice (header and parameter, or the parameter twice, one of them
    // percent-encoded): refused, never resolved by guessing.
    let received = upstream.received().len();
    let both = http::Request::get("http://bank.test/corporation/v1/accounts?sessionId=alice")
        .header("x-countersign-session", "alice")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    for req in [
        both,
        get("http://bank.test/corporation/v1/accounts?sessionId=alice&session%49d=bob"),
    ] {
        let answer = send(sidecar.proxy(), req).await;
        assert_eq!(answer.status, 400, "{}", answer.body);
        assert!(answer.body.contains("exactly one"), "{}", answer.body);
    }
    assert_eq!(upstream.received().len(), received, "nothing was forwarded");
}
