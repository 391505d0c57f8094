//! Issued keys shared by a fleet through `[store]`: three countersigns on
//! one Redis ask the issuer once per key lifetime between them (the lease
//! holder issues and publishes, the others take the published key), and a
//! key the API refuses is renewed once, by one of them, for all.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::*;
use crate::handler_server::form_decode;

fn fleet_config(issuer: &Issuer, api: &Api, redis: &RedisServer) -> String {
    let store = format!(
        "[store]\nurl = \"{}\"\nkey_prefix = \"cs-issued:\"\ntimeout = \"500ms\"\n",
        redis.url()
    );
    // 3 s keys: usable for 2.7 s (the default margin is a tenth), renewed
    // at 0.6 of that.
    let credential = amivoice(3_000, "refresh_at = 0.6");
    format!("{store}{}", config(issuer, &api.url(), &credential))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_countersigns_share_one_issued_key_per_lifetime() {
    let redis = RedisServer::start();
    let issuer = Issuer::start(Mode::Text, SID, SPW, None).await;
    let api = Api::start(&issuer, KeyIn::Query).await;
    let toml = fleet_config(&issuer, &api, &redis);
    let fleet = [start(&toml).await, start(&toml).await, start(&toml).await];
    for (i, s) in fleet.iter().enumerate() {
        let answer = call(s, &format!("/v1/recognize?n={i}")).await;
        assert_eq!(answer.status, 200, "{answer:?}");
    }
    let first = issuer.keys();
    assert_eq!(first.len(), 1, "one key for the three: {first:?}");

    // Requests spread over the three for 8 s: each key is issued once for
    // the fleet, not once per countersign.
    let started = Instant::now();
    let (mut ok, mut failed) = (0, Vec::new());
    let mut n = 0;
    while started.elapsed() < Duration::from_secs(8) {
        let answer = call(&fleet[n % 3], &format!("/v1/recognize?n={n}")).await;
        match answer.status.as_u16() {
            200 => ok += 1,
            other => failed.push(other),
        }
        n += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = started.elapsed().as_secs_f64();
    let issued = issuer.request_count();
    // One issue per renewal period (0.6 of 2.7 s, at the earliest 0.9 of
    // that with jitter), plus the first; three countersigns renewing on
    // their own would make three times as many.
    let periods = (took / (2.7 * 0.6 * 0.9)).ceil() as usize;
    eprintln!(
        "3 countersigns: {issued} keys issued in {took:.1}s ({periods} renewal periods), {ok} requests ok, {} failed",
        failed.len()
    );
    assert!(failed.is_empty(), "failed requests: {failed:?}");
    assert!(ok > 100, "load ran: {ok}");
    assert!(issued >= 3, "keys were renewed: {issued}");
    assert!(
        issued <= periods + 2,
        "{issued} keys issued for {periods} renewal periods"
    );
    // Every key the API saw was used by more than one countersign: the
    // requests of each key came through at least two of them.
    let seen = api.seen();
    let keys: HashSet<String> = seen.iter().filter_map(|s| s.key.clone()).collect();
    for key in &keys {
        let through: HashSet<String> = seen
            .iter()
            .filter(|s| s.key.as_deref() == Some(key.as_str()))
            .filter_map(|s| {
                let n: usize = form_decode(s.uri.query()?).get("n")?.parse().ok()?;
                Some((n % 3).to_string())
            })
            .collect();
        let uses = seen
            .iter()
            .filter(|s| s.key.as_deref() == Some(key.as_str()))
            .count();
        assert!(
            through.len() >= 2 || uses < 3,
            "key used by one countersign only ({uses} requests)"
        );
    }

    // The API refuses the current key: the countersign that sent it renews
    // it (one issue request) and the others take the new key.
    let before = issuer.request_count();
    let current = issuer.keys().last().cloned().unwrap();
    issuer.revoke(&current);
    let answer = call(&fleet[0], "/v1/recognize?n=0").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let renewed = issuer.keys().last().cloned().unwrap();
    assert_ne!(renewed, current);
    for (i, s) in fleet.iter().enumerate().skip(1) {
        eventually_async(
            "the others serve the renewed key",
            Duration::from_secs(5),
            || async {
                let from = api.seen().len();
                let answer = call(s, &format!("/v1/recognize?n={i}")).await;
                let key = api.seen()[from..].iter().find_map(|s| s.key.clone());
                match (answer.status.as_u16(), key) {
                    (200, Some(k)) if k == renewed => Ok(()),
                    (status, key) => Err(format!("{status} with {key:?}")),
                }
            },
        )
        .await;
    }
    let after = issuer.request_count() - before;
    assert!(after <= 2, "{after} issue requests after one refusal");
}
