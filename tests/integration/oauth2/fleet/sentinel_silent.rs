//! A lease is used only on a primary a Sentinel names after the lease was
//! won. Right after a failover the old primary keeps taking writes until
//! the Sentinels demote it; a renewal whose Sentinels do not answer in time
//! (a Sentinel overloaded, or cut off) could win a lease and publish a
//! token there, lost when the demotion resyncs it from the new primary.
//! Here the Sentinel is paused right after a failover, so the old primary
//! stays undemoted and unvouched for while a renewal is due.

use std::time::Duration;

use tokio::task::block_in_place;

use crate::harness::*;
use crate::oauth2::{call, ClientCheck, TokenServer};

const PUBLISHED: &str = "cs-silent:token:grant:bank";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lease_is_not_used_while_no_sentinel_names_its_primary() {
    let set = block_in_place(|| SentinelSet::start(1));
    let tokens = TokenServer::start(&[("c", ClientCheck::Basic("s".into()))], 300, &[]).await;
    let api = crate::oauth2::Api::start(&tokens).await;
    let store = format!(
        "[store]\nsentinels = [\"{}\"]\nsentinel_master = \"{MASTER}\"\nsentinel_password = \"{SENTINEL_PASSWORD}\"\npassword = \"{DATA_PASSWORD}\"\nkey_prefix = \"cs-silent:\"\ntimeout = \"500ms\"\n",
        set.sentinel_addrs()[0],
    );
    let credential = "grant = \"client_credentials\"\nclient_id = \"c\"\nclient_secret = \"s\"\n";
    let toml = format!(
        "{store}{}",
        crate::oauth2::config(&tokens, &api, credential)
    );
    let a = Sidecar::start(&toml).await;
    assert_eq!(call(&a, "/a").await.status, 200);
    let first = set.primary_port();
    let generation = |port: u16| block_in_place(|| set.cli(port, &["HGET", PUBLISHED, "g"]));
    assert_eq!(generation(first).trim(), "1");

    // Failed over, and the Sentinel silent before it demotes the old
    // primary: `a` still uses the old one, which takes writes.
    let second = block_in_place(|| set.failover());
    block_in_place(|| set.pause_sentinels());
    tokens.revoke(&tokens.issued()[0]);
    call(&a, "/a2").await;
    eventually_async(
        "a's renewal fails: no Sentinel names the primary of its lease",
        Duration::from_secs(30),
        || async {
            let status = status_of(&a).await;
            if status.contains("no Sentinel answered") {
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
        "no token requested under a lease no Sentinel vouched for"
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

/// `/status` of `sidecar`, as text.
async fn status_of(sidecar: &Sidecar) -> String {
    let req = http::Request::get("/status")
        .header("host", "admin")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    send(sidecar.control(), req).await.body
}
