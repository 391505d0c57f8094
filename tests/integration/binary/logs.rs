//! What `run` writes to its log: JSON lines with the request fields, and
//! no secret at trace level.

use super::*;
use std::net::SocketAddr;

/// A forward proxy with route `r` for `api.test` to `upstream`.
fn one_route(upstream: &Upstream) -> String {
    format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\n[[route]]\nname = \"r\"\nhosts = [\"api.test\"]\nupstream = \"{}\"\n",
        upstream.http_url()
    )
}

#[test]
fn json_logs_are_one_object_per_line_with_request_fields() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let upstream = rt.block_on(Upstream::http());
    let dir = tempfile::tempdir().unwrap();
    let toml = one_route(&upstream);
    let mut p = Process::start_with(
        &write_config(dir.path(), &toml),
        &["--log-format", "json"],
        &[],
    );
    let line = p.wait_for("\"listening\"");
    let listening: serde_json::Value = serde_json::from_str(&line).unwrap();
    let proxy: SocketAddr = match listening["role"].as_str() {
        Some("forward proxy") => listening["local"].as_str().unwrap().parse().unwrap(),
        _ => {
            let line = p.wait_for("forward proxy");
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            v["local"].as_str().unwrap().parse().unwrap()
        }
    };
    let answer = rt.block_on(send(
        proxy,
        post("http://api.test/x", "text/plain", "12345"),
    ));
    assert_eq!(answer.status, 200);
    let line = p.wait_for("\"request\"");
    let record: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(record["route"], "r");
    assert_eq!(record["method"], "POST");
    assert_eq!(record["host"], "api.test");
    assert_eq!(record["status"], 200);
    assert_eq!(record["bytes_in"], 5);
    assert_eq!(
        record["upstream"],
        format!("127.0.0.1:{}", upstream.addr.port())
    );
    assert!(record["duration_ms"].is_u64());
    for seen in &p.seen {
        serde_json::from_str::<serde_json::Value>(seen)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {seen}"));
    }
}

/// A full run at `trace` level (PayPay HMAC, header credentials, mutual
/// TLS, an intercepted HTTPS_PROXY request, a reload) must not write any
/// secret, in any form, to the log.
#[test]
fn trace_logs_never_contain_a_secret() {
    const PAYPAY_SECRET: &str = "paypay-secret-Zq81";
    const BEARER: &str = "bearer-token-Xv55";
    const PASSWORD: &str = "basic-password-Kp02";
    const CLIENT_SECRET: &str = "client-secret-Rw73";
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (tokens, api) = rt.block_on(async {
        use crate::oauth2::{Api, ClientCheck, TokenServer};
        let tokens =
            TokenServer::start(&[("c", ClientCheck::Basic(CLIENT_SECRET.into()))], 300, &[]).await;
        let api = Api::start(&tokens).await;
        (tokens, api)
    });
    let (server_ca, clients) = (TestCa::new(), TestCa::new());
    let plain = rt.block_on(Upstream::http());
    let mtls = rt.block_on(Upstream::https_mtls(&server_ca, &clients));
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = clients.client_cert("trace-client", 30);
    std::fs::write(dir.path().join("client.pem"), &cert).unwrap();
    std::fs::write(dir.path().join("client-key.pem"), &key).unwrap();
    std::fs::write(dir.path().join("paypay_secret"), PAYPAY_SECRET).unwrap();
    let ca_file = server_ca.write_ca(dir.path());
    countersign::pki::ca::init(&dir.path().join("ca")).unwrap();
    let app_ca = std::fs::read_to_string(dir.path().join("ca/ca.pem")).unwrap();
    let toml = format!(
        r#"
[proxy]
listen = "127.0.0.1:0"
[intercept]
ca_cert = "ca/ca.pem"
ca_key = "ca/ca-key.pem"
[credential.paypay]
type = "paypay-opa"
api_key = "key-1"
api_secret = "${{file:paypay_secret}}"
[credential.bearer]
type = "header"
bearer = "{BEARER}"
[credential.basic]
type = "header"
basic = {{ username = "svc", password = "{PASSWORD}" }}
[credential.oauth]
type = "oauth2"
token_url = "{token_url}"
grant = "client_credentials"
client_id = "c"
client_secret = "{CLIENT_SECRET}"
[[route]]
name = "oauth"
hosts = ["oauth.test"]
upstream = "{api}"
credential = "oauth"
[[route]]
name = "paypay"
hosts = ["paypay.test"]
upstream = "{plain}"
credential = "paypay"
[[route]]
name = "bearer"
hosts = ["bearer.test"]
upstream = "{plain}"
credential = "bearer"
[[route]]
name = "basic-mtls"
hosts = ["bank.test"]
upstream = "{mtls}"
ca_file = "{ca}"
client_cert = "client.pem"
client_key = "client-key.pem"
credential = "basic"
"#,
        plain = plain.http_url(),
        mtls = mtls.https_url(),
        ca = ca_file.display(),
        token_url = tokens.url(),
        api = api.url()
    );
    let config = write_config(dir.path(), &toml);
    let mut p = Process::start(&config, &[("RUST_LOG", "trace")]);
    let proxy = p.listening("forward");
    rt.block_on(async {
        assert_eq!(
            send(
                proxy,
                post("http://paypay.test/v2/codes", "application/json", "{}")
            )
            .await
            .status,
            200
        );
        assert_eq!(send(proxy, get("http://bearer.test/")).await.status, 200);
        assert_eq!(send(proxy, get("http://bank.test/")).await.status, 200);
        assert_eq!(send(proxy, get("http://oauth.test/")).await.status, 200);
        let tunnel = connect_tunnel(proxy, "bearer.test:443").await.unwrap();
        let mut req = get("/inside");
        req.headers_mut()
            .insert("host", "bearer.test".parse().unwrap());
        assert_eq!(
            https_over(tunnel, "bearer.test", &app_ca, req)
                .await
                .unwrap()
                .status,
            200
        );
    });
    assert_eq!(mtls.last().peer.as_deref(), Some("trace-client"));
    // A reload re-reads every secret too.
    std::fs::write(
        &config,
        std::fs::read_to_string(&config).unwrap() + "\n# touched\n",
    )
    .unwrap();
    p.wait_for("config reloaded");
    p.signal("-TERM");
    let (_, lines) = p.wait_exit();
    let log = lines.join("\n");
    assert!(
        log.contains("TRACE") || log.contains("DEBUG"),
        "the run logged at trace level"
    );
    let basic = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("svc:{PASSWORD}"),
    );
    let key_body = key.lines().nth(1).unwrap().to_string();
    let issued = tokens.issued();
    assert!(!issued.is_empty());
    let fixed = [
        PAYPAY_SECRET,
        BEARER,
        PASSWORD,
        CLIENT_SECRET,
        basic.as_str(),
        key_body.as_str(),
    ];
    for secret in fixed
        .iter()
        .copied()
        .chain(issued.iter().map(String::as_str))
    {
        assert!(!log.contains(secret), "the log holds a secret ({secret})");
    }
}

/// `RUST_LOG` with spaces around it still filters (tracing-subscriber alone
/// takes " info" for a target and logs nothing), and one that does not
/// parse is reported and replaced by `info` rather than silencing the log.
#[test]
fn rust_log_is_trimmed_and_a_bad_one_is_reported() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let upstream = rt.block_on(Upstream::http());
    let dir = tempfile::tempdir().unwrap();
    let toml = one_route(&upstream);
    let config = write_config(dir.path(), &toml);
    for (value, reported) in [(" info ", false), ("info,[", true)] {
        let mut p = Process::start(&config, &[("RUST_LOG", value)]);
        let proxy = p.listening("forward");
        let answer = rt.block_on(send(proxy, get("http://api.test/x")));
        assert_eq!(answer.status, 200);
        p.wait_for("request");
        p.signal("-TERM");
        let (_, lines) = p.wait_exit();
        let warned = lines.iter().any(|l| l.contains("is not a log filter"));
        assert_eq!(warned, reported, "RUST_LOG={value:?}: {lines:#?}");
    }
}
