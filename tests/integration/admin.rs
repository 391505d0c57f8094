//! The admin listener: probes, Prometheus metrics that move with traffic,
//! a status page that never shows a secret, and reload with its problems.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::harness::*;

mod audiences;

const SECRET_KEY: &str = "sk-live-do-not-leak-4417";
const SECRET_PASSWORD: &str = "pw-do-not-leak-9931";

fn config(upstream: &str) -> String {
    format!(
        r#"
[proxy]
listen = "127.0.0.1:0"

[admin]
listen = "127.0.0.1:0"
control_listen = "127.0.0.1:0"
browser_listen = "127.0.0.1:0"

[credential.api]
type = "header"
required = true
headers = {{ "X-Api-Key" = "{SECRET_KEY}" }}

[credential.basic]
type = "header"
basic = {{ username = "svc", password = "{SECRET_PASSWORD}" }}

[[route]]
name = "api"
hosts = ["api.example.test"]
upstream = "{upstream}"
credential = "api"
"#
    )
}

/// A probe on the admin listener; `/status` on the controls'.
async fn admin_get(sidecar: &Sidecar, path: &str) -> Answer {
    let req = http::Request::get(path)
        .header("host", "admin")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let to = if path == "/status" {
        sidecar.control()
    } else {
        sidecar.probes()
    };
    send(to, req).await
}

/// Parses Prometheus text exposition strictly enough to catch malformed
/// output: every line is a comment or `name{labels} value`.
fn parse_prometheus(text: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        assert!(
            !line.is_empty() && !line.starts_with('#'),
            "unexpected line {line:?}"
        );
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value in {line:?}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line:?}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "unclosed labels in {line:?}");
            for pair in series[name_end + 1..series.len() - 1].split("\",") {
                let (k, v) = pair
                    .split_once("=\"")
                    .unwrap_or_else(|| panic!("bad label in {line:?}"));
                assert!(
                    k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "bad label name in {line:?}"
                );
                assert!(!v.trim_end_matches('"').contains('\n'));
            }
        }
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        assert!(
            samples.insert(series.to_string(), value).is_none(),
            "duplicate series {series}"
        );
    }
    samples
}

#[tokio::test]
async fn probes_answer() {
    let upstream = Upstream::http().await;
    let sidecar = Sidecar::start(&config(&upstream.http_url())).await;
    let health = admin_get(&sidecar, "/healthz").await;
    assert_eq!(
        (health.status.as_u16(), health.body.as_str()),
        (200, "ok\n")
    );
    let ready = admin_get(&sidecar, "/readyz").await;
    assert_eq!(
        ready.status, 200,
        "static credentials are ready at once: {}",
        ready.body
    );
    let missing = admin_get(&sidecar, "/nope").await;
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("/metrics"));
}

#[tokio::test]
async fn metrics_parse_and_move_with_traffic() {
    let upstream = Upstream::http().await;
    let sidecar = Sidecar::start(&config(&upstream.http_url())).await;
    let ok = r#"countersign_requests_total{route="api",method="GET",status="200"}"#;
    let denied = r#"countersign_errors_total{reason="no-route"}"#;
    let bytes_out = r#"countersign_response_body_bytes_total{route="api"}"#;
    let before = parse_prometheus(&admin_get(&sidecar, "/metrics").await.body);
    for _ in 0..3 {
        send(sidecar.proxy(), get("http://api.example.test/x")).await;
    }
    send(sidecar.proxy(), get("http://unrouted.test/")).await;
    let counted = || async {
        let after = parse_prometheus(&admin_get(&sidecar, "/metrics").await.body);
        match after.get(ok) {
            Some(n) if *n >= 3.0 => Ok(after),
            _ => Err(format!("{after:#?}")),
        }
    };
    let after = eventually_async("three requests counted", Duration::from_secs(10), counted).await;
    let moved = |series: &str| {
        after.get(series).copied().unwrap_or(0.0) - before.get(series).copied().unwrap_or(0.0)
    };
    assert_eq!(moved(ok), 3.0, "{after:#?}");
    assert_eq!(moved(denied), 1.0, "{after:#?}");
    assert!(moved(bytes_out) > 0.0);
    assert_eq!(
        after[r#"countersign_upstream_duration_seconds_count{route="api"}"#],
        3.0
    );
    assert_eq!(after["countersign_config_generation"], 1.0);
    assert_eq!(
        after[r#"countersign_credential_ready{credential="api",type="header"}"#],
        1.0
    );
}

#[tokio::test]
async fn status_describes_routes_and_credentials_without_secrets() {
    let upstream = Upstream::http().await;
    let sidecar = Sidecar::start(&config(&upstream.http_url())).await;
    let answer = admin_get(&sidecar, "/status").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    for secret in [SECRET_KEY, SECRET_PASSWORD, "c3ZjOnB3LWRvLW5vdC1sZWFr"] {
        assert!(
            !answer.body.contains(secret),
            "status leaks a secret: {}",
            answer.body
        );
    }
    let status: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(status["generation"], 1);
    assert_eq!(status["routes"][0]["name"], "api");
    assert_eq!(status["routes"][0]["credential"], "api");
    let creds = status["credentials"].as_array().unwrap();
    assert_eq!(creds.len(), 2);
    assert_eq!(creds[0]["name"], "api");
    assert_eq!(creds[0]["required"], true);
    assert_eq!(creds[0]["state"], "ready");
}

#[tokio::test]
async fn post_reload_reports_problems_and_applies_a_good_config() {
    let upstream = Upstream::http().await;
    let sidecar = Sidecar::start(&config(&upstream.http_url())).await;
    let reload = || async {
        let req = http::Request::post("/reload")
            .header("host", "admin")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        send(sidecar.control(), req).await
    };
    // Write the broken file without waking the watcher's reload first: the
    // explicit call must report the problems itself.
    sidecar.rewrite(
        &config(&upstream.http_url()).replace("upstream = ", "upstream = \"ftp://x\"\n# "),
    );
    let answer = reload().await;
    assert_eq!(answer.status, 422, "{}", answer.body);
    let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(body["problems"][0]["path"], "route[0].upstream");
    let status: serde_json::Value =
        serde_json::from_str(&admin_get(&sidecar, "/status").await.body).unwrap();
    assert_eq!(status["generation"], 1);
    assert_eq!(status["last_reload_error"][0]["path"], "route[0].upstream");

    sidecar.rewrite(&config(&upstream.http_url()));
    let answer = reload().await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert!(body["generation"].as_u64().unwrap() >= 2);
}

/// `/readyz` is a latch on the required credential's first token: 503
/// while the token endpoint holds its answer, 200 once a token arrives.
/// Token metrics and status follow, without the token itself.
#[tokio::test]
async fn readyz_waits_for_the_first_token_of_a_required_credential() {
    use crate::oauth2::{Api, ClientCheck, TokenServer};
    let tokens = TokenServer::start(&[("c", ClientCheck::Basic("s".into()))], 300, &[]).await;
    tokens.hold();
    let api = Api::start(&tokens).await;
    let toml = format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\n[credential.bank]\ntype = \"oauth2\"\nrequired = true\ntoken_url = \"{}\"\ngrant = \"client_credentials\"\nclient_id = \"c\"\nclient_secret = \"s\"\n[[route]]\nname = \"bank\"\nhosts = [\"bank.test\"]\nupstream = \"{}\"\ncredential = \"bank\"\n",
        tokens.url(),
        api.url()
    );
    let sidecar = Sidecar::start(&toml).await;
    let waiting = admin_get(&sidecar, "/readyz").await;
    assert_eq!(waiting.status, 503, "{}", waiting.body);
    assert!(waiting.body.contains("bank"), "{}", waiting.body);

    tokens.release();
    let ready = || async {
        let ready = admin_get(&sidecar, "/readyz").await;
        match ready.status {
            http::StatusCode::OK => Ok(()),
            _ => Err(ready.body),
        }
    };
    eventually_async("/readyz says 200", Duration::from_secs(10), ready).await;

    let metrics = parse_prometheus(&admin_get(&sidecar, "/metrics").await.body);
    assert_eq!(
        metrics[r#"countersign_token_fetches_total{credential="bank",result="ok"}"#],
        1.0
    );
    let expiry = metrics[r#"countersign_token_expiry_seconds{credential="bank"}"#];
    assert!(expiry > 250.0 && expiry <= 300.0, "{expiry}");
    let status = admin_get(&sidecar, "/status").await.body;
    for token in tokens.issued() {
        assert!(!status.contains(&token), "status shows a token");
    }
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["credentials"][0]["state"], "ready");
    assert_eq!(status["credentials"][0]["token"]["fetches_ok"], 1);
}
