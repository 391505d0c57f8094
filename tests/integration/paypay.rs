//! PayPay OPA-Auth through the forward proxy: what arrives upstream verifies.

use crate::harness::*;

const KEY: &str = "APIKeyGenerated";
const SECRET: &str = "APIKeySecretGenerated";

fn config(upstream: &str, extra_route_keys: &str) -> String {
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
name = "paypay"
hosts = ["api.paypay.test"]
upstream = "{upstream}"
credential = "paypay"
headers = {{ "X-ASSUME-MERCHANT" = "merchant-42" }}
{extra_route_keys}
"#
    )
}

const BODY: &str = r#"{"merchantPaymentId":"m-1","amount":{"amount":1,"currency":"JPY"}}"#;

#[tokio::test]
async fn post_through_the_forward_proxy_arrives_signed() {
    let upstream = Upstream::http().await;
    let sidecar = Sidecar::start(&config(&upstream.http_url(), "")).await;
    let req = post(
        "http://api.paypay.test/v2/codes",
        "application/json;charset=UTF-8;",
        BODY,
    );
    let answer = send(sidecar.proxy(), req).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.header("x-upstream"), Some("yes"));
    let got = upstream.last();
    assert_eq!(got.uri.path(), "/v2/codes");
    assert_eq!(got.body, BODY.as_bytes());
    assert_eq!(
        got.header("content-type"),
        Some("application/json;charset=UTF-8;")
    );
    assert_eq!(got.header("x-assume-merchant"), Some("merchant-42"));
    verify_opa(&got, KEY, SECRET).unwrap();
}

#[tokio::test]
async fn plain_http_app_request_reaches_a_tls_upstream_signed() {
    let ca = TestCa::new();
    let upstream = Upstream::https(&ca).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_ca(dir.path());
    let extra = format!("ca_file = \"{}\"", ca_file.display());
    let sidecar = Sidecar::start_in(dir, &config(&upstream.https_url(), &extra)).await;
    let answer = send(
        sidecar.proxy(),
        post("http://api.paypay.test/v2/codes", "application/json", BODY),
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let got = upstream.last();
    assert_eq!(
        got.header("host"),
        Some(&*format!("localhost:{}", upstream.addr.port()))
    );
    verify_opa(&got, KEY, SECRET).unwrap();
}

#[tokio::test]
async fn get_without_body_signs_empty() {
    let upstream = Upstream::http().await;
    let sidecar = Sidecar::start(&config(&upstream.http_url(), "")).await;
    let answer = send(
        sidecar.proxy(),
        get("http://api.paypay.test/v2/codes/payments/m-1"),
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let got = upstream.last();
    assert_eq!(got.body_len, 0);
    let auth = got.header("authorization").unwrap();
    assert!(auth.ends_with(":empty"), "{auth}");
    verify_opa(&got, KEY, SECRET).unwrap();
}

#[tokio::test]
async fn query_string_is_forwarded_but_not_signed() {
    let upstream = Upstream::http().await;
    let sidecar = Sidecar::start(&config(&upstream.http_url(), "")).await;
    let url = "http://api.paypay.test/v2/payments?agreeSimilarTransaction=true";
    let answer = send(sidecar.proxy(), post(url, "application/json", BODY)).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let got = upstream.last();
    assert_eq!(got.uri.query(), Some("agreeSimilarTransaction=true"));
    // verify_opa signs uri.path(), which excludes the query: it must match.
    verify_opa(&got, KEY, SECRET).unwrap();
}

#[tokio::test]
async fn an_app_supplied_authorization_is_replaced_not_duplicated() {
    let upstream = Upstream::http().await;
    let sidecar = Sidecar::start(&config(&upstream.http_url(), "")).await;
    let mut req = post("http://api.paypay.test/v2/codes", "application/json", BODY);
    req.headers_mut()
        .insert("authorization", "Bearer app-made-this-up".parse().unwrap());
    req.headers_mut()
        .insert("x-assume-merchant", "app-value".parse().unwrap());
    let answer = send(sidecar.proxy(), req).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let got = upstream.last();
    assert_eq!(got.headers.get_all("authorization").iter().count(), 1);
    assert_eq!(got.headers.get_all("x-assume-merchant").iter().count(), 1);
    assert_eq!(got.header("x-assume-merchant"), Some("merchant-42"));
    verify_opa(&got, KEY, SECRET).unwrap();
}

#[tokio::test]
async fn a_body_without_or_with_two_content_types_is_refused_before_reaching_upstream() {
    let upstream = Upstream::http().await;
    let sidecar = Sidecar::start(&config(&upstream.http_url(), "")).await;
    let req = http::Request::post("http://api.paypay.test/v2/codes")
        .body(http_body_util::Full::new(bytes::Bytes::from(BODY)))
        .unwrap();
    let answer = send(sidecar.proxy(), req).await;
    assert_eq!(answer.status, 400);
    assert_eq!(
        answer.header("x-countersign-error"),
        Some("unsignable-request")
    );
    assert!(answer.body.contains("Content-Type"), "{}", answer.body);
    // Two Content-Types: only one could be signed, and the upstream might
    // read the other.
    let req = http::Request::post("http://api.paypay.test/v2/codes")
        .header("content-type", "application/json")
        .header("content-type", "text/plain")
        .body(http_body_util::Full::new(bytes::Bytes::from(BODY)))
        .unwrap();
    let answer = send(sidecar.proxy(), req).await;
    assert_eq!(answer.status, 400);
    assert!(answer.body.contains("several"), "{}", answer.body);
    assert!(upstream.received().is_empty());
}

#[tokio::test]
async fn signing_survives_a_body_spooled_to_disk() {
    let upstream = Upstream::http().await;
    let toml = config(&upstream.http_url(), "")
        .replace("spool_dir", "spool_memory = \"64KiB\"\nspool_dir");
    let sidecar = Sidecar::start(&toml).await;
    let big = format!("{{\"blob\":\"{}\"}}", "x".repeat(3 << 20));
    let answer = send(
        sidecar.proxy(),
        post("http://api.paypay.test/v2/files", "application/json", &big),
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let got = upstream.last();
    assert_eq!(got.body_len, big.len() as u64);
    assert_eq!(got.header("content-length"), Some(&*big.len().to_string()));
    verify_opa(&got, KEY, SECRET).unwrap();
}
