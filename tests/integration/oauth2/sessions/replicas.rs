//! Authorizations across replicas that share one Redis (`[store]`): the
//! app's ticket from one countersign, the browser's start on another, the
//! provider's callback on a third, and the session then served by all
//! three; a ticket or a `state` is redeemed once in the whole fleet, and
//! Redis holds none of them in the clear.

use std::time::Duration;

use super::*;

/// 32 bytes, base64: the store_key.
const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// Three countersigns sharing `redis`, with sessions there.
async fn replicas(redis: &RedisServer, tokens: &TokenServer, upstream: &Upstream) -> [Sidecar; 3] {
    let store = format!(
        "[store]\nurl = \"{}\"\nkey_prefix = \"cs-test:\"\nstore_key = \"{KEY}\"\n",
        redis.url()
    );
    let toml = format!("{store}{}", config(tokens, upstream))
        .replace("token_store = \"DIR/sessions\"\n", "");
    [
        Sidecar::start(&toml).await,
        Sidecar::start(&toml).await,
        Sidecar::start(&toml).await,
    ]
}

/// Like `replicas`, but each reaches Redis by another spelling of its
/// socket path: so each has its own connection and its own per-process
/// locks, as separate processes would (in one process, replicas on one URL
/// share the lock that serializes an item's renewals).
async fn replicas_apart(
    redis: &RedisServer,
    tokens: &TokenServer,
    upstream: &Upstream,
) -> [Sidecar; 3] {
    let url = redis.url();
    let (dir, file) = url.rsplit_once('/').unwrap();
    let mut sidecars = Vec::new();
    for hops in ["", "./", "././"] {
        let store = format!(
            "[store]\nurl = \"{dir}/{hops}{file}\"\nkey_prefix = \"cs-test:\"\nstore_key = \"{KEY}\"\n"
        );
        let toml = format!("{store}{}", config(tokens, upstream))
            .replace("token_store = \"DIR/sessions\"\n", "");
        sidecars.push(Sidecar::start(&toml).await);
    }
    sidecars.try_into().unwrap_or_else(|_| unreachable!())
}

async fn servers() -> (RedisServer, TokenServer, Upstream) {
    let tokens = TokenServer::start(
        &[("gmo-client", ClientCheck::Basic("gmo-secret".into()))],
        300,
        &[],
    )
    .await;
    (RedisServer::start(), tokens, Upstream::http().await)
}

/// Every key under the test prefix with its whole content.
fn everything(redis: &RedisServer) -> String {
    let keys = String::from_utf8(redis.cli(&["--scan", "--pattern", "cs-test:*"])).unwrap();
    let mut all = keys.clone();
    for key in keys.lines() {
        let kind = String::from_utf8(redis.cli(&["TYPE", key])).unwrap();
        let read = if kind.trim() == "hash" {
            "HGETALL"
        } else {
            "GET"
        };
        all.push_str(&String::from_utf8_lossy(&redis.cli(&[read, key])));
    }
    all
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorize_on_a_start_on_b_callback_on_c_and_the_session_works_on_all_three() {
    let (redis, tokens, upstream) = servers().await;
    let [a, b, c] = replicas(&redis, &tokens, &upstream).await;

    let start_path = ticket(&a, "alice").await;
    let browser = start(&b, &start_path).await;
    let state = query_param(&browser.location, "state");
    let nonce = browser.cookie.split_once('=').unwrap().1.to_string();
    let ticket_value = start_path.split_once("ticket=").unwrap().1.to_string();
    // What waits in Redis names no ticket, state, nonce or session.
    let stored = everything(&redis);
    assert!(stored.contains("cs-test:pending:bank:state:"), "{stored}");
    for clear in [&state, &nonce, &ticket_value, &"alice".to_string()] {
        assert!(!stored.contains(clear.as_str()), "{clear} in {stored}");
    }

    tokens.add_code(
        "code-abc",
        &query_param(&browser.location, "code_challenge"),
        REDIRECT,
    );
    let callback = format!("/oauth2/bank/callback?code=code-abc&state={state}");
    let done = admin_with(&c, "GET", &callback, Some(&browser.cookie)).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("alice"), "{}", done.body);
    let exchange = &tokens.requests()[0];
    assert_eq!(exchange.form["grant_type"], "authorization_code");
    assert_eq!(
        exchange.form.get("code_verifier").map(String::len),
        Some(43),
        "C presented the verifier B made"
    );

    for replica in [&a, &b, &c] {
        let answer = call(replica, Some("alice")).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let sent = upstream.last().header("authorization").map(str::to_string);
        let issued: Vec<String> = tokens.issued().iter().map(|t| bearer(t)).collect();
        assert!(issued.contains(&sent.unwrap()), "an issued token");
    }
    assert_eq!(call(&b, Some("bob")).await.status, 403, "unknown session");
    assert!(!tokens.reuse_detected());
    assert!(
        redis
            .cli(&["--scan", "--pattern", "cs-test:pending:*"])
            .is_empty(),
        "ticket and state were taken out"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_is_redeemed_once_across_replicas() {
    let (redis, tokens, upstream) = servers().await;
    let [a, b, c] = replicas(&redis, &tokens, &upstream).await;

    let start_path = ticket(&a, "alice").await;
    start(&b, &start_path).await;
    for replica in [&a, &b, &c] {
        let again = admin(replica, &start_path).await;
        assert_eq!(again.status, 400, "{}", again.body);
        assert!(again.body.contains("ticket"), "{}", again.body);
    }

    // Two browsers racing with one ticket on two replicas: one wins.
    for _ in 0..5 {
        let start_path = ticket(&a, "alice").await;
        let (on_b, on_c) = tokio::join!(admin(&b, &start_path), admin(&c, &start_path));
        let mut statuses = [on_b.status, on_c.status];
        statuses.sort();
        assert_eq!(statuses, [302, 400], "{} / {}", on_b.body, on_c.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_is_redeemed_once_across_replicas() {
    let (redis, tokens, upstream) = servers().await;
    let [a, b, c] = replicas(&redis, &tokens, &upstream).await;
    let forged = admin(&c, "/oauth2/bank/callback?code=x&state=forged").await;
    assert_eq!(forged.status, 400);
    assert!(forged.body.contains("state"), "{}", forged.body);

    let browser = start(&a, &ticket(&a, "carol").await).await;
    let state = query_param(&browser.location, "state");
    let challenge = query_param(&browser.location, "code_challenge");
    tokens.add_code("code-c", &challenge, REDIRECT);
    let callback = format!("/oauth2/bank/callback?code=code-c&state={state}");
    let ok = admin_with(&b, "GET", &callback, Some(&browser.cookie)).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    tokens.add_code("code-c2", &challenge, REDIRECT);
    let callback = format!("/oauth2/bank/callback?code=code-c2&state={state}");
    for replica in [&a, &b, &c] {
        let replay = admin_with(replica, "GET", &callback, Some(&browser.cookie)).await;
        assert_eq!(replay.status, 400, "{}", replay.body);
        assert!(replay.body.contains("state"), "{}", replay.body);
    }
    assert_eq!(tokens.request_count(), 1, "one code exchanged");

    // Another browser's callback on another replica spends the state too.
    let browser = start(&b, &ticket(&c, "dave").await).await;
    let state = query_param(&browser.location, "state");
    let callback = format!("/oauth2/bank/callback?code=code-d&state={state}");
    let other = admin(&a, &callback).await;
    assert_eq!(other.status, 400, "{}", other.body);
    assert!(
        other.body.contains("this browser did not start"),
        "{}",
        other.body
    );
    let late = admin_with(&c, "GET", &callback, Some(&browser.cookie)).await;
    assert_eq!(late.status, 400, "{}", late.body);
    assert!(late.body.contains("state"), "{}", late.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_store_answers_503_and_names_no_secret() {
    let (mut redis, tokens, upstream) = servers().await;
    let [a, _b, _c] = replicas(&redis, &tokens, &upstream).await;
    let start_path = ticket(&a, "alice").await;
    redis.stop();
    let path = "/oauth2/bank/authorize?session=alice";
    let refused = admin_with(&a, "POST", path, None).await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(refused.body.contains("try again"), "{}", refused.body);
    let refused = admin(&a, &start_path).await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(!refused.body.contains(KEY), "{}", refused.body);
}

/// A session served by three replicas is renewed under one fleet-wide
/// lease: while the token server holds the first renewal, the others come
/// due too and wait for the lease instead of presenting the same refresh
/// token (the token server would see a reuse, and a real one revoke the
/// grant); afterwards each renews from what the last one stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_served_by_three_replicas_never_presents_a_refresh_token_twice() {
    let (redis, tokens, upstream) = servers().await;
    let [a, b, c] = replicas_apart(&redis, &tokens, &upstream).await;
    let start_path = ticket(&a, "alice").await;
    let browser = start(&b, &start_path).await;
    let state = query_param(&browser.location, "state");
    tokens.add_code(
        "code-lease",
        &query_param(&browser.location, "code_challenge"),
        REDIRECT,
    );
    tokens.set_expires_in(1);
    let callback = format!("/oauth2/bank/callback?code=code-lease&state={state}");
    let done = admin_with(&c, "GET", &callback, Some(&browser.cookie)).await;
    assert_eq!(done.status, 200, "{}", done.body);
    // Each replica opens the session and holds a token of its own.
    for replica in [&a, &b, &c] {
        let answer = call(replica, Some("alice")).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }

    // Every replica's token comes due while the token server holds the
    // first renewal that reaches it.
    tokens.hold();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    tokens.release();
    for replica in [&a, &b, &c, &a, &b, &c] {
        let answer = call(replica, Some("alice")).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    let refreshes: Vec<String> = tokens
        .requests()
        .iter()
        .filter(|r| r.form.get("grant_type").map(String::as_str) == Some("refresh_token"))
        .map(|r| r.form["refresh_token"].clone())
        .collect();
    assert!(
        refreshes.len() >= 3,
        "the session was renewed: {refreshes:?}"
    );
    let distinct: std::collections::HashSet<&String> = refreshes.iter().collect();
    assert_eq!(
        distinct.len(),
        refreshes.len(),
        "a refresh token presented twice: {refreshes:?}"
    );
    assert!(!tokens.reuse_detected());
}

/// A session the store lost (`FLUSHALL`) is reported lost, not taken for
/// one ended elsewhere: refused (`403`), counted on `/status`
/// (`sessions_lost`) and in `countersign_store_errors_total{op="lost"}`;
/// one ended with `DELETE` on another replica is not counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_lost_with_the_store_is_reported_lost_and_an_ended_one_is_not() {
    let (redis, tokens, upstream) = servers().await;
    let [a, b, c] = replicas_apart(&redis, &tokens, &upstream).await;
    tokens.set_expires_in(1);
    for (session, code) in [("alice", "code-alice"), ("bob", "code-bob")] {
        let start_path = ticket(&a, session).await;
        let browser = start(&b, &start_path).await;
        let state = query_param(&browser.location, "state");
        tokens.add_code(
            code,
            &query_param(&browser.location, "code_challenge"),
            REDIRECT,
        );
        let callback = format!("/oauth2/bank/callback?code={code}&state={state}");
        let done = admin_with(&c, "GET", &callback, Some(&browser.cookie)).await;
        assert_eq!(done.status, 200, "{}", done.body);
        let answer = call(&a, Some(session)).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    // A renews both (1 s tokens), so it has read them from the store.
    let renewals = || {
        tokens
            .requests()
            .iter()
            .filter(|r| r.form.get("grant_type").map(String::as_str) == Some("refresh_token"))
            .count()
    };
    eventually("A renewed the sessions", || renewals() >= 2).await;

    // Ended on C: A refuses it at its next renewal, and counts no loss.
    let ended = admin_with(&c, "DELETE", "/oauth2/bank/sessions/alice", None).await;
    assert_eq!(ended.status, 200, "{}", ended.body);
    eventually_async("alice refused on A", Duration::from_secs(10), || async {
        match call(&a, Some("alice")).await.status.as_u16() {
            403 => Ok(()),
            s => Err(s),
        }
    })
    .await;
    let status = admin_with(&a, "GET", "/status", None).await.body;
    assert!(status.contains("\"sessions_lost\":0"), "{status}");

    // The store loses everything: bob is reported lost.
    redis.cli(&["FLUSHALL"]);
    eventually_async("bob refused on A", Duration::from_secs(10), || async {
        match call(&a, Some("bob")).await.status.as_u16() {
            403 => Ok(()),
            s => Err(s),
        }
    })
    .await;
    let status = admin_with(&a, "GET", "/status", None).await.body;
    assert!(status.contains("\"sessions_lost\":1"), "{status}");
    let metrics = admin_with(&a, "GET", "/metrics", None).await.body;
    assert!(
        metrics.lines().any(
            |l| l.starts_with("countersign_store_errors_total{op=\"lost\"} ") && !l.ends_with(" 0")
        ),
        "{metrics}"
    );

    // Ended by the app after the loss (here on B, which never renewed
    // it): the record of the loss goes with it; the session stays unknown.
    let records = || redis.cli(&["KEYS", "cs-test:lost:session:bank:*"]);
    assert!(!records().trim_ascii().is_empty(), "bob's loss recorded");
    let ended = admin_with(&b, "DELETE", "/oauth2/bank/sessions/bob", None).await;
    assert_eq!(ended.status, 404, "{}", ended.body);
    assert!(records().trim_ascii().is_empty(), "{:?}", records());
}
