//! Three compiled countersigns that find their store's primary through real
//! Redis Sentinels (`store.sentinels`, each side with its own password):
//! they share one rotating grant, and
//! when the Sentinels fail over (on request, then because the primary was
//! killed) each follows the new primary and renewal goes on, with no
//! refresh token presented twice.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::task::block_in_place;

use super::processes::{all_serve, call_at, load, no_reuse, start, Replica};
use crate::harness::*;
use crate::oauth2::{Api, ClientCheck, TokenServer};

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const GRANT: &str = "cs-sentinel:grant:bank";

fn config(tokens: &TokenServer, api: &Api, sentinels: &[String]) -> String {
    let list: Vec<String> = sentinels.iter().map(|s| format!("\"{s}\"")).collect();
    format!(
        r#"
[proxy]
listen = "127.0.0.1:0"
connect_timeout = "1s"
response_timeout = "1s"

[store]
sentinels = [{list}]
sentinel_master = "{MASTER}"
sentinel_password = "{SENTINEL_PASSWORD}"
password = "{DATA_PASSWORD}"
key_prefix = "cs-sentinel:"
store_key = "{KEY}"
timeout = "500ms"
wait_replicas = 1
unsaved_grace = "30s"

[credential.bank]
type = "oauth2"
token_url = "{token_url}"
grant = "refresh_token"
client_id = "c"
client_secret = "s"
refresh_token = "rt-seed"
refresh_at = 0.6

[[route]]
name = "bank"
hosts = ["bank.test"]
upstream = "{api}"
credential = "bank"
"#,
        list = list.join(", "),
        token_url = tokens.url(),
        api = api.url(),
    )
}

/// The grant's version on data node `port` (0: none there).
fn version_on(set: &SentinelSet, port: u16) -> u64 {
    set.cli(port, &["HGET", GRANT, "v"])
        .trim()
        .parse()
        .unwrap_or(0)
}

/// Until `more` renewals past `from` reached the token server, the grant's
/// version on the primary `port` passed `past`, and every replica serves.
async fn renewals_go_on(
    tokens: &TokenServer,
    set: &SentinelSet,
    port: u16,
    past: u64,
    fleet: &[Replica],
) {
    let from = tokens.request_count();
    eventually_async("renewals go on", Duration::from_secs(40), || {
        let n = tokens.request_count();
        std::future::ready(if n >= from + 3 { Ok(()) } else { Err(n) })
    })
    .await;
    eventually_async(
        "the new primary holds newer versions of the grant",
        Duration::from_secs(20),
        || {
            let v = block_in_place(|| version_on(set, port));
            std::future::ready(if v > past { Ok(()) } else { Err(v) })
        },
    )
    .await;
    for r in fleet {
        eventually_async("every replica serves", Duration::from_secs(30), || async {
            match call_at(r.proxy).await {
                200 => Ok(()),
                other => Err(other),
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_find_the_primary_through_sentinels_and_follow_each_failover() {
    let mut set = block_in_place(|| SentinelSet::start(2));
    let tokens =
        TokenServer::start(&[("c", ClientCheck::Basic("s".into()))], 3, &["rt-seed"]).await;
    let api = Api::start(&tokens).await;
    // A Sentinel that is not there comes first: each is asked in turn.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut sentinels = vec![dead.to_string()];
    sentinels.extend(set.sentinel_addrs());
    let toml = config(&tokens, &api, &sentinels);
    let mut fleet = block_in_place(|| start(&toml, 3));
    all_serve(&fleet).await;
    let proxies: Vec<SocketAddr> = fleet.iter().map(|r| r.proxy).collect();

    // Shared through the primary the Sentinels name: one grant there,
    // renewed once per period fleet-wide.
    let first = set.primary_port();
    let before = tokens.request_count();
    let (ok, failed) = load(&proxies, Duration::from_secs(5)).await;
    assert!(failed.is_empty(), "failed requests: {failed:?}");
    assert!(ok > 50, "load ran: {ok}");
    let renewed = tokens.request_count() - before;
    assert!(
        renewed <= 5,
        "{renewed} token requests in 5 s of 3 s tokens"
    );
    let v1 = block_in_place(|| version_on(&set, first));
    assert!(v1 > 0, "the grant is on the primary the Sentinels name");

    // A failover on request: the old primary is demoted (its clients are
    // disconnected), a replica promoted.
    let asked = std::time::Instant::now();
    let second = block_in_place(|| set.failover());
    eprintln!(
        "failed over from port {first} to {second} in {:?}",
        asked.elapsed()
    );
    renewals_go_on(&tokens, &set, second, v1, &fleet).await;
    eprintln!(
        "renewing on {second} again {:?} after the failover was asked",
        asked.elapsed()
    );
    let v2 = block_in_place(|| version_on(&set, second));

    // The primary killed: the Sentinels promote another replica after
    // their down-after time.
    let killed = std::time::Instant::now();
    let third = block_in_place(|| set.kill_primary());
    eprintln!(
        "primary on port {second} killed; the Sentinels promoted {third} after {:?}",
        killed.elapsed()
    );
    renewals_go_on(&tokens, &set, third, v2, &fleet).await;
    eprintln!(
        "renewing on {third} again {:?} after the kill",
        killed.elapsed()
    );

    no_reuse(&tokens, None);
    // Each replica says which primary it uses, and moved to the last one.
    let now_at = format!("127.0.0.1:{third}");
    let presented: Vec<String> = tokens
        .requests()
        .iter()
        .filter_map(|r| r.form.get("refresh_token").cloned())
        .collect();
    for r in &mut fleet {
        let lines = r.p.drain_lines();
        for l in lines.iter().filter(|l| l.contains("Sentinel")) {
            eprintln!("{l}");
        }
        assert!(
            lines
                .iter()
                .any(|l| l.contains("the Sentinels name this primary") && l.contains(&now_at)),
            "no replica log names {now_at}: {lines:#?}"
        );
        assert!(
            !lines.iter().any(|l| l.contains(KEY)
                || l.contains(DATA_PASSWORD)
                || l.contains(SENTINEL_PASSWORD)
                || presented.iter().any(|t| l.contains(t.as_str()))),
            "a log line holds a secret"
        );
    }
}

/// Everything over TLS with client certificates (`tls = true`, `ca_file`,
/// `client_cert`, `client_key`): two countersigns in this process find the
/// primary through a TLS Sentinel, share one client_credentials token, and
/// after a failover publish the renewed one on the new primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sentinels_and_the_primary_over_tls_with_a_client_certificate() {
    let ca = TestCa::new();
    let set = block_in_place(|| SentinelSet::start_tls(1, &ca));
    let files = set.tls_files();
    let tokens = TokenServer::start(&[("c", ClientCheck::Basic("s".into()))], 300, &[]).await;
    let api = Api::start(&tokens).await;
    let store = format!(
        "[store]\nsentinels = [\"{}\"]\nsentinel_master = \"{MASTER}\"\nsentinel_password = \"{SENTINEL_PASSWORD}\"\npassword = \"{DATA_PASSWORD}\"\ntls = true\nca_file = \"{}\"\nclient_cert = \"{}\"\nclient_key = \"{}\"\nkey_prefix = \"cs-tls:\"\ntimeout = \"1s\"\n",
        set.sentinel_addrs()[0],
        files.ca.display(),
        files.client_cert.display(),
        files.client_key.display(),
    );
    let credential = "grant = \"client_credentials\"\nclient_id = \"c\"\nclient_secret = \"s\"\n";
    let toml = format!(
        "{store}{}",
        crate::oauth2::config(&tokens, &api, credential)
    );
    let a = Sidecar::start(&toml).await;
    assert_eq!(crate::oauth2::call(&a, "/a").await.status, 200);
    let b = Sidecar::start(&toml).await;
    assert_eq!(crate::oauth2::call(&b, "/b").await.status, 200);
    assert_eq!(tokens.request_count(), 1, "b took a's token");
    let published = "cs-tls:token:grant:bank";
    let first = set.primary_port();
    assert_eq!(
        block_in_place(|| set.cli(first, &["HGET", published, "g"])).trim(),
        "1"
    );

    // After a failover, a refused token is renewed once and published on
    // the new primary, and the other countersign serves it.
    let second = block_in_place(|| set.failover());
    tokens.revoke(&tokens.issued()[0]);
    eventually_async(
        "a renews through the new primary",
        Duration::from_secs(30),
        || async {
            let status = crate::oauth2::call(&a, "/a2").await.status.as_u16();
            let g = block_in_place(|| set.cli(second, &["HGET", published, "g"]));
            if status == 200 && g.trim() == "2" {
                Ok(())
            } else {
                Err(format!(
                    "{status}, generation {g:?} on the new primary, {} token requests",
                    tokens.request_count()
                ))
            }
        },
    )
    .await;
    eventually_async(
        "b serves the renewed token",
        Duration::from_secs(10),
        || async {
            match crate::oauth2::call(&b, "/b2").await.status.as_u16() {
                200 => Ok(()),
                other => Err(other),
            }
        },
    )
    .await;
    assert_eq!(tokens.request_count(), 2, "one renewal for the two");
}
