//! HTTP/2 to upstreams that offer it by ALPN: the upstream sees h2 with the
//! route's authority, concurrent requests share one connection per client
//! identity, `http2 = false` and http/1.1-only upstreams get HTTP/1.1, and
//! signed requests (PayPay, aws-sigv4 spooled and streamed) verify against
//! what arrived (`signed.rs`). `refusing.rs`: the resend rules for h2's
//! own failures.

mod h2_upstream;
mod refusing;
mod signed;

use http::Version;

use crate::harness::*;

const KEY: &str = "APIKeyGenerated";
const SECRET: &str = "APIKeySecretGenerated";

/// One route `r` to `upstream` (trusting `ca_file`) plus `extra` keys, and
/// a PayPay credential the route may name.
fn config(upstream: &Upstream, ca_file: &std::path::Path, extra: &str) -> String {
    format!(
        r#"
[proxy]
listen = "127.0.0.1:0"
spool_dir = "DIR"

[credential.paypay]
type = "paypay-opa"
api_key = "{KEY}"
api_secret = "{SECRET}"

[[route]]
name = "r"
hosts = ["api.test"]
upstream = "{}"
ca_file = "{}"
{extra}
"#,
        upstream.https_url(),
        ca_file.display()
    )
}

async fn start(upstream: &Upstream, ca: &TestCa, extra: &str) -> Sidecar {
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_ca(dir.path());
    Sidecar::start_in(dir, &config(upstream, &ca_file, extra)).await
}

/// The value of one series on `/metrics`, 0 if absent.
async fn metric(sidecar: &Sidecar, series: &str) -> f64 {
    let req = http::Request::get("/metrics")
        .header("host", "admin")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let text = send(sidecar.probes(), req).await.body;
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

const OPENED_H2: &str = r#"countersign_upstream_connections_opened_total{protocol="h2"}"#;
const OPENED_H1: &str = r#"countersign_upstream_connections_opened_total{protocol="http/1.1"}"#;

#[tokio::test]
async fn an_h2_upstream_gets_http2_with_the_routes_authority_and_one_connection() {
    let ca = TestCa::new();
    let upstream = Upstream::https_h2(&ca).await;
    let sidecar = start(&upstream, &ca, "").await;

    let answer = send(sidecar.proxy(), get("http://api.test/v1/items?x=1")).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.header("x-upstream"), Some("yes"));
    assert_eq!(answer.body, "upstream saw 0 bytes");
    let got = upstream.last();
    assert_eq!(got.version, Version::HTTP_2);
    // :authority is the route's upstream authority (what credentials
    // signed as Host), and no Host header rides beside it.
    let authority = format!("localhost:{}", upstream.addr.port());
    assert_eq!(got.uri.authority().map(|a| a.as_str()), Some(&*authority));
    assert_eq!(got.uri.scheme_str(), Some("https"));
    assert_eq!(got.uri.path_and_query().unwrap().as_str(), "/v1/items?x=1");
    assert_eq!(got.header("host"), None);
    for hop in [
        "connection",
        "keep-alive",
        "transfer-encoding",
        "upgrade",
        "te",
    ] {
        assert!(got.header(hop).is_none(), "{hop} went out on h2");
    }

    // 20 requests at once, each on its own app connection: one upstream
    // connection carries them all.
    let proxy = sidecar.proxy();
    let all: Vec<_> = (0..20)
        .map(|i| {
            tokio::spawn(async move { send(proxy, get(&format!("http://api.test/{i}"))).await })
        })
        .collect();
    for one in all {
        assert_eq!(one.await.unwrap().status, 200);
    }
    assert_eq!(upstream.connections(), 1);
    let received = upstream.received();
    assert_eq!(received.len(), 21);
    assert!(received
        .iter()
        .all(|r| r.connection == 1 && r.version == Version::HTTP_2));
    assert_eq!(metric(&sidecar, OPENED_H2).await, 1.0);
    assert_eq!(metric(&sidecar, OPENED_H1).await, 0.0);
}

#[tokio::test]
async fn http2_off_and_an_http1_only_upstream_both_get_http1() {
    let ca = TestCa::new();
    let offers_h2 = Upstream::https_h2(&ca).await;
    let off = start(&offers_h2, &ca, "http2 = false").await;
    for _ in 0..2 {
        assert_eq!(send(off.proxy(), get("http://api.test/")).await.status, 200);
    }
    assert_eq!(offers_h2.last().version, Version::HTTP_11);
    assert_eq!(metric(&off, OPENED_H1).await, 1.0);
    assert_eq!(metric(&off, OPENED_H2).await, 0.0);

    let only_h1 = Upstream::https_alpn(ca.server_config(), &[b"http/1.1"]).await;
    let on = start(&only_h1, &ca, "").await;
    let answer = send(on.proxy(), get("http://api.test/")).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let got = only_h1.last();
    assert_eq!(got.version, Version::HTTP_11);
    // Host, left to the connection, is the route's authority.
    let authority = format!("localhost:{}", only_h1.addr.port());
    assert_eq!(got.header("host"), Some(&*authority));
    assert_eq!(metric(&on, OPENED_H1).await, 1.0);
}

#[tokio::test]
async fn two_client_identities_to_one_h2_upstream_ride_two_connections() {
    let (server_ca, clients) = (TestCa::new(), TestCa::new());
    let upstream = Upstream::https_alpn(
        server_ca.server_config_requiring(&clients),
        &[b"h2", b"http/1.1"],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = server_ca.write_ca(dir.path());
    for cn in ["alice", "bob"] {
        let (cert, key) = clients.client_cert(cn, 30);
        write_atomically(&dir.path().join(format!("{cn}.pem")), &cert);
        write_atomically(&dir.path().join(format!("{cn}-key.pem")), &key);
    }
    let route = |cn: &str| {
        format!(
            "[[route]]\nname = \"{cn}\"\nhosts = [\"{cn}.test\"]\nupstream = \"{}\"\nca_file = \"{}\"\nclient_cert = \"{cn}.pem\"\nclient_key = \"{cn}-key.pem\"\n",
            upstream.https_url(),
            ca_file.display()
        )
    };
    let toml = format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\n{}{}",
        route("alice"),
        route("bob")
    );
    let sidecar = Sidecar::start_in(dir, &toml).await;
    let proxy = sidecar.proxy();
    let all: Vec<_> = (0..10)
        .map(|i| {
            let who = if i % 2 == 0 { "alice" } else { "bob" };
            tokio::spawn(async move { send(proxy, get(&format!("http://{who}.test/{i}"))).await })
        })
        .collect();
    for one in all {
        assert_eq!(one.await.unwrap().status, 200);
    }
    // A cold burst may dial several connections before ALPN says h2
    // (hyper-util then drops the extra ones); the requests ride one per
    // identity, and each connection presented one identity only.
    let received = upstream.received();
    assert!(received.iter().all(|r| r.version == Version::HTTP_2));
    let mut used = std::collections::BTreeMap::new();
    for r in &received {
        let who = r.peer.clone().unwrap();
        let host_of_path = if r
            .uri
            .path()
            .trim_start_matches('/')
            .parse::<usize>()
            .unwrap()
            % 2
            == 0
        {
            "alice"
        } else {
            "bob"
        };
        assert_eq!(
            who, host_of_path,
            "a request went out under the wrong identity"
        );
        assert_eq!(
            used.insert(r.connection, who.clone())
                .unwrap_or(who.clone()),
            who
        );
    }
    assert_eq!(used.len(), 2, "{used:?}");
    // Warm: one more of each rides the connection its identity has.
    let before = upstream.connections();
    send(proxy, get("http://alice.test/10")).await;
    send(proxy, get("http://bob.test/11")).await;
    assert_eq!(upstream.connections(), before);
}

#[tokio::test]
async fn turning_http2_off_by_reload_takes_the_next_request_to_http1() {
    let ca = TestCa::new();
    let upstream = Upstream::https_h2(&ca).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_ca(dir.path());
    let sidecar = Sidecar::start_in(dir, &config(&upstream, &ca_file, "")).await;
    send(sidecar.proxy(), get("http://api.test/")).await;
    assert_eq!(upstream.last().version, Version::HTTP_2);

    let generation = *sidecar.app.generations().borrow();
    sidecar.rewrite(&config(&upstream, &ca_file, "http2 = false"));
    sidecar.wait_for_generation(generation).await;
    let answer = send(sidecar.proxy(), get("http://api.test/")).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(upstream.last().version, Version::HTTP_11);
    assert_eq!(upstream.connections(), 2);
}
