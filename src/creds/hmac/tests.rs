//! The recipes against their providers' published descriptions, computed
//! here in one shot from those descriptions (not through the template
//! engine), and the PayPay recipe against the built-in `paypay-opa`.

use super::*;
use crate::config::{CredentialConfig, Secret};
use crate::creds::PayPayOpa;
use http::header::CONTENT_LENGTH;

/// The hmac credential `c` of a config whose credential table is `keys`.
fn cred(keys: &str) -> HmacCred {
    let toml = format!("[credential.c]\ntype = \"hmac\"\n{keys}");
    let dir = tempfile::tempdir().unwrap();
    let config = crate::config::parse(&toml, dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let CredentialConfig::Hmac(h) = &config.credentials["c"] else {
        panic!("an hmac credential")
    };
    HmacCred::new("c", h)
}

fn params(nonce: &str, epoch: u64) -> SignParams {
    SignParams {
        nonce: Some(nonce.into()),
        epoch: Some(epoch),
    }
}

fn parts(method: &str, uri: &str, content_type: Option<&str>) -> Parts {
    let mut req = http::Request::builder().method(method).uri(uri);
    if let Some(ct) = content_type {
        req = req.header(CONTENT_TYPE, ct);
    }
    req.body(()).unwrap().into_parts().0
}

/// What the proxy does with a request: refuse early, one pass over the
/// body in `chunk`-byte pieces, then apply. Returns the signed parts.
fn run(c: &HmacCred, mut p: Parts, body: &[u8], chunk: usize, params: &SignParams) -> Parts {
    c.refuse_early(&p).unwrap();
    let mut hash = BodyHash::default();
    c.body_hash(&p, &mut hash, params).unwrap();
    for piece in body.chunks(chunk.max(1)) {
        hash.update(piece);
    }
    c.apply(&mut p, &hash.finish(), params).unwrap();
    p
}

fn header<'p>(p: &'p Parts, name: &str) -> &'p str {
    p.headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name}"))
        .to_str()
        .unwrap()
}

fn hmac256(key: &str, message: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    m.update(message);
    m.finalize().into_bytes().to_vec()
}

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

/// The body in the middle of the string: prefix, body chunks, suffix is
/// the HMAC of the whole string, for any chunking and with SHA-512, a
/// digest after the body, and literal text.
#[test]
fn a_body_in_the_middle_streams_to_the_same_signature_as_the_whole_string() {
    let c = cred(concat!(
        "secret = \"k\"\nalgorithm = \"hmac-sha512\"\nencoding = \"hex\"\nseparator = \"|\"\n",
        "sign = [\"method\", { text = \"v1\" }, \"timestamp\", \"body\", \"body_digest\", \"nonce\", \"path_with_query\"]\n",
        "timestamp = \"unix\"\nbody_digest = { algorithm = \"sha256\", encoding = \"hex\" }\n",
        "headers = { \"X-Sig\" = \"v1={signature}\", \"X-Nonce\" = \"{nonce}\", \"X-Digest\" = \"{body_digest}\" }\n",
    ));
    let body: Vec<u8> = (0..70_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let digest = crate::creds::sigv4::hex(&Sha256::digest(&body));
    let mut whole = b"PUT|v1|1700000000|".to_vec();
    whole.extend_from_slice(&body);
    whole.extend_from_slice(format!("|{digest}|n-1|/a/b?c=d").as_bytes());
    let mut m = Hmac::<Sha512>::new_from_slice(b"k").unwrap();
    m.update(&whole);
    let expected = format!(
        "v1={}",
        crate::creds::sigv4::hex(&m.finalize().into_bytes())
    );
    for chunk in [1, 7, 4096, 1 << 20] {
        let p = run(
            &c,
            parts("PUT", "https://h/a/b?c=d", None),
            &body,
            chunk,
            &params("n-1", 1_700_000_000),
        );
        assert_eq!(header(&p, "x-sig"), expected, "chunks of {chunk}");
        assert_eq!(header(&p, "x-digest"), digest);
        assert_eq!(header(&p, "x-nonce"), "n-1");
    }
}

/// Without fixed values, the time and nonce drawn when the body starts
/// are the ones the headers carry, and each request draws new ones.
#[test]
fn drawn_values_are_signed_and_fresh() {
    let c = cred(concat!(
        "secret = \"k\"\nsign = [\"nonce\", \"timestamp\", \"body\"]\ntimestamp = \"unix-ms\"\nnonce = \"hex\"\n",
        "headers = { \"X-Sig\" = \"{signature}\", \"X-Nonce\" = \"{nonce}\", \"X-Time\" = \"{timestamp}\" }\n",
    ));
    let sent = |body: &[u8]| {
        run(
            &c,
            parts("POST", "https://h/x", None),
            body,
            2,
            &SignParams::default(),
        )
    };
    let (a, b) = (sent(b"hello"), sent(b""));
    for p in [&a, &b] {
        let (nonce, time) = (header(p, "x-nonce"), header(p, "x-time"));
        assert_eq!(nonce.len(), 32);
        let mut message = format!("{nonce}{time}").into_bytes();
        if std::ptr::eq(p, &a) {
            message.extend_from_slice(b"hello");
        }
        assert_eq!(header(p, "x-sig"), BASE64.encode(hmac256("k", &message)));
        let ms: u64 = time.parse().unwrap();
        assert!(ms > 1_600_000_000_000, "milliseconds: {time}");
    }
    assert_ne!(header(&a, "x-nonce"), header(&b, "x-nonce"));
}

#[test]
fn a_signed_content_type_is_required_with_a_body_and_must_be_single() {
    let c = cred("recipe = \"paypay-opa\"\napi_key = \"k\"\nsecret = \"s\"\n");
    let mut p = parts("POST", "https://h/x", None);
    p.headers
        .insert(CONTENT_LENGTH, HeaderValue::from_static("3"));
    let e = c.refuse_early(&p).unwrap_err().to_string();
    assert!(e.contains("has none"), "{e}");
    let mut p = parts("POST", "https://h/x", Some("a/b"));
    p.headers
        .append(CONTENT_TYPE, HeaderValue::from_static("c/d"));
    let e = c.refuse_early(&p).unwrap_err().to_string();
    assert!(e.contains("several"), "{e}");
    // A template that does not sign it does not care.
    let line = cred("recipe = \"line-pay-v3\"\napi_key = \"1\"\nsecret = \"s\"\n");
    line.refuse_early(&p).unwrap();
}

#[test]
fn debug_shows_neither_the_secret_nor_the_keyed_state() {
    let c = cred("recipe = \"bitflyer\"\napi_key = \"key-1\"\nsecret = \"Pr0dSecret\"\n");
    let shown = format!("{c:?}");
    assert!(!shown.contains("Pr0dSecret"), "{shown}");
    assert!(shown.contains("Keyed(<redacted>)"), "{shown}");
}

/// A resend applies the same body digest again: a signature that ran over
/// the body keeps the time and nonce it started with; one that does not
/// hold the body draws new ones.
#[test]
fn a_resend_keeps_a_streamed_signatures_values_and_redraws_the_others() {
    let streamed = cred("recipe = \"line-pay-v3\"\napi_key = \"1\"\nsecret = \"s\"\n");
    let digest_only = cred("recipe = \"paypay-opa\"\napi_key = \"k\"\nsecret = \"s\"\n");
    for (c, same) in [(&streamed, true), (&digest_only, false)] {
        let p = parts("POST", "https://h/v3/x", Some("application/json"));
        let mut hash = BodyHash::default();
        c.body_hash(&p, &mut hash, &SignParams::default()).unwrap();
        hash.update(b"{\"a\":1}");
        let digest = hash.finish();
        let (mut first, mut again) = (p.clone(), p);
        c.apply(&mut first, &digest, &SignParams::default())
            .unwrap();
        c.apply(&mut again, &digest, &SignParams::default())
            .unwrap();
        assert_eq!(
            first.headers == again.headers,
            same,
            "{:?}",
            c.header_names()
        );
    }
}
