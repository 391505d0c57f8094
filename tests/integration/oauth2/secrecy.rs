//! No client secret, key, access token, refresh token or assertion ever
//! reaches a log line (at trace level) or a `Debug` output, through a full
//! run: every client auth method, rotations, failures, a 401 and a 503.

use super::*;
use crate::trace_capture::TraceCapture;

const BASIC_SECRET: &str = "basic-secret-7Hq2";
const POST_SECRET: &str = "post-secret-Zx81";
const SEED: &str = "rt-seed-Kp93";
const STORE_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn two_routes_config(tokens: &TokenServer, api: &Api) -> String {
    let credential = |name: &str, keys: &str| {
        format!(
            "[credential.{name}]\ntype = \"oauth2\"\ntoken_url = \"{}\"\nwait_for_token = \"300ms\"\n{keys}\n",
            tokens.url()
        )
    };
    let route = |name: &str| {
        format!(
            "[[route]]\nname = \"{name}\"\nhosts = [\"{name}.test\"]\nupstream = \"{}\"\ncredential = \"{name}\"\n",
            api.url()
        )
    };
    [
        "[proxy]\nlisten = \"127.0.0.1:0\"\nresponse_timeout = \"1s\"\n".to_string(),
        credential(
            "bank",
            &format!("grant = \"refresh_token\"\nclient_id = \"basic-client\"\nclient_secret = \"{BASIC_SECRET}\"\nrefresh_token = \"{SEED}\"\ntoken_store = \"bank.store\"\nstore_key = \"{STORE_KEY}\"\nrefresh_at = 0.5"),
        ),
        credential(
            "pay",
            &format!("grant = \"client_credentials\"\nclient_id = \"post-client\"\nclient_secret = \"{POST_SECRET}\"\nclient_auth = \"client_secret_post\""),
        ),
        credential(
            "jwt",
            "grant = \"client_credentials\"\nclient_id = \"jwt-client\"\nclient_auth = \"private_key_jwt\"\nprivate_key_file = \"key.pem\"\nsigning_alg = \"ES256\"\nassertion_audience = \"https://as.test\"",
        ),
        route("bank"),
        route("pay"),
        route("jwt"),
    ]
    .concat()
}

async fn call_host(sidecar: &Sidecar, host: &str) -> Answer {
    send(sidecar.proxy(), get(&format!("http://{host}/x"))).await
}

#[tokio::test]
async fn no_secret_or_token_reaches_the_logs_at_trace_level() {
    let capture = TraceCapture::install();

    let clients = [
        ("basic-client", ClientCheck::Basic(BASIC_SECRET.into())),
        ("post-client", ClientCheck::Post(POST_SECRET.into())),
        (
            "jwt-client",
            ClientCheck::Jwt(
                public_key(EC_KEY, "ES256"),
                "ES256",
                "https://as.test".into(),
            ),
        ),
    ];
    let tokens = TokenServer::start(&clients, 2, &[SEED]).await;
    let api = Api::start(&tokens).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key.pem"), EC_KEY).unwrap();
    let sidecar = Sidecar::start_in(dir, &two_routes_config(&tokens, &api)).await;

    for host in ["bank.test", "pay.test", "jwt.test"] {
        assert_eq!(call_host(&sidecar, host).await.status, 200, "{host}");
    }
    // A 401 and its replay.
    tokens.revoke(&last_token(&api));
    assert_eq!(call_host(&sidecar, "jwt.test").await.status, 200);
    // Rotations, some of them failing.
    tokens.fail_next(&[Failure::Garbage, Failure::Status500]);
    let before = tokens.request_count();
    eventually("renewals, rotations and failures", || {
        tokens.request_count() >= before + 8
    })
    .await;
    // An outage long enough for a 503.
    tokens.set_down(true);
    let issued = tokens.issued();
    eventually("every token expired", || {
        issued.iter().all(|t| tokens.expired(t))
    })
    .await;
    assert_eq!(call_host(&sidecar, "pay.test").await.status, 503);
    let snapshot_debug = format!("{:?}", sidecar.app.snapshot());

    let logs = capture.text();
    assert!(logs.contains("OAuth2 token obtained"), "the run was logged");
    assert!(
        logs.contains("OAuth2 token fetch failed"),
        "failures were logged"
    );
    assert!(logs.contains("token-unavailable"), "the 503 was logged");
    let mut secrets: Vec<String> = vec![BASIC_SECRET.into(), POST_SECRET.into(), STORE_KEY.into()];
    secrets.extend(tokens.issued());
    secrets.extend(tokens.refresh_tokens());
    for r in tokens.requests() {
        secrets.extend(r.form.get("client_assertion").cloned());
        secrets.extend(r.authorization.clone());
    }
    // A line from the middle of the private key.
    secrets.push(EC_KEY.lines().nth(2).unwrap().to_string());
    assert!(secrets.len() > 20, "{} secrets checked", secrets.len());
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret is in the logs:\n{logs}"
        );
        assert!(
            !snapshot_debug.contains(secret.as_str()),
            "a secret is in Debug output"
        );
    }
}
