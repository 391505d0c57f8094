//! The issued key's lifecycle through the real proxy: one issue request for
//! many waiting requests, renewal before lifetime - margin, an issuer that
//! is down, reloads, and a 401 from the API.

use crate::handler_server::form_decode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// Writes one request on its own connection, counts it as sent, then reads
/// the whole answer and returns its status code.
async fn raw_get(proxy: std::net::SocketAddr, sent: Arc<AtomicUsize>) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(proxy).await.unwrap();
    let req = "GET http://amivoice.test/v1/recognize?d=x HTTP/1.1\r\nHost: amivoice.test\r\nConnection: close\r\n\r\n";
    stream.write_all(req.as_bytes()).await.unwrap();
    sent.fetch_add(1, Ordering::SeqCst);
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer[9..12].parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_waiting_requests_make_exactly_one_issue_request() {
    let issuer = Issuer::start(Mode::Text, SID, SPW, None).await;
    let api = Api::start(&issuer, KeyIn::Query).await;
    issuer.hold();
    // A long response timeout: the held issue request must not time out and
    // be retried, which would blur the count.
    let toml = config(
        &issuer,
        &api.url(),
        &amivoice(300_000, "wait_for_token = \"60s\""),
    )
    .replace("response_timeout = \"1s\"", "response_timeout = \"60s\"");
    let sidecar = start(&toml).await;
    eventually("the first issue request arrived", || {
        issuer.request_count() == 1
    })
    .await;
    let sent = Arc::new(AtomicUsize::new(0));
    let burst: Vec<_> = (0..200)
        .map(|_| tokio::spawn(raw_get(sidecar.proxy(), Arc::clone(&sent))))
        .collect();
    eventually("all requests sent", || sent.load(Ordering::SeqCst) == 200).await;
    assert!(api.seen().is_empty(), "no request went up without a key");
    issuer.release();
    for r in burst {
        assert_eq!(r.await.unwrap(), 200);
    }
    assert_eq!(issuer.request_count(), 1);
    let key = issuer.keys()[0].clone();
    let seen = api.seen();
    assert_eq!(seen.len(), 200);
    assert!(seen
        .iter()
        .all(|s| s.key.as_deref() == Some(key.as_str()) && s.status == 200));
}

#[tokio::test]
async fn keys_are_renewed_in_the_background_before_lifetime_minus_margin() {
    let issuer = Issuer::start(Mode::Text, SID, SPW, None).await;
    let api = Api::start(&issuer, KeyIn::Query).await;
    // Valid 2s at the issuer, used for at most 1s, renewed after ~0.8s.
    let credential = amivoice(2_000, "margin = \"1s\"");
    let sidecar = start(&config(&issuer, &api.url(), &credential)).await;
    assert_eq!(call(&sidecar, "/a").await.status, 200);
    // No request in between: the renewals happen on their own.
    eventually("three keys issued", || issuer.keys().len() >= 3).await;
    assert_eq!(call(&sidecar, "/b").await.status, 200);
    let keys = issuer.keys();
    let used = api.last_key();
    assert!(
        keys[keys.len() - 2..].contains(&used),
        "{used} is among the newest"
    );
    assert!(
        api.seen().iter().all(|s| s.status == 200),
        "{:?}",
        api.seen()
    );
}

#[tokio::test]
async fn an_issuer_that_is_down_means_503_with_retry_after_until_it_is_back() {
    let issuer = Issuer::start(Mode::Text, SID, SPW, None).await;
    issuer.set_down(true);
    let upstream = Upstream::http().await;
    let credential = amivoice(300_000, "wait_for_token = \"200ms\"");
    let sidecar = start(&config(&issuer, &upstream.http_url(), &credential)).await;
    let answer = call(&sidecar, "/v1/recognize").await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(
        answer.header("x-countersign-error"),
        Some("token-unavailable")
    );
    let retry: u64 = answer.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry), "Retry-After {retry}");
    assert!(answer.body.contains("500"), "{}", answer.body);
    assert!(
        upstream.received().is_empty(),
        "never forwarded without a key"
    );
    issuer.set_down(false);
    eventually("a key is issued", || issuer.keys().len() == 1).await;
    assert_eq!(call(&sidecar, "/v1/recognize").await.status, 200);
    assert_eq!(upstream.received().len(), 1);
}

#[tokio::test]
async fn a_reload_keeps_an_unchanged_key_and_a_rotated_spw_gets_a_new_one_at_once() {
    let issuer = Issuer::start(Mode::Text, SID, SPW, None).await;
    let api = Api::start(&issuer, KeyIn::Query).await;
    let toml = config(&issuer, &api.url(), &amivoice(300_000, ""));
    let sidecar = start(&toml).await;
    assert_eq!(call(&sidecar, "/a").await.status, 200);
    // Change the route only: the credential and its key stay.
    sidecar.rewrite(&toml.replace(
        "hosts = [\"amivoice.test\"]",
        "hosts = [\"amivoice.test\", \"other.test\"]",
    ));
    sidecar.wait_for_generation(1).await;
    assert_eq!(call(&sidecar, "/b").await.status, 200);
    assert_eq!(issuer.request_count(), 1);
    // A rotated spw (the referenced file changes): a new key at once.
    issuer.set_spw("spw-rotated");
    write_atomically(&sidecar.dir.path().join("spw"), "spw-rotated\n");
    sidecar.wait_for_generation(2).await;
    assert_eq!(call(&sidecar, "/c").await.status, 200);
    assert_eq!(issuer.request_count(), 2);
    assert_eq!(issuer.requests()[1].form["spw"], "spw-rotated");
    assert_eq!(api.last_key(), issuer.keys()[1]);
}

#[tokio::test]
async fn a_401_renews_the_key_and_replays_a_bodyless_request_once() {
    let issuer = Issuer::start(Mode::Text, SID, SPW, None).await;
    let api = Api::start(&issuer, KeyIn::Query).await;
    let sidecar = start(&config(&issuer, &api.url(), &amivoice(300_000, ""))).await;
    assert_eq!(call(&sidecar, "/a").await.status, 200);
    let first = api.last_key();
    issuer.revoke(&first);
    let answer = call(&sidecar, "/b?d=grammar").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let seen = api.seen();
    assert_eq!(seen.len(), 3);
    assert_eq!(
        (seen[1].key.as_deref(), seen[1].status),
        (Some(first.as_str()), 401)
    );
    assert_ne!(api.last_key(), first);
    assert_eq!(
        seen[2].uri.query().map(form_decode).unwrap()["d"],
        "grammar"
    );
    assert_eq!(issuer.request_count(), 2);
    // The fresh key is refused too, right away: the API's 401 goes to the
    // app as it is, and the issuer is not asked again.
    issuer.revoke(&api.last_key());
    let answer = call(&sidecar, "/c").await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.header("x-countersign-error"), None);
    assert_eq!(issuer.request_count(), 2);
}
