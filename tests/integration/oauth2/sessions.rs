//! The authorization-code flow with per-user sessions (the GMO Aozora
//! appliance's job): the app gets a ticket, the browser starts with it and
//! gets a binding cookie, the provider's callback is checked for `state`,
//! PKCE and that cookie; then each request's session header picks that
//! user's token, is stripped, and an unknown session is refused.

use super::{ClientCheck, TokenServer};
use crate::harness::*;

mod appliance;
mod facts;
mod intent;
mod listeners;
mod migrate;
mod processes;
mod replicas;

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
    admin_with(sidecar, "GET", path, None).await
}

async fn admin_with(sidecar: &Sidecar, method: &str, path: &str, cookie: Option<&str>) -> Answer {
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "admin");
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let req = req
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    // The browser's endpoints on its listener, the probes on theirs, the
    // app's on the controls'.
    let browsers = path.contains("/start") || path.contains("/callback");
    let probes = ["/metrics", "/healthz", "/readyz"].contains(&path);
    let to = if browsers {
        sidecar.browser()
    } else if probes {
        sidecar.probes()
    } else {
        sidecar.control()
    };
    send(to, req).await
}

fn query_param(url: &str, name: &str) -> String {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    query
        .split('&')
        .find_map(|p| p.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {url}"))
        .to_string()
}

/// Step 1, the app: a ticket for `session`; returns the browser's start path.
async fn ticket(sidecar: &Sidecar, session: &str) -> String {
    let answer = admin_with(
        sidecar,
        "POST",
        &format!("/oauth2/bank/authorize?session={session}"),
        None,
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    let json: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(json["session"], session);
    assert_eq!(json["expires_in"], 600);
    json["start"].as_str().unwrap().to_string()
}

/// A browser that has started an authorization: where the provider sent
/// it, and the cookie (`name=value`) it holds.
struct Browser {
    location: String,
    cookie: String,
}

/// Step 2, the browser: follows the start path to the provider.
async fn start(sidecar: &Sidecar, start_path: &str) -> Browser {
    let started = admin(sidecar, start_path).await;
    assert_eq!(started.status, 302, "{started:?}");
    let location = started.header("location").unwrap().to_string();
    let set_cookie = started.header("set-cookie").unwrap().to_string();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"),
        "{set_cookie}"
    );
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let state = query_param(&location, "state");
    assert!(
        cookie.starts_with(&format!("countersign-auth-{state}=")),
        "{cookie}"
    );
    Browser { location, cookie }
}

/// Authorizes `session` the way the app and a person's browser would:
/// ticket, start, the provider (which issues `code` on consent), callback.
async fn authorize(sidecar: &Sidecar, tokens: &TokenServer, session: &str, code: &str) -> Answer {
    let browser = start(sidecar, &ticket(sidecar, session).await).await;
    let location = &browser.location;
    assert!(
        location.starts_with("https://auth.bank.test/authorize?prompt=consent&"),
        "{location}"
    );
    assert_eq!(query_param(location, "response_type"), "code");
    assert_eq!(query_param(location, "client_id"), "gmo-client");
    assert_eq!(query_param(location, "code_challenge_method"), "S256");
    assert_eq!(
        query_param(location, "scope"),
        "private%3Aaccount+private%3Avirtual-account"
    );
    assert_eq!(
        query_param(location, "redirect_uri"),
        "https%3A%2F%2Fapp.example.test%2Foauth2%2Fcallback"
    );
    let state = query_param(location, "state");
    tokens.add_code(code, &query_param(location, "code_challenge"), REDIRECT);
    admin_with(
        sidecar,
        "GET",
        &format!("/oauth2/bank/callback?code={code}&state={state}"),
        Some(&format!("other=1; {}", browser.cookie)),
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
    setup_with("").await
}

/// `keys` are added to the credential; its folder holds `start-secret`.
async fn setup_with(keys: &str) -> (TokenServer, Upstream, Sidecar) {
    let tokens = TokenServer::start(
        &[("gmo-client", ClientCheck::Basic("gmo-secret".into()))],
        300,
        &[],
    )
    .await;
    let upstream = Upstream::http().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sessions")).unwrap();
    std::fs::write(dir.path().join("start-secret"), "s3cret-for-the-app-only\n").unwrap();
    let toml = config(&tokens, &upstream).replace("token_store =", &format!("{keys}token_store ="));
    let sidecar = Sidecar::start_in(dir, &toml).await;
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
            .contains("POST /oauth2/bank/authorize?session=mallory"),
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

/// What is logged while a request is handled names that request (method,
/// host, route, and the user session once the credential has read it), so
/// a warning can be told apart from another request's.
#[tokio::test]
async fn lines_logged_inside_a_request_name_its_method_host_route_and_session() {
    let capture = crate::trace_capture::TraceCapture::install();
    let (_tokens, _upstream, sidecar) = setup().await;
    assert_eq!(call(&sidecar, Some("mallory")).await.status, 403);
    let text = capture.text();
    let failed = text
        .lines()
        .find(|l| l.contains("request failed"))
        .unwrap_or_else(|| panic!("no `request failed` line in:\n{text}"));
    assert!(
        failed.contains("http{method=GET host=bank.test route=bank session=mallory}"),
        "{failed}"
    );
}

#[tokio::test]
async fn state_is_checked_and_used_once() {
    let (tokens, _upstream, sidecar) = setup().await;
    let forged = admin(&sidecar, "/oauth2/bank/callback?code=x&state=forged").await;
    assert_eq!(forged.status, 400);
    assert!(forged.body.contains("state"), "{}", forged.body);

    let browser = start(&sidecar, &ticket(&sidecar, "carol").await).await;
    let state = query_param(&browser.location, "state");
    let challenge = query_param(&browser.location, "code_challenge");
    tokens.add_code("code-c", &challenge, REDIRECT);
    let callback = format!("/oauth2/bank/callback?code=code-c&state={state}");
    let ok = admin_with(&sidecar, "GET", &callback, Some(&browser.cookie)).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(
        ok.header("set-cookie")
            .is_some_and(|c| c.contains("Max-Age=0")),
        "the cookie is cleared"
    );
    tokens.add_code("code-c2", &challenge, REDIRECT);
    let callback = format!("/oauth2/bank/callback?code=code-c2&state={state}");
    let replay = admin_with(&sidecar, "GET", &callback, Some(&browser.cookie)).await;
    assert_eq!(replay.status, 400, "a state is good for one callback only");
    let denied = admin(
        &sidecar,
        "/oauth2/bank/callback?error=access_denied&state=x",
    )
    .await;
    assert_eq!(denied.status, 400);
    assert!(denied.body.contains("access_denied"));
}

/// A provider link passed to another browser cannot bind that person's
/// account to the session: the callback needs the cookie of the browser
/// that started. Tickets are one-time, and only the app (POST) gets one.
#[tokio::test]
async fn only_the_browser_that_started_can_finish_and_tickets_are_one_time() {
    let (tokens, upstream, sidecar) = setup().await;
    let get = admin(&sidecar, "/oauth2/bank/authorize?session=alice").await;
    assert_eq!(get.status, 405, "a link cannot start an authorization");
    assert_eq!(get.header("allow"), Some("POST"));

    let start_path = ticket(&sidecar, "alice").await;
    let browser = start(&sidecar, &start_path).await;
    let again = admin(&sidecar, &start_path).await;
    assert_eq!(again.status, 400, "{}", again.body);
    assert!(again.body.contains("ticket"), "{}", again.body);

    // Mallory forwards the provider link; the victim consents in their own
    // browser, which has no cookie (or Mallory's cookie for another flow).
    let state = query_param(&browser.location, "state");
    tokens.add_code(
        "code-v",
        &query_param(&browser.location, "code_challenge"),
        REDIRECT,
    );
    let callback = format!("/oauth2/bank/callback?code=code-v&state={state}");
    let refused = admin(&sidecar, &callback).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused.body.contains("this browser did not start"),
        "{}",
        refused.body
    );
    // The state is spent by that attempt: not even the right cookie helps now.
    let late = admin_with(&sidecar, "GET", &callback, Some(&browser.cookie)).await;
    assert_eq!(late.status, 400, "{}", late.body);
    assert!(late.body.contains("state"), "{}", late.body);

    // Another flow's cookie, or the right cookie name with a wrong value,
    // is refused the same way (each attempt on a fresh authorization).
    let mallorys = start(&sidecar, &ticket(&sidecar, "mallory").await).await;
    for right_name in [false, true] {
        let victim = start(&sidecar, &ticket(&sidecar, "alice").await).await;
        let state = query_param(&victim.location, "state");
        let cookie = match right_name {
            false => mallorys.cookie.clone(),
            true => format!("countersign-auth-{state}=not-the-nonce"),
        };
        let callback = format!("/oauth2/bank/callback?code=code-v&state={state}");
        let refused = admin_with(&sidecar, "GET", &callback, Some(&cookie)).await;
        assert_eq!(refused.status, 400, "{}", refused.body);
        assert!(
            refused.body.contains("this browser did not start"),
            "{}",
            refused.body
        );
    }
    assert_eq!(tokens.request_count(), 0, "no code was exchanged");
    let unknown = call(&sidecar, Some("alice")).await;
    assert_eq!(unknown.status, 403, "alice is not authorized");
    assert!(upstream.received().is_empty());
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
    let (tokens, upstream, sidecar) = setup_with("session_param = \"sessionId\"\n").await;
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

/// With `authorize_secret`, only a caller that holds it (the app) gets a
/// ticket; anyone else who reaches the admin listener gets 401.
#[tokio::test]
async fn with_an_authorize_secret_only_the_app_can_start() {
    let (_tokens, _upstream, sidecar) =
        setup_with("authorize_secret = \"${file:DIR/start-secret}\"\n").await;
    let path = "/oauth2/bank/authorize?session=alice";
    let post = |authorization: Option<&'static str>| {
        let mut req = http::Request::post(path).header("host", "admin");
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        send(
            sidecar.control(),
            req.body(http_body_util::Full::new(bytes::Bytes::new()))
                .unwrap(),
        )
    };
    for wrong in [
        None,
        Some("Bearer s3cret-for-the-app"),
        Some("s3cret-for-the-app-only"),
    ] {
        let refused = post(wrong).await;
        assert_eq!(refused.status, 401, "{wrong:?}: {}", refused.body);
        assert_eq!(refused.header("www-authenticate"), Some("Bearer"));
        assert!(!refused.body.contains("s3cret"), "{}", refused.body);
    }
    let ok = post(Some("Bearer s3cret-for-the-app-only")).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let json: serde_json::Value = serde_json::from_str(&ok.body).unwrap();
    let browser = start(&sidecar, json["start"].as_str().unwrap()).await;
    assert!(browser
        .location
        .starts_with("https://auth.bank.test/authorize"));
}

/// With `[store]`, a session authorized through one countersign is served
/// by another one that shares the Redis: it opens the session from the
/// refresh token stored there on first use. (Tickets and `state` are still
/// kept by the countersign that issued them.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_shared_store_a_session_authorized_on_one_replica_is_served_by_another() {
    let redis = RedisServer::start();
    let tokens = TokenServer::start(
        &[("gmo-client", ClientCheck::Basic("gmo-secret".into()))],
        300,
        &[],
    )
    .await;
    let upstream = Upstream::http().await;
    let store = format!("[store]\nurl = \"{}\"\n", redis.url());
    let toml = format!("{store}{}", config(&tokens, &upstream))
        .replace("token_store = \"DIR/sessions\"\n", "");
    let a = Sidecar::start(&toml).await;
    let b = Sidecar::start(&toml).await;
    let done = authorize(&a, &tokens, "alice", "code-alice").await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(call(&b, Some("bob")).await.status, 403, "unknown session");
    assert_eq!(call(&b, Some("alice")).await.status, 200);
    assert_eq!(call(&a, Some("alice")).await.status, 200);
    let renewed: Vec<_> = tokens
        .requests()
        .iter()
        .map(|r| r.form["grant_type"].clone())
        .collect();
    assert_eq!(
        renewed,
        ["authorization_code", "refresh_token"],
        "B renewed once, from the stored token"
    );
    assert!(!tokens.reuse_detected());
}
