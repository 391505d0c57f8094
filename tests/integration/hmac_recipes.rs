//! `hmac` through the forward proxy: what arrives upstream verifies the way
//! each provider describes its check, recomputed here from what arrived.
//! The PayPay recipe is checked by the same `verify_opa` as `paypay-opa`.
//! Bodies cross `spool_memory` (64 KiB here).

use base64::Engine as _;
use hmac::Mac as _;

use crate::harness::*;

const LINE_SECRET: &str = "a917ab6a2367b536f8e5a6e2977e06f4";
const BF_SECRET: &str = "bitflyer-secret";

fn config(upstream: &str) -> String {
    format!(
        r#"
[proxy]
listen = "127.0.0.1:0"
spool_memory = "64KiB"
spool_dir = "DIR"

[credential.paypay]
type = "hmac"
recipe = "paypay-opa"
api_key = "APIKeyGenerated"
secret = "APIKeySecretGenerated"

[credential.line-pay]
type = "hmac"
recipe = "line-pay-v3"
api_key = "1656946528"
secret = "{LINE_SECRET}"

[credential.bitflyer]
type = "hmac"
recipe = "bitflyer"
api_key = "bf-key"
secret = "{BF_SECRET}"

[credential.paypay-builtin]
type = "paypay-opa"
api_key = "APIKeyGenerated"
api_secret = "APIKeySecretGenerated"

[[route]]
name = "stacked"
hosts = ["stacked.test"]
upstream = "{upstream}"
credential = ["line-pay", "paypay-builtin"]

[[route]]
name = "paypay"
hosts = ["api.paypay.test"]
upstream = "{upstream}"
credential = "paypay"

[[route]]
name = "line-pay"
hosts = ["api-pay.line.test"]
upstream = "{upstream}"
credential = "line-pay"

[[route]]
name = "bitflyer"
hosts = ["api.bitflyer.test"]
upstream = "{upstream}"
credential = "bitflyer"
"#
    )
}

fn hmac_sha256(key: &str, message: &[u8]) -> Vec<u8> {
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    m.update(message);
    m.finalize().into_bytes().to_vec()
}

/// LINE Pay's check (https://developers-pay.line.me/online/pre-requisites):
/// Base64(HMAC-SHA256(secret, secret + path + (GET: query, POST: body) +
/// nonce)), the nonce from its header.
fn verify_line_pay(r: &Recorded) -> Result<(), String> {
    let nonce = r.header("x-line-authorization-nonce").ok_or("no nonce")?;
    if r.header("x-line-channelid") != Some("1656946528") {
        return Err(format!("channel id {:?}", r.header("x-line-channelid")));
    }
    let mut message = format!("{LINE_SECRET}{}", r.uri.path()).into_bytes();
    if r.method == http::Method::GET {
        message.extend_from_slice(r.uri.query().unwrap_or_default().as_bytes());
    } else {
        message.extend_from_slice(&r.body);
    }
    message.extend_from_slice(nonce.as_bytes());
    let expected =
        base64::engine::general_purpose::STANDARD.encode(hmac_sha256(LINE_SECRET, &message));
    match r.header("x-line-authorization") {
        Some(got) if got == expected => Ok(()),
        got => Err(format!("signature {got:?}, recomputed {expected}")),
    }
}

/// bitFlyer's check (https://lightning.bitflyer.com/docs#authentication):
/// hex HMAC-SHA256(secret, ACCESS-TIMESTAMP + method + path?query + body),
/// and a timestamp near now.
fn verify_bitflyer(r: &Recorded) -> Result<(), String> {
    let time = r.header("access-timestamp").ok_or("no timestamp")?;
    let target = r.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut text = format!("{time}{}{target}", r.method).into_bytes();
    text.extend_from_slice(&r.body);
    let expected: String = hmac_sha256(BF_SECRET, &text)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if r.header("access-sign") != Some(expected.as_str()) {
        return Err(format!(
            "sign {:?}, recomputed {expected}",
            r.header("access-sign")
        ));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let ms: u64 = time.parse().map_err(|_| "timestamp is not a number")?;
    if now.abs_diff(ms) > 120_000 {
        return Err(format!("timestamp {ms} is not near {now}"));
    }
    Ok(())
}

/// A JSON body of about `len` bytes.
fn json(len: usize) -> String {
    format!("{{\"blob\":\"{}\"}}", "x".repeat(len))
}

#[tokio::test]
async fn the_paypay_recipe_verifies_as_paypay_checks_it_across_the_spool_boundary() {
    let upstream = Upstream::http().await;
    let sidecar = Sidecar::start(&config(&upstream.http_url())).await;
    let answer = send(
        sidecar.proxy(),
        get("http://api.paypay.test/v2/codes/payments/m-1?x=1"),
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let got = upstream.last();
    assert!(got.header("authorization").unwrap().ends_with(":empty"));
    verify_opa(&got, "APIKeyGenerated", "APIKeySecretGenerated").unwrap();
    for len in [10, (64 << 10) - 20, 200 << 10] {
        let body = json(len);
        let answer = send(
            sidecar.proxy(),
            post(
                "http://api.paypay.test/v2/codes",
                "application/json;charset=UTF-8;",
                &body,
            ),
        )
        .await;
        assert_eq!(answer.status, 200, "{answer:?}");
        let got = upstream.last();
        assert_eq!(got.body, body.as_bytes());
        verify_opa(&got, "APIKeyGenerated", "APIKeySecretGenerated").unwrap();
    }
    // The control: a changed body no longer verifies.
    let mut changed = upstream.last();
    changed.opa_md5 = "1B2M2Y8AsgTpgAmY7PhCfg==".into();
    assert!(verify_opa(&changed, "APIKeyGenerated", "APIKeySecretGenerated").is_err());
}

#[tokio::test]
async fn line_pay_and_bitflyer_verify_as_they_describe_their_checks() {
    let upstream = Upstream::http().await;
    let sidecar = Sidecar::start(&config(&upstream.http_url())).await;
    let mut requests = vec![get(
        "http://api-pay.line.test/v3/payments?orderId=o-1&transactionId=2024",
    )];
    for len in [100, 300 << 10] {
        requests.push(post(
            "http://api-pay.line.test/v3/payments/request",
            "application/json",
            &json(len),
        ));
    }
    for mut req in requests {
        // What the app sent in the signed headers is replaced.
        req.headers_mut()
            .insert("x-line-authorization", "forged".parse().unwrap());
        let answer = send(sidecar.proxy(), req).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        let got = upstream.last();
        assert_eq!(
            got.headers.get_all("x-line-authorization").iter().count(),
            1
        );
        verify_line_pay(&got).unwrap();
    }
    let nonces: std::collections::BTreeSet<String> = upstream
        .received()
        .iter()
        .map(|r| r.header("x-line-authorization-nonce").unwrap().to_string())
        .collect();
    assert_eq!(nonces.len(), 3, "a fresh nonce each time: {nonces:?}");

    let requests = vec![
        get("http://api.bitflyer.test/v1/me/getchildorders?product_code=BTC_JPY&count=5"),
        post(
            "http://api.bitflyer.test/v1/me/sendchildorder",
            "application/json",
            &json(50),
        ),
        post(
            "http://api.bitflyer.test/v1/me/sendchildorder",
            "application/json",
            &json(100 << 10),
        ),
    ];
    for req in requests {
        let answer = send(sidecar.proxy(), req).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        let got = upstream.last();
        assert_eq!(got.header("access-key"), Some("bf-key"));
        verify_bitflyer(&got).unwrap();
    }
    // The controls: another path, or a changed body, no longer verifies.
    let mut moved = upstream.last();
    moved.uri = "/v1/me/cancelchildorder".parse().unwrap();
    assert!(verify_bitflyer(&moved).is_err());
    let mut changed = upstream.received()[1].clone();
    changed.body[5] ^= 1;
    assert!(verify_line_pay(&changed).is_err());
}

#[tokio::test]
async fn a_signed_content_type_missing_is_refused_before_the_upstream() {
    let upstream = Upstream::http().await;
    let sidecar = Sidecar::start(&config(&upstream.http_url())).await;
    let req = http::Request::post("http://api.paypay.test/v2/codes")
        .body(http_body_util::Full::new(bytes::Bytes::from("{}")))
        .unwrap();
    let answer = send(sidecar.proxy(), req).await;
    assert_eq!(answer.status, 400);
    assert_eq!(
        answer.header("x-countersign-error"),
        Some("unsignable-request")
    );
    assert!(upstream.received().is_empty());
}

/// Two credentials that both sign the body, stacked: one pass over it
/// feeds PayPay's MD5 and LINE Pay's HMAC, and both verify.
#[tokio::test]
async fn stacked_with_paypay_opa_both_sign_the_same_body_in_one_pass() {
    let gate = gate::Gate::new();
    let upstream = Upstream::http_with(Behaviour {
        gate: Some(gate.clone()),
        ..Behaviour::default()
    })
    .await;
    let sidecar = Sidecar::start(&config(&upstream.http_url())).await;
    for len in [30, 100 << 10] {
        let body = json(len);
        // The upstream holds its answer, so the request, and its spool,
        // are still there to be looked at once the upstream has the body.
        gate.hold();
        let proxy = sidecar.proxy();
        let request = post(
            "http://stacked.test/v3/payments/request",
            "application/json",
            &body,
        );
        let exchange = tokio::spawn(async move { send(proxy, request).await });
        let seen = upstream.received().len();
        eventually("the upstream has the body", || {
            upstream.received().len() > seen
        })
        .await;
        // Read and spooled once for both credentials: the spool holds the
        // body's length once (64 KiB in memory, the rest on disk), and
        // past spool_memory there is one spool file, not one a signer.
        let metrics = send(sidecar.probes(), get("/metrics")).await.body;
        let gauge = |series: &str| {
            metrics
                .lines()
                .find_map(|l| {
                    l.strip_prefix(series)?
                        .strip_prefix(' ')?
                        .parse::<u64>()
                        .ok()
                })
                .unwrap_or(0)
        };
        let memory = gauge("countersign_spool_bytes{where=\"memory\"}");
        let disk = gauge("countersign_spool_bytes{where=\"disk\"}");
        assert_eq!(memory + disk, body.len() as u64, "{metrics}");
        let files = open_files_in(sidecar.dir.path());
        let expected_files = usize::from(body.len() > 64 << 10);
        assert_eq!(files, expected_files, "spool files for a {len}-byte body");
        gate.release();
        let answer = exchange.await.unwrap();
        assert_eq!(answer.status, 200, "{answer:?}");
        let got = upstream.last();
        assert_eq!(got.body, body.as_bytes());
        verify_line_pay(&got).unwrap();
        verify_opa(&got, "APIKeyGenerated", "APIKeySecretGenerated").unwrap();
    }
}
