//! Three compiled countersigns (separate processes) on one real
//! `redis-server`: the app's ticket from A, the browser's start on B, the
//! provider's callback on C (the test plays the browser and the
//! provider's consent), then the session used through A, B and C, each
//! call accepted by the test's bank (which takes only live tokens its
//! token server issued). Then Redis stops, and each replica counts what
//! failed in `countersign_store_errors_total`: a session's renewal lease,
//! a session's grant that a replica had not opened yet, and every
//! `authorize`, `start` and `callback`.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::task::block_in_place;

use super::{query_param, REDIRECT};
use crate::binary::{write_config, Process};
use crate::harness::*;
use crate::oauth2::{Api, ClientCheck, TokenServer};

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

struct Replica {
    p: Process,
    proxy: SocketAddr,
    /// Probes (`/metrics`).
    admin: SocketAddr,
    /// The app's `authorize`.
    control: SocketAddr,
    /// The browser's `start` and `callback`.
    browser: SocketAddr,
    _dir: tempfile::TempDir,
}

fn fleet_config(redis: &RedisServer, tokens: &TokenServer, api: &Api) -> String {
    format!(
        r#"
[proxy]
listen = "127.0.0.1:0"
connect_timeout = "1s"
response_timeout = "1s"

[store]
url = "{redis}"
key_prefix = "cs-procs:"
store_key = "{KEY}"
timeout = "500ms"

[credential.bank]
type = "oauth2"
grant = "authorization_code"
token_url = "{token_url}"
authorize_url = "https://auth.bank.test/authorize"
redirect_uri = "{REDIRECT}"
client_id = "gmo-client"
client_secret = "gmo-secret"
scope = "private:account"

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

fn start_one(toml: &str) -> Replica {
    let dir = tempfile::tempdir().unwrap();
    let mut p = Process::start(&write_config(dir.path(), toml), &[]);
    let proxy = p.listening("forward");
    let admin = p.listening("admin");
    p.wait_for("countersign is serving");
    let control = p.listened("control");
    let browser = p.listened("browser");
    Replica {
        p,
        proxy,
        admin,
        control,
        browser,
        _dir: dir,
    }
}

/// `path` on the listener of its audience: probes, the app's controls,
/// or the browser's endpoints.
async fn admin(r: &Replica, method: &str, path: &str, cookie: Option<&str>) -> Answer {
    let to = if path.contains("/authorize") {
        r.control
    } else if path.starts_with("/oauth2/") {
        r.browser
    } else {
        r.admin
    };
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
    send(to, req).await
}

/// The app asks `r` for a ticket for `session`: the browser's start path.
async fn ticket(r: &Replica, session: &str) -> String {
    let path = format!("/oauth2/bank/authorize?session={session}");
    let answer = admin(r, "POST", &path, None).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let json: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    json["start"].as_str().unwrap().to_string()
}

/// The browser: starts on `on_start`, consents at the provider (which
/// issues `code` for the PKCE challenge it was shown), comes back to
/// `on_callback` with its cookie.
async fn browser(
    start_path: &str,
    on_start: &Replica,
    on_callback: &Replica,
    tokens: &TokenServer,
    code: &str,
) -> Answer {
    let started = admin(on_start, "GET", start_path, None).await;
    assert_eq!(started.status, 302, "{}", started.body);
    let location = started.header("location").unwrap().to_string();
    assert!(
        location.starts_with("https://auth.bank.test/authorize?"),
        "{location}"
    );
    let cookie = started
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let state = query_param(&location, "state");
    tokens.add_code(code, &query_param(&location, "code_challenge"), REDIRECT);
    let callback = format!("/oauth2/bank/callback?code={code}&state={state}");
    admin(on_callback, "GET", &callback, Some(&cookie)).await
}

async fn call(r: &Replica, session: &str) -> Answer {
    let mut req = get("http://bank.test/accounts");
    req.headers_mut()
        .insert("x-countersign-session", session.parse().unwrap());
    send(r.proxy, req).await
}

/// `countersign_store_errors_total{op}` of `r`.
async fn store_errors(r: &Replica, op: &str) -> f64 {
    let metrics = admin(r, "GET", "/metrics", None).await.body;
    let name = format!("countersign_store_errors_total{{op=\"{op}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name.as_str()))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_processes_authorize_on_a_start_on_b_callback_on_c_and_serve_the_session() {
    let mut redis = RedisServer::start_with(true);
    let tokens = TokenServer::start(
        &[("gmo-client", ClientCheck::Basic("gmo-secret".into()))],
        300,
        &[],
    )
    .await;
    let api = Api::start(&tokens).await;
    let toml = fleet_config(&redis, &tokens, &api);
    let [a, b, c] = block_in_place(|| [start_one(&toml), start_one(&toml), start_one(&toml)]);

    // Two-second tokens: every replica renews its own for the session,
    // under the session's lease, from what Redis holds.
    tokens.set_expires_in(2);
    let start_path = ticket(&a, "alice").await;
    let done = browser(&start_path, &b, &c, &tokens, "code-alice").await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("alice"), "{}", done.body);
    let exchange = &tokens.requests()[0];
    assert_eq!(exchange.form["grant_type"], "authorization_code");
    assert_eq!(
        exchange.form.get("code_verifier").map(String::len),
        Some(43),
        "C presented the verifier B made"
    );

    // The session through each process, accepted by the bank.
    for r in [&a, &b, &c] {
        let before = api.seen().len();
        let answer = call(r, "alice").await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let seen = api.seen();
        assert_eq!(seen.len(), before + 1, "one request reached the bank");
        let (auth, status) = seen.last().unwrap().clone();
        assert_eq!(status, 200, "the bank accepted the token");
        let token = auth.unwrap().strip_prefix("Bearer ").unwrap().to_string();
        assert!(tokens.issued().contains(&token), "an issued token");
    }
    assert_eq!(call(&b, "bob").await.status, 403, "unknown session");
    assert!(!tokens.reuse_detected());
    assert!(
        redis
            .cli(&["--scan", "--pattern", "cs-procs:pending:*"])
            .is_empty(),
        "ticket and state were taken out"
    );

    // A second session, opened only by the callback's replica (A); and
    // a ticket issued for a browser that has not started yet.
    let done = browser(&ticket(&c, "carol").await, &c, &a, &tokens, "code-carol").await;
    assert_eq!(done.status, 200, "{}", done.body);
    let waiting = ticket(&a, "dave").await;
    for r in [&a, &b, &c] {
        assert_eq!(call(r, "alice").await.status, 200);
    }
    let refreshes = tokens
        .requests()
        .iter()
        .filter(|r| r.form.get("grant_type").map(String::as_str) == Some("refresh_token"))
        .count();
    assert!(refreshes >= 1, "the session was renewed");
    assert!(!tokens.reuse_detected(), "a refresh token presented twice");

    redis.stop();
    // authorize (a ticket's put), start (its take), callback (a state's
    // take) answer 503 and count under `pending`.
    let before = store_errors(&a, "pending").await;
    let refused = admin(&a, "POST", "/oauth2/bank/authorize?session=erin", None).await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    let refused = admin(&b, "GET", &waiting, None).await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    let refused = admin(&c, "GET", "/oauth2/bank/callback?code=x&state=y", None).await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(store_errors(&a, "pending").await > before);
    assert!(store_errors(&b, "pending").await >= 1.0);
    assert!(store_errors(&c, "pending").await >= 1.0);

    // Alice's session comes due on every replica: its renewal cannot take
    // the session's lease (`session_lease`).
    for r in [&a, &b, &c] {
        eventually_async(
            "a session's lease counted",
            Duration::from_secs(15),
            || async {
                match store_errors(r, "session_lease").await {
                    n if n >= 1.0 => Ok(()),
                    n => Err(n),
                }
            },
        )
        .await;
    }
    // Carol's session was never opened on B: its grant cannot be loaded.
    let before = store_errors(&b, "grant").await;
    let refused = call(&b, "carol").await;
    assert_ne!(refused.status, 200, "{}", refused.body);
    assert!(store_errors(&b, "grant").await > before);

    // Nothing secret in what they logged about it.
    for mut r in [a, b, c] {
        let lines = r.p.drain_lines().join("\n");
        for token in tokens.issued() {
            assert!(!lines.contains(&token), "a token in the log");
        }
    }
}
