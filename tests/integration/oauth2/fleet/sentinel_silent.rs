//! A lease is used only on a primary something vouches for after the lease
//! was won: a Sentinel naming it, or while none answers, its replicas
//! acknowledging the lease (`WAIT`). Right after a failover the old primary
//! keeps taking writes until the Sentinels demote it; a renewal whose
//! Sentinels do not answer in time (a Sentinel overloaded, or cut off)
//! could win a lease and publish a token there, lost when the demotion
//! resyncs it from the new primary; but its replicas were taken away from
//! it. Without a failover, silent Sentinels stop nothing: the primary
//! keeps its replicas.

use std::time::Duration;

use tokio::task::block_in_place;

use crate::harness::*;
use crate::oauth2::{call, ClientCheck, TokenServer};

const PUBLISHED: &str = "cs-silent:token:grant:bank";

/// A countersign on a one-Sentinel set, its token served (generation 1);
/// `extra` is added to its `[store]`.
async fn started(
    set: &SentinelSet,
    tokens: &TokenServer,
    extra: &str,
) -> (Sidecar, crate::oauth2::Api) {
    let api = crate::oauth2::Api::start(tokens).await;
    let store = format!(
        "[store]\n{extra}sentinels = [\"{}\"]\nsentinel_master = \"{MASTER}\"\nsentinel_password = \"{SENTINEL_PASSWORD}\"\npassword = \"{DATA_PASSWORD}\"\nkey_prefix = \"cs-silent:\"\ntimeout = \"500ms\"\n",
        set.sentinel_addrs()[0],
    );
    let credential = "grant = \"client_credentials\"\nclient_id = \"c\"\nclient_secret = \"s\"\n";
    let toml = format!("{store}{}", crate::oauth2::config(tokens, &api, credential));
    let a = Sidecar::start(&toml).await;
    assert_eq!(call(&a, "/a").await.status, 200);
    let g = block_in_place(|| set.cli(set.primary_port(), &["HGET", PUBLISHED, "g"]));
    assert_eq!(g.trim(), "1");
    (a, api)
}

/// Waits (up to 30 s) until a request on `path` through `a` is served and
/// the primary on `primary` holds the renewal (generation 2).
async fn renewed(a: &Sidecar, set: &SentinelSet, primary: u16, path: &str, what: &str) {
    eventually_async(what, Duration::from_secs(30), || async {
        let status = call(a, path).await.status.as_u16();
        let g = block_in_place(|| set.cli(primary, &["HGET", PUBLISHED, "g"]));
        if status == 200 && g.trim() == "2" {
            Ok(())
        } else {
            Err(format!(
                "{status}, generation {g:?}; {}",
                status_of(a).await
            ))
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lease_is_not_used_on_a_replaced_primary_while_no_sentinel_answers() {
    let set = block_in_place(|| SentinelSet::start(1));
    let tokens = TokenServer::start(&[("c", ClientCheck::Basic("s".into()))], 300, &[]).await;
    let (a, _api) = started(&set, &tokens, "").await;
    let first = set.primary_port();
    let generation = |port: u16| block_in_place(|| set.cli(port, &["HGET", PUBLISHED, "g"]));

    // Failed over, and the Sentinel silent once the old primary's replicas
    // have left it, before it is demoted: `a` still uses the old one,
    // which takes writes. (If the Sentinel demotes it first, `a`'s writes
    // there fail and it finds no primary: the other status below.)
    let second = block_in_place(|| set.failover());
    eventually("the old primary's replicas have left it", || {
        block_in_place(|| set.cli(first, &["INFO", "replication"])).contains("connected_slaves:0")
    })
    .await;
    block_in_place(|| set.pause_sentinels());
    let released = block_in_place(|| deletes(&set, first));
    tokens.revoke(&tokens.issued()[0]);
    call(&a, "/a2").await;
    eventually_async(
        "a's renewal fails: nothing vouches for the primary of its lease",
        Duration::from_secs(30),
        || async {
            let status = status_of(&a).await;
            let unacknowledged = "replicas of store.wait_replicas acknowledged it";
            if status.contains(unacknowledged) {
                // The lease was given back (its script deleted it), so it
                // holds up no next attempt there.
                assert!(block_in_place(|| deletes(&set, first)) > released);
                Ok(())
            } else if status.contains("no Sentinel named a reachable primary") {
                Ok(())
            } else {
                Err(status)
            }
        },
    )
    .await;
    assert_eq!(
        tokens.request_count(),
        1,
        "no token requested under a lease nothing vouched for"
    );
    assert_eq!(
        generation(first).trim(),
        "1",
        "nothing published on the replaced primary"
    );

    // The Sentinel answers again: the renewal goes to the new primary.
    block_in_place(|| set.resume_sentinels());
    eventually_async(
        "a renews through the new primary",
        Duration::from_secs(30),
        || async {
            let status = call(&a, "/a3").await.status.as_u16();
            let g = generation(second);
            if status == 200 && g.trim() == "2" {
                Ok(())
            } else {
                Err(format!("{status}, generation {g:?} on the new primary"))
            }
        },
    )
    .await;
    assert_eq!(tokens.request_count(), 2, "renewed once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn silent_sentinels_stop_no_renewal_on_a_primary_that_keeps_its_replicas() {
    let set = block_in_place(|| SentinelSet::start(1));
    let tokens = TokenServer::start(&[("c", ClientCheck::Basic("s".into()))], 300, &[]).await;
    let (a, _api) = started(&set, &tokens, "").await;
    let primary = set.primary_port();

    // Only the Sentinel is out: the primary and its replicas are healthy.
    block_in_place(|| set.pause_sentinels());
    tokens.revoke(&tokens.issued()[0]);
    renewed(
        &a,
        &set,
        primary,
        "/a2",
        "a renews through the primary its replicas vouch for",
    )
    .await;
    assert_eq!(tokens.request_count(), 2, "renewed once");
    block_in_place(|| set.resume_sentinels());
}

/// With only the Sentinels silent, a primary its replicas left gets its
/// lease refused; that is no outage of the store: `local_fallback` does not
/// fetch (every replica would fetch its own token at each attempt), and the
/// lease given back holds up nothing once the replicas are back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unvouched_lease_is_retried_not_fetched_around() {
    let set = block_in_place(|| SentinelSet::start(1));
    let tokens = TokenServer::start(&[("c", ClientCheck::Basic("s".into()))], 300, &[]).await;
    let (a, _api) = started(&set, &tokens, "local_fallback = true\n").await;
    let primary = set.primary_port();
    let replicas = block_in_place(|| replicas_of(&set, primary));
    assert_eq!(replicas.len(), 2, "{replicas:?}");

    block_in_place(|| {
        set.pause_sentinels();
        for r in &replicas {
            set.cli(*r, &["REPLICAOF", "NO", "ONE"]);
        }
    });
    eventually("the replicas have left the primary", || {
        block_in_place(|| set.cli(primary, &["INFO", "replication"])).contains("connected_slaves:0")
    })
    .await;
    tokens.revoke(&tokens.issued()[0]);
    call(&a, "/a2").await;
    eventually_async(
        "a's lease is refused: no Sentinel answers and no replica acknowledges it",
        Duration::from_secs(30),
        || async {
            let status = status_of(&a).await;
            if status.contains("replicas of store.wait_replicas acknowledged it") {
                Ok(())
            } else {
                Err(status)
            }
        },
    )
    .await;
    assert_eq!(
        tokens.request_count(),
        1,
        "no token fetched locally for a lease refused"
    );

    let port = primary.to_string();
    block_in_place(|| {
        for r in &replicas {
            set.cli(*r, &["REPLICAOF", "127.0.0.1", &port]);
        }
    });
    renewed(
        &a,
        &set,
        primary,
        "/a3",
        "a renews once the replicas acknowledge its lease",
    )
    .await;
    assert_eq!(tokens.request_count(), 2, "renewed once, under the lease");
    block_in_place(|| set.resume_sentinels());
}

/// One Sentinel of three answering is not a majority: its word alone does
/// not vouch for a lease (it may be behind, or cut off with an old
/// primary), and the replicas are asked. Here they cannot all acknowledge
/// (`wait_replicas` above the two there are), so the lease is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_sentinel_of_three_does_not_vouch_for_a_lease() {
    let set = block_in_place(|| SentinelSet::start(1));
    let tokens = TokenServer::start(&[("c", ClientCheck::Basic("s".into()))], 300, &[]).await;
    let api = crate::oauth2::Api::start(&tokens).await;
    let store = format!(
        "[store]\nsentinels = [\"{}\", \"127.0.0.1:1\", \"127.0.0.1:2\"]\nsentinel_master = \"{MASTER}\"\nsentinel_password = \"{SENTINEL_PASSWORD}\"\npassword = \"{DATA_PASSWORD}\"\nkey_prefix = \"cs-silent:\"\ntimeout = \"500ms\"\nwait_replicas = 3\n",
        set.sentinel_addrs()[0],
    );
    let credential = "grant = \"client_credentials\"\nclient_id = \"c\"\nclient_secret = \"s\"\n";
    let a = Sidecar::start(&format!(
        "{store}{}",
        crate::oauth2::config(&tokens, &api, credential)
    ))
    .await;
    call(&a, "/a").await;
    eventually_async(
        "a's lease is refused: one Sentinel of three, two replicas of three",
        Duration::from_secs(30),
        || async {
            let status = status_of(&a).await;
            if status.contains("only 1 of the 3 Sentinels answered") {
                Ok(())
            } else {
                Err(status)
            }
        },
    )
    .await;
    assert_eq!(tokens.request_count(), 0, "no token requested");
}

/// The ports of the replicas connected to data node `port`.
fn replicas_of(set: &SentinelSet, port: u16) -> Vec<u16> {
    set.cli(port, &["INFO", "replication"])
        .lines()
        .filter(|l| l.starts_with("slave"))
        .filter_map(|l| l.split(",port=").nth(1)?.split(',').next()?.parse().ok())
        .collect()
}

/// How many `DEL`s data node `port` ran (the lease's release script
/// deletes it with one).
fn deletes(set: &SentinelSet, port: u16) -> u64 {
    let stats = set.cli(port, &["INFO", "commandstats"]);
    stats
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_del:calls="))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// `/status` of `sidecar`, as text.
async fn status_of(sidecar: &Sidecar) -> String {
    let req = http::Request::get("/status")
        .header("host", "admin")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    send(sidecar.control(), req).await.body
}
