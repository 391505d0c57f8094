//! Token lifecycle through the real proxy: renewal ahead of expiry,
//! single-flight at expiry, outages, retried failures and 401 replay.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

fn client_credentials(extra: &str) -> String {
    format!("grant = \"client_credentials\"\nclient_id = \"c\"\nclient_secret = \"s\"\n{extra}")
}

async fn start(expires_in: u64, extra: &str) -> (TokenServer, Api, Sidecar) {
    start_with(expires_in, extra, "1s").await
}

async fn start_with(
    expires_in: u64,
    extra: &str,
    response_timeout: &str,
) -> (TokenServer, Api, Sidecar) {
    let tokens =
        TokenServer::start(&[("c", ClientCheck::Basic("s".into()))], expires_in, &[]).await;
    let api = Api::start(&tokens).await;
    let toml = config(&tokens, &api, &client_credentials(extra)).replace(
        "response_timeout = \"1s\"",
        &format!("response_timeout = \"{response_timeout}\""),
    );
    let sidecar = Sidecar::start(&toml).await;
    (tokens, api, sidecar)
}

#[tokio::test]
async fn tokens_are_renewed_in_the_background_before_they_expire() {
    let (tokens, api, sidecar) = start(2, "refresh_at = 0.5").await;
    assert_eq!(call(&sidecar, "/a").await.status, 200);
    // No request in between: the renewals happen on their own.
    eventually("three tokens issued", || tokens.issued().len() >= 3).await;
    assert_eq!(call(&sidecar, "/b").await.status, 200);
    let latest = tokens.issued();
    let used = last_token(&api);
    assert!(
        latest[latest.len() - 2..].contains(&used),
        "{used} is among the newest"
    );
    assert!(api.seen().iter().all(|(_, status)| *status == 200));
}

/// Writes one request on its own connection, counts it as sent, then
/// reads the whole answer and returns its status code.
async fn raw_get(proxy: std::net::SocketAddr, sent: Arc<AtomicUsize>) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(proxy).await.unwrap();
    let req = "GET http://bank.test/burst HTTP/1.1\r\nHost: bank.test\r\nConnection: close\r\n\r\n";
    stream.write_all(req.as_bytes()).await.unwrap();
    sent.fetch_add(1, Ordering::SeqCst);
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer[9..12].parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_requests_at_expiry_make_exactly_one_token_request() {
    // A long response timeout: the held renewal must not time out and retry.
    let (tokens, api, sidecar) =
        start_with(2, "refresh_at = 0.5\nwait_for_token = \"60s\"", "60s").await;
    assert_eq!(call(&sidecar, "/first").await.status, 200);
    let first = last_token(&api);
    // The renewal is held at the endpoint until the first token has expired
    // and all the requests are waiting. The token it brings lasts, so that
    // its own renewal does not blur the count.
    tokens.set_expires_in(300);
    tokens.hold();
    eventually("the renewal reached the endpoint", || {
        tokens.request_count() == 2
    })
    .await;
    eventually("the first token expired", || tokens.expired(&first)).await;
    let sent = Arc::new(AtomicUsize::new(0));
    let proxy = sidecar.proxy();
    let burst: Vec<_> = (0..1000)
        .map(|_| tokio::spawn(raw_get(proxy, Arc::clone(&sent))))
        .collect();
    eventually("all requests sent", || sent.load(Ordering::SeqCst) == 1000).await;
    assert!(api.seen().len() == 1, "no request went up without a token");
    let released = Instant::now();
    tokens.release();
    for r in burst {
        assert_eq!(r.await.unwrap(), 200);
    }
    eprintln!(
        "1000 waiting requests answered {:?} after the token endpoint answered",
        released.elapsed()
    );
    assert_eq!(tokens.request_count(), 2, "one initial fetch, one renewal");
    let second = tokens.issued()[1].clone();
    let seen = api.seen();
    assert_eq!(seen.len(), 1001);
    let want = format!("Bearer {second}");
    assert!(seen[1..]
        .iter()
        .all(|(a, s)| a.as_deref() == Some(&want) && *s == 200));
}

#[tokio::test]
async fn a_valid_token_outlives_an_outage_but_an_expired_one_is_never_used() {
    let (tokens, api, sidecar) = start(3, "refresh_at = 0.2\nwait_for_token = \"200ms\"").await;
    assert_eq!(call(&sidecar, "/a").await.status, 200);
    let first = last_token(&api);
    tokens.set_down(true);
    eventually("renewals are failing", || tokens.request_count() >= 3).await;
    assert!(!tokens.expired(&first));
    assert_eq!(call(&sidecar, "/b").await.status, 200);
    assert_eq!(last_token(&api), first, "the still-valid token is used");
    eventually("the token expired", || tokens.expired(&first)).await;
    let answer = call(&sidecar, "/c").await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(
        answer.header("x-countersign-error"),
        Some("token-unavailable")
    );
    let retry: u64 = answer.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry), "Retry-After {retry}");
    assert!(answer.body.contains("500"), "{}", answer.body);
    assert_eq!(api.seen().len(), 2, "nothing was forwarded without a token");
    tokens.set_down(false);
    eventually("a new token is issued", || tokens.issued().len() == 2).await;
    assert_eq!(call(&sidecar, "/d").await.status, 200);
}

#[tokio::test]
async fn broken_token_answers_are_retried_until_a_good_one_comes() {
    let tokens = TokenServer::start(&[("c", ClientCheck::Basic("s".into()))], 300, &[]).await;
    tokens.fail_next(&[
        Failure::Status500,
        Failure::Garbage,
        Failure::Empty,
        Failure::NoAccessToken,
    ]);
    let api = Api::start(&tokens).await;
    let cred = client_credentials("wait_for_token = \"20s\"");
    let sidecar = Sidecar::start(&config(&tokens, &api, &cred)).await;
    let answer = call(&sidecar, "/x").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(tokens.request_count(), 5);
}

#[tokio::test]
async fn a_token_endpoint_that_does_not_answer_in_time_is_retried() {
    let tokens = TokenServer::start(&[("c", ClientCheck::Basic("s".into()))], 300, &[]).await;
    tokens.fail_next(&[Failure::Hang(Duration::from_secs(5))]);
    let api = Api::start(&tokens).await;
    let cred = client_credentials("wait_for_token = \"20s\"");
    let sidecar = Sidecar::start(&config(&tokens, &api, &cred)).await;
    assert_eq!(call(&sidecar, "/x").await.status, 200);
    assert_eq!(tokens.request_count(), 2);
    assert_eq!(tokens.issued().len(), 1);
}

#[tokio::test]
async fn a_401_renews_the_token_and_replays_a_bodyless_request_once() {
    let (tokens, api, sidecar) = start(300, "").await;
    assert_eq!(call(&sidecar, "/a").await.status, 200);
    let first = last_token(&api);
    tokens.revoke(&first);
    let answer = call(&sidecar, "/b").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let seen = api.seen();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[1], (Some(format!("Bearer {first}")), 401));
    assert_ne!(last_token(&api), first);
    assert_eq!(tokens.request_count(), 2);
    // The fresh token is refused too, right away: the upstream's 401 goes
    // to the app as it is, and the token endpoint is not asked again.
    tokens.revoke(&last_token(&api));
    let answer = call(&sidecar, "/c").await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.header("x-countersign-error"), None);
    assert_eq!(tokens.request_count(), 2);
}

#[tokio::test]
async fn a_401_to_a_request_with_a_body_is_not_replayed_but_renews_the_token() {
    let (tokens, api, sidecar) = start(300, "").await;
    assert_eq!(call(&sidecar, "/a").await.status, 200);
    let first = last_token(&api);
    tokens.revoke(&first);
    let req = post(
        "http://bank.test/pay",
        "application/json",
        r#"{"amount":1}"#,
    );
    let answer = send(sidecar.proxy(), req).await;
    assert_eq!(answer.status, 401);
    assert_eq!(api.seen().len(), 2, "sent once, not replayed");
    eventually("a new token is issued", || tokens.issued().len() == 2).await;
    assert_eq!(call(&sidecar, "/b").await.status, 200);
    assert_ne!(last_token(&api), first);
}

#[tokio::test]
async fn a_reload_keeps_an_unchanged_credentials_token_and_a_changed_one_is_fetched_anew() {
    let (tokens, api, sidecar) = start(300, "").await;
    assert_eq!(call(&sidecar, "/a").await.status, 200);
    // Change the route only: the credential and its token stay.
    let toml = config(&tokens, &api, &client_credentials(""));
    sidecar.rewrite(&toml.replace(
        "hosts = [\"bank.test\"]",
        "hosts = [\"bank.test\", \"b2.test\"]",
    ));
    sidecar.wait_for_generation(1).await;
    assert_eq!(call(&sidecar, "/b").await.status, 200);
    assert_eq!(tokens.request_count(), 1);
    // A new scope is a new credential: a new token at once.
    sidecar.rewrite(&config(
        &tokens,
        &api,
        &client_credentials("scope = \"more\""),
    ));
    sidecar.wait_for_generation(2).await;
    assert_eq!(call(&sidecar, "/c").await.status, 200);
    assert_eq!(tokens.request_count(), 2);
    assert_eq!(tokens.requests()[1].form["scope"], "more");
    assert_eq!(last_token(&api), tokens.issued()[1]);
}
