//! The engine: the body streamed in the middle of the string, drawn
//! values, the Content-Type rules, resends. The recipes are in
//! `tests/recipes.rs`.

use super::*;
use crate::config::{CredentialConfig, Secret};
use crate::creds::PayPayOpa;
use http::header::CONTENT_LENGTH;

mod recipes;

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
