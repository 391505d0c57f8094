//! The `hmac` recipes as their providers' own published samples compute
//! them: requests signed by countersign reach a recording upstream, and
//! hmac/verify.mjs recomputes each signature with Node.js's crypto the way
//! LINE Pay's and bitFlyer's Node.js samples (and PayPay's description)
//! do. Bodies cross `spool_memory`.

use base64::Engine as _;

use crate::integration::harness::process::BinarySidecar;
use crate::integration::harness::*;

const RECIPES: [(&str, &str, &str, &str); 3] = [
    (
        "line-pay-v3",
        "api-pay.line.test",
        "1656946528",
        "a917ab6a2367b536f8e5a6e2977e06f4",
    ),
    ("bitflyer", "api.bitflyer.test", "bf-key", "bf-secret"),
    (
        "paypay-opa",
        "api.paypay.test",
        "APIKeyGenerated",
        "APIKeySecretGenerated",
    ),
];

fn config(upstream: &str) -> String {
    let mut toml =
        "[proxy]\nlisten = \"127.0.0.1:0\"\nspool_memory = \"64KiB\"\nspool_dir = \"DIR\"\n"
            .to_string();
    for (recipe, host, key, secret) in RECIPES {
        toml.push_str(&format!(
            "\n[credential.{recipe}]\ntype = \"hmac\"\nrecipe = \"{recipe}\"\napi_key = \"{key}\"\nsecret = \"{secret}\"\n\n[[route]]\nname = \"{recipe}\"\nhosts = [\"{host}\"]\nupstream = \"{upstream}\"\ncredential = \"{recipe}\"\n"
        ));
    }
    toml
}

/// verify.mjs's verdict on `got`, signed with `recipe`: `None` if Node.js
/// agrees, else why not.
fn node_verdict(got: &Recorded, recipe: &str) -> Option<String> {
    let (_, _, key, secret) = RECIPES.iter().find(|r| r.0 == recipe).unwrap();
    let headers: serde_json::Map<String, serde_json::Value> = got
        .headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap().into()))
        .collect();
    let input = serde_json::json!({
        "recipe": recipe,
        "method": got.method.as_str(),
        "path": got.uri.path(),
        "query": got.uri.query().unwrap_or_default(),
        "headers": headers,
        "body": base64::engine::general_purpose::STANDARD.encode(&got.body),
        "secret": secret,
        "api_key": key,
    });
    let verdict = crate::verifier::run(
        "node",
        "tests/interop/hmac/verify.mjs",
        &input,
        "Node.js's own crypto, no package",
    );
    (verdict["ok"] != true).then(|| verdict["why"].to_string())
}

#[tokio::test]
#[ignore = "interop: needs Node.js; run by .ci/run"]
async fn node_computes_the_same_signatures_as_the_providers_samples_do() {
    let upstream = Upstream::http().await;
    let sidecar = BinarySidecar::start(&config(&upstream.http_url())).await;
    for (recipe, host, _, _) in RECIPES {
        let mut requests = vec![get(&format!("http://{host}/v3/things?a=1&b=two"))];
        // A small body, and one past spool_memory (on disk).
        for len in [40, 150 << 10] {
            let body = format!("{{\"blob\":\"{}\"}}", "q".repeat(len));
            requests.push(post(
                &format!("http://{host}/v1/orders"),
                "application/json;charset=UTF-8",
                &body,
            ));
        }
        for req in requests {
            let answer = send(sidecar.proxy(), req).await;
            assert_eq!(answer.status, 200, "{recipe}: {answer:?}");
            let got = upstream.last();
            if let Some(why) = node_verdict(&got, recipe) {
                panic!("{recipe} {} {}: {why}", got.method, got.uri);
            }
        }
        // The control: Node.js refuses a changed body.
        let mut changed = upstream.last();
        changed.body[3] ^= 1;
        assert!(
            node_verdict(&changed, recipe).is_some(),
            "{recipe}: a changed body passed"
        );
    }
}
