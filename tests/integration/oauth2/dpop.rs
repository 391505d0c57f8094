//! DPoP-bound tokens end to end (RFC 9449) against `dpop_server`: proofs
//! at the token endpoint and on every API request, server nonces at both,
//! a fresh proof for a replayed request, a Bearer answer refused, and
//! replicas sharing a `[store]` that each bind a token of their own; a
//! session's code bound to the key (`dpop_jkt`), but not with `[store]`.

use super::dpop_server::DpopServer;
use crate::harness::*;

fn config(server: &DpopServer, extra: &str) -> String {
    format!(
        r#"
[proxy]
listen = "127.0.0.1:0"
response_timeout = "2s"

[credential.bank]
type = "oauth2"
token_url = "{}"
grant = "client_credentials"
client_id = "c"
client_secret = "s"
dpop = true
{extra}

[[route]]
name = "bank"
hosts = ["bank.test"]
upstream = "{}"
credential = "bank"
"#,
        server.token_url(),
        server.api_url()
    )
}

/// Query parameter `name` of `url` (as sent: the values here need no
/// decoding).
fn param(url: &str, name: &str) -> Option<String> {
    url.split(['?', '&'])
        .find_map(|p| p.strip_prefix(&format!("{name}=")))
        .map(String::from)
}

async fn call(sidecar: &Sidecar, path: &str) -> Answer {
    send(sidecar.proxy(), get(&format!("http://bank.test{path}"))).await
}

#[tokio::test]
async fn proofs_and_nonces_satisfy_a_dpop_server_end_to_end() {
    for alg in ["ES256", "EdDSA"] {
        let server = DpopServer::start().await;
        let sidecar = Sidecar::start(&config(&server, &format!("dpop_alg = \"{alg}\""))).await;
        // The app's own DPoP header and Authorization are replaced.
        let req = http::Request::get("http://bank.test/v1/accounts?from=2024")
            .header("dpop", "from-the-app")
            .header("authorization", "Bearer app")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        let answer = send(sidecar.proxy(), req).await;
        assert_eq!(answer.status, 200, "{alg}: {}", answer.body);
        assert_eq!(answer.body, "api ok");

        // Token endpoint: a proof without nonce, refused with one, then the
        // same request again with it.
        let requests = server.token_requests();
        assert_eq!(
            requests.iter().map(|(_, s)| *s).collect::<Vec<_>>(),
            [400, 200],
            "{alg}"
        );
        let (first, second) = (
            requests[0].0.clone().unwrap(),
            requests[1].0.clone().unwrap(),
        );
        assert!(first.get("nonce").is_none());
        assert_eq!(second["nonce"], "as-nonce-1");
        assert!(second.get("ath").is_none());

        // API: refused for its nonce once, replayed with a fresh proof.
        let calls = server.calls();
        assert_eq!(
            calls.iter().map(|c| c.status).collect::<Vec<_>>(),
            [401, 200]
        );
        let (a, b) = (
            calls[0].claims.clone().unwrap(),
            calls[1].claims.clone().unwrap(),
        );
        assert_ne!(a["jti"], b["jti"], "the replay has a proof of its own");
        assert_eq!(b["nonce"], "rs-nonce-1");
        assert_eq!(b["htu"], format!("{}/v1/accounts", server.api_url()));
        assert_eq!(b["htm"], "GET");

        // The nonce is remembered: the next request passes at once.
        assert_eq!(call(&sidecar, "/v1/balances").await.status, 200);
        assert_eq!(server.calls().len(), 3);
        assert_eq!(server.token_requests().len(), 2, "one token serves both");
        assert_eq!(server.bound_keys().len(), 1);

        // A new nonce: refused, replayed with it, remembered.
        server.set_rs_nonce("rs-nonce-2");
        assert_eq!(call(&sidecar, "/v1/x").await.status, 200);
        let calls = server.calls();
        assert_eq!(
            calls.iter().map(|c| c.status).collect::<Vec<_>>()[3..],
            [401, 200]
        );
        assert_eq!(calls[4].claims.as_ref().unwrap()["nonce"], "rs-nonce-2");
        let metrics = sidecar.app.metrics().render().unwrap();
        let retried = "countersign_upstream_retries_total{route=\"bank\",reason=\"dpop-nonce\"} 2";
        assert!(metrics.contains(retried), "{metrics}");
        sidecar.app.shutdown().await;
    }
}

#[tokio::test]
async fn a_bearer_token_is_refused_when_dpop_was_asked_for() {
    let server = DpopServer::start().await;
    server.answer_bearer();
    let sidecar = Sidecar::start(&config(&server, "wait_for_token = \"1s\"")).await;
    let answer = call(&sidecar, "/v1/accounts").await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert!(
        answer.body.contains("token_type `Bearer`") && answer.body.contains("dpop = true"),
        "{}",
        answer.body
    );
    assert!(server.calls().is_empty(), "nothing reaches the API");
    sidecar.app.shutdown().await;
}

#[tokio::test]
async fn a_post_without_body_is_replayed_with_the_nonce_and_its_method() {
    let server = DpopServer::start().await;
    let sidecar = Sidecar::start(&config(&server, "")).await;
    let req = http::Request::post("http://bank.test/v1/payments")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    assert_eq!(send(sidecar.proxy(), req).await.status, 200);
    let calls = server.calls();
    assert_eq!(calls.len(), 2);
    assert!(calls.iter().all(|c| c.method == "POST"));
    assert_eq!(calls[1].claims.as_ref().unwrap()["htm"], "POST");
    sidecar.app.shutdown().await;
}

/// Two replicas sharing a `[store]`: each has its own DPoP key and fetches
/// its own token, and no token is published to Redis (a DPoP-bound token
/// is useless to a replica without the key).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_with_a_shared_store_each_bind_their_own_token() {
    let redis = RedisServer::start();
    let server = DpopServer::start().await;
    let store = format!(
        "[store]\nurl = \"{}\"\nkey_prefix = \"cs-dpop:\"\n",
        redis.url()
    );
    let toml = format!("{store}{}", config(&server, ""));
    let a = Sidecar::start(&toml).await;
    let b = Sidecar::start(&toml).await;
    assert_eq!(call(&a, "/a").await.status, 200);
    assert_eq!(call(&b, "/b").await.status, 200);
    let issued = server
        .token_requests()
        .iter()
        .filter(|(_, status)| *status == 200)
        .count();
    assert_eq!(issued, 2, "one token per replica");
    assert_eq!(server.bound_keys().len(), 2, "bound to two keys");
    let keys = String::from_utf8(redis.cli(&["--scan", "--pattern", "cs-dpop:*"])).unwrap();
    assert_eq!(keys.trim(), "", "nothing published: {keys}");
    a.app.shutdown().await;
    b.app.shutdown().await;
}

/// `countersign token` gets a DPoP-bound token (through the server's
/// nonce) and says it is bound, and to which key, without showing it.
#[test]
fn the_token_command_shows_a_dpop_binding() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(DpopServer::start());
    let dir = tempfile::tempdir().unwrap();
    let path = crate::binary::write_config(dir.path(), &config(&server, ""));
    let out = std::process::Command::new(crate::binary::BIN)
        .args(["token", "--config"])
        .arg(&path)
        .args(["--credential", "bank"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let jkt = server.bound_keys();
    let jkt = jkt.iter().next().expect("a token was issued");
    assert!(
        stdout.contains(&format!("token_type: DPoP (bound to key {jkt}")),
        "{stdout}"
    );
    assert!(stdout.contains("token: (hidden"), "{stdout}");
}

/// An authorization_code session: the code exchange carries a proof (and
/// the server's nonce), and the session's requests carry proofs for its
/// DPoP-bound token.
#[tokio::test]
async fn a_session_exchanges_its_code_and_calls_with_proofs() {
    let server = DpopServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sessions")).unwrap();
    let toml = config(&server, "").replace(
        "grant = \"client_credentials\"",
        "grant = \"authorization_code\"\nauthorize_url = \"https://as.test/authorize\"\nredirect_uri = \"https://app.test/oauth2/callback\"\ntoken_store = \"DIR/sessions\"\nscope = \"accounts offline_access\"",
    );
    let sidecar = Sidecar::start_in(dir, &toml).await;
    let admin = |to: std::net::SocketAddr, method: &str, path: &str, cookie: Option<&str>| {
        let mut req = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "admin");
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        send(
            to,
            req.body(http_body_util::Full::new(bytes::Bytes::new()))
                .unwrap(),
        )
    };
    // The app asks for a ticket; the browser starts and comes back.
    let ticket = admin(
        sidecar.control(),
        "POST",
        "/oauth2/bank/authorize?session=alice",
        None,
    )
    .await;
    assert_eq!(ticket.status, 200, "{ticket:?}");
    let json: serde_json::Value = serde_json::from_str(&ticket.body).unwrap();
    let started = admin(
        sidecar.browser(),
        "GET",
        json["start"].as_str().unwrap(),
        None,
    )
    .await;
    assert_eq!(started.status, 302, "{started:?}");
    let location = started.header("location").unwrap().to_string();
    let state = param(&location, "state").unwrap();
    let cookie = started
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap();
    let path = format!("/oauth2/bank/callback?code=c-1&state={state}");
    let done = admin(sidecar.browser(), "GET", &path, Some(cookie)).await;
    assert_eq!(done.status, 200, "{done:?}");
    let requests = server.token_requests();
    assert_eq!(
        requests.iter().map(|(_, s)| *s).collect::<Vec<_>>(),
        [400, 200]
    );

    let mut req = get("http://bank.test/v1/accounts");
    req.headers_mut()
        .insert("x-countersign-session", "alice".parse().unwrap());
    let answer = send(sidecar.proxy(), req).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let calls = server.calls();
    assert_eq!(calls.last().unwrap().status, 200);
    // The authorization request named the key (RFC 9449 section 10) whose
    // thumbprint the server computed from the exchange's proof.
    let jkt = param(&location, "dpop_jkt").expect("dpop_jkt in the authorization request");
    assert_eq!(server.bound_keys(), [jkt].into_iter().collect());
    sidecar.app.shutdown().await;
}

/// With `[store]` another replica (another key) may take the callback, so
/// the authorization request names no key: the code is not bound to one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_shared_store_the_code_is_not_bound_to_one_replicas_key() {
    let redis = RedisServer::start();
    let server = DpopServer::start().await;
    let store = format!(
        "[store]\nurl = \"{}\"\nkey_prefix = \"cs-dpop-code:\"\n",
        redis.url()
    );
    let toml = format!("{store}{}", config(&server, "")).replace(
        "grant = \"client_credentials\"",
        "grant = \"authorization_code\"\nauthorize_url = \"https://as.test/authorize\"\nredirect_uri = \"https://app.test/oauth2/callback\"\nscope = \"accounts offline_access\"",
    );
    let sidecar = Sidecar::start(&toml).await;
    let ticket = http::Request::post("/oauth2/bank/authorize?session=alice")
        .header("host", "admin")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let ticket = send(sidecar.control(), ticket).await;
    assert_eq!(ticket.status, 200, "{ticket:?}");
    let json: serde_json::Value = serde_json::from_str(&ticket.body).unwrap();
    let start = http::Request::get(json["start"].as_str().unwrap())
        .header("host", "admin")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let started = send(sidecar.browser(), start).await;
    assert_eq!(started.status, 302, "{started:?}");
    let location = started.header("location").unwrap();
    assert!(param(location, "code_challenge").is_some(), "{location}");
    assert_eq!(param(location, "dpop_jkt"), None, "{location}");
    sidecar.app.shutdown().await;
}
