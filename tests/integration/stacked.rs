//! A route that stacks credentials (`credential = ["key", "paypay"]`):
//! the static API key and PayPay's signature both reach the upstream, the
//! body is read once (in memory or spooled to disk past spool_memory) and
//! the signature over it verifies.

use crate::harness::*;

const KEY: &str = "APIKeyGenerated";
const SECRET: &str = "APIKeySecretGenerated";

fn config(upstream: &str) -> String {
    format!(
        r#"
[proxy]
listen = "127.0.0.1:0"
spool_dir = "DIR"
spool_memory = "64KiB"

[credential.key]
type = "header"
headers = {{ "X-Api-Key" = "static-key" }}

[credential.paypay]
type = "paypay-opa"
api_key = "{KEY}"
api_secret = "{SECRET}"

[[route]]
name = "stacked"
hosts = ["api.paypay.test"]
upstream = "{upstream}"
credential = ["key", "paypay"]
"#
    )
}

#[tokio::test]
async fn a_stacked_api_key_and_paypay_signature_both_arrive_and_verify() {
    let upstream = Upstream::http().await;
    let sidecar = Sidecar::start(&config(&upstream.http_url())).await;
    for len in [0usize, 100, 200 << 10] {
        let body = format!("{{\"pad\":\"{}\"}}", "p".repeat(len));
        let answer = send(
            sidecar.proxy(),
            post("http://api.paypay.test/v2/codes", "application/json", &body),
        )
        .await;
        assert_eq!(answer.status, 200, "{answer:?}");
        let got = upstream.last();
        assert_eq!(got.body, body.as_bytes());
        assert_eq!(got.header("x-api-key"), Some("static-key"));
        verify_opa(&got, KEY, SECRET).unwrap();
    }
    // The app's own Authorization and X-Api-Key are replaced, never passed on.
    let mut req = post("http://api.paypay.test/v2/codes", "application/json", "{}");
    req.headers_mut()
        .insert("x-api-key", "the-apps".parse().unwrap());
    req.headers_mut()
        .insert("authorization", "Bearer the-apps".parse().unwrap());
    assert_eq!(send(sidecar.proxy(), req).await.status, 200);
    let got = upstream.last();
    assert_eq!(got.headers.get_all("x-api-key").iter().count(), 1);
    assert_eq!(got.header("x-api-key"), Some("static-key"));
    verify_opa(&got, KEY, SECRET).unwrap();
}
