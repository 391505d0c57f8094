//! The recipes against their providers' published descriptions, computed
//! here in one shot from those descriptions (not through the template
//! engine), and the PayPay recipe against the built-in `paypay-opa`.

use super::*;

const PAYPAY_BODY: &str = r#"{"sampleRequestBodyKey1":"sampleRequestBodyValue1","sampleRequestBodyKey2":"sampleRequestBodyValue2"}"#;

/// PayPay's published example (SCHEMES.md section 1), through the recipe.
#[test]
fn the_paypay_recipe_gives_paypays_published_example() {
    let c = cred("recipe = \"paypay-opa\"\napi_key = \"APIKeyGenerated\"\nsecret = \"APIKeySecretGenerated\"\n");
    let p = parts(
        "POST",
        "https://h/v2/codes",
        Some("application/json;charset=UTF-8;"),
    );
    let p = run(
        &c,
        p,
        PAYPAY_BODY.as_bytes(),
        7,
        &params("acd028", 1579843452),
    );
    assert_eq!(
        header(&p, "authorization"),
        "hmac OPA-Auth:APIKeyGenerated:NW1jKIMnzR7tEhMWtcJcaef+nFVBt7jjAGcVuxHhchc=:acd028:1579843452:1j0FnY4flNp5CtIKa7x9MQ=="
    );
}

/// The recipe and the built-in credential write the same header for the
/// same time and nonce: a GET without a body, a DELETE with a
/// Content-Type but no body, a POST whose body is not all one chunk, and
/// a 3 MiB body (past any spool_memory; the spool itself is
/// tests/integration's).
#[test]
fn the_paypay_recipe_writes_exactly_what_paypay_opa_writes() {
    let c = cred("recipe = \"paypay-opa\"\napi_key = \"k-1\"\nsecret = \"s3cret\"\n");
    let built_in = PayPayOpa::new(Secret::new("k-1"), Secret::new("s3cret"), 8);
    let big = format!("{{\"blob\":\"{}\"}}", "x".repeat(3 << 20));
    let cases: [(&str, &str, Option<&str>, &[u8]); 4] = [
        ("GET", "https://h/v2/codes/payments/m-1?x=1", None, b""),
        (
            "DELETE",
            "https://h/v2/codes/c-1",
            Some("application/json"),
            b"",
        ),
        (
            "POST",
            "https://h/v2/codes?q=1",
            Some("application/json;charset=UTF-8;"),
            PAYPAY_BODY.as_bytes(),
        ),
        (
            "POST",
            "https://h/v2/files",
            Some("application/json"),
            big.as_bytes(),
        ),
    ];
    for (method, uri, ct, body) in cases {
        let fixed = params("Ab3dE6gH", 1_700_000_123);
        let ours = run(&c, parts(method, uri, ct), body, 8191, &fixed);
        let mut theirs = parts(method, uri, ct);
        let mut hash = built_in.body_hash(&theirs);
        for piece in body.chunks(4096) {
            hash.update(piece);
        }
        built_in.apply(&mut theirs, hash.finish(), &fixed).unwrap();
        assert_eq!(
            header(&ours, "authorization"),
            header(&theirs, "authorization"),
            "{method} {uri}"
        );
    }
}

/// LINE Pay v3, as https://developers-pay.line.me/online/pre-requisites
/// describes it: Base64(HMAC-SHA256(channel secret, channel secret + API
/// path + query string (GET) or request body (POST) + nonce)), with the
/// channel id and the nonce in their own headers.
#[test]
fn the_line_pay_recipe_follows_line_pays_description() {
    let secret = "a917ab6a2367b536f8e5a6e2977e06f4";
    let c = cred(&format!(
        "recipe = \"line-pay-v3\"\napi_key = \"1656946528\"\nsecret = \"{secret}\"\n"
    ));
    let nonce = "44453d45-768e-40e8-8349-748e797c450f";
    // GET: the query string, without `?`.
    let p = run(
        &c,
        parts(
            "GET",
            "https://sandbox-api-pay.line.me/v3/payments?orderId=o-1&transactionId=2024",
            None,
        ),
        b"",
        1,
        &params(nonce, 1),
    );
    let message = format!("{secret}/v3/paymentsorderId=o-1&transactionId=2024{nonce}");
    assert_eq!(
        header(&p, "x-line-authorization"),
        BASE64.encode(hmac256(secret, message.as_bytes()))
    );
    assert_eq!(header(&p, "x-line-authorization-nonce"), nonce);
    assert_eq!(header(&p, "x-line-channelid"), "1656946528");
    // POST: the body, streamed in small chunks through the HMAC.
    let body = br#"{"amount":250,"currency":"TWD","orderId":"o-1","packages":[{"id":"p","amount":250,"products":[{"name":"n","quantity":1,"price":250}]}],"redirectUrls":{"confirmUrl":"https://a/c","cancelUrl":"https://a/x"}}"#;
    let p = run(
        &c,
        parts(
            "POST",
            "https://sandbox-api-pay.line.me/v3/payments/request",
            Some("application/json"),
        ),
        body,
        5,
        &params(nonce, 1),
    );
    let mut message = format!("{secret}/v3/payments/request").into_bytes();
    message.extend_from_slice(body);
    message.extend_from_slice(nonce.as_bytes());
    assert_eq!(
        header(&p, "x-line-authorization"),
        BASE64.encode(hmac256(secret, &message))
    );
}

/// bitFlyer Lightning, as https://lightning.bitflyer.com/docs#authentication
/// describes it: hex HMAC-SHA256(API secret, ACCESS-TIMESTAMP + method +
/// path (with its query) + body), the timestamp as its Node.js sample
/// makes it (`Date.now()`).
#[test]
fn the_bitflyer_recipe_follows_bitflyers_description() {
    let c = cred("recipe = \"bitflyer\"\napi_key = \"key-1\"\nsecret = \"secret-1\"\n");
    let body = br#"{"product_code":"BTC_JPY","child_order_type":"LIMIT","side":"BUY","price":30000,"size":0.1}"#;
    let p = run(
        &c,
        parts(
            "POST",
            "https://api.bitflyer.com/v1/me/sendchildorder",
            Some("application/json"),
        ),
        body,
        3,
        &params("unused", 1_700_000_000),
    );
    let mut text = b"1700000000000POST/v1/me/sendchildorder".to_vec();
    text.extend_from_slice(body);
    assert_eq!(
        header(&p, "access-sign"),
        crate::creds::sigv4::hex(&hmac256("secret-1", &text))
    );
    assert_eq!(header(&p, "access-timestamp"), "1700000000000");
    assert_eq!(header(&p, "access-key"), "key-1");
    let p = run(
        &c,
        parts(
            "GET",
            "https://api.bitflyer.com/v1/me/getchildorders?product_code=BTC_JPY&count=5",
            None,
        ),
        b"",
        1,
        &params("unused", 1_700_000_001),
    );
    let text = "1700000001000GET/v1/me/getchildorders?product_code=BTC_JPY&count=5";
    assert_eq!(
        header(&p, "access-sign"),
        crate::creds::sigv4::hex(&hmac256("secret-1", text.as_bytes()))
    );
}
