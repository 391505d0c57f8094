//! Cases of AWS's SigV4 test suite ("aws-sig-v4-test-suite": key
//! AKIDEXAMPLE, region us-east-1, service `service`, 20150830T123600Z).
//! The expected signatures are the suite's published ones; botocore 1.43
//! computes the same for each request.

use sha2::{Digest as _, Sha256};

use super::*;

const DATE: &str = "20150830T123600Z";
const HOST: &str = "example.amazonaws.com";

fn scope() -> Scope<'static> {
    Scope {
        access_key_id: "AKIDEXAMPLE",
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        region: "us-east-1",
        service: "service",
        s3: false,
    }
}

/// Signs the suite request `method target` with `extra` headers beside
/// host and x-amz-date, and `body`.
fn suite(method: &str, target: &str, extra: &[(&str, &str)], body: &[u8]) -> Signed {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let mut headers: Vec<(&str, &[u8])> =
        vec![("host", HOST.as_bytes()), ("x-amz-date", DATE.as_bytes())];
    headers.extend(extra.iter().map(|(n, v)| (*n, v.as_bytes())));
    let payload = hex(&Sha256::digest(body));
    let req = Request {
        method,
        path,
        query,
        headers,
        payload_hash: &payload,
        amz_date: DATE,
    };
    sign(&req, &scope())
}

fn expect(signed: &Signed, signed_headers: &str, signature: &str) {
    assert_eq!(
        signed.authorization,
        format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders={signed_headers}, Signature={signature}"),
        "canonical request:\n{}",
        String::from_utf8_lossy(&signed.canonical_request)
    );
}

const VANILLA: &str = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";

#[test]
fn get_vanilla_with_its_canonical_request_and_string_to_sign() {
    let s = suite("GET", "/", &[], b"");
    assert_eq!(
        String::from_utf8(s.canonical_request.clone()).unwrap(),
        "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        s.string_to_sign,
        "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
    );
    expect(&s, "host;x-amz-date", VANILLA);
}

#[test]
fn query_cases() {
    let cases = [
        ("/?Param2=value2&Param1=value1", "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
        ("/?Param1=value2&Param1=Value1", "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1"),
        ("/?-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"),
        ("/?Param1=value1", "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"),
    ];
    for (target, sig) in cases {
        expect(&suite("GET", target, &[], b""), "host;x-amz-date", sig);
    }
}

#[test]
fn path_cases_normalised_and_encoded() {
    let cases = [
        (
            "/\u{1234}",
            "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
        ),
        (
            "/example space/",
            "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741",
        ),
        ("//", VANILLA),
        (
            "//example//",
            "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84",
        ),
        ("/example/..", VANILLA),
        ("/example1/example2/../..", VANILLA),
        ("/./", VANILLA),
        (
            "/./example",
            "ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5",
        ),
        (
            "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
            "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
        ),
    ];
    for (target, sig) in cases {
        expect(&suite("GET", target, &[], b""), "host;x-amz-date", sig);
    }
}

#[test]
fn header_cases() {
    expect(
        &suite("POST", "/", &[("my-header1", "value1")], b""),
        "host;my-header1;x-amz-date",
        "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c",
    );
    expect(
        &suite("POST", "/", &[("my-header1", "VALUE1")], b""),
        "host;my-header1;x-amz-date",
        "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d",
    );
    expect(
        &suite(
            "GET",
            "/",
            &[("my-header1", " value1"), ("my-header2", " \"a   b   c\"")],
            b"",
        ),
        "host;my-header1;my-header2;x-amz-date",
        "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
    );
    let duplicate = "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea";
    expect(
        &suite("GET", "/", &[("my-header1", "value2,value2,value1")], b""),
        "host;my-header1;x-amz-date",
        duplicate,
    );
    // The same header sent three times is joined with commas, in order.
    expect(
        &suite(
            "GET",
            "/",
            &[
                ("my-header1", "value2"),
                ("my-header1", "value2"),
                ("my-header1", "value1"),
            ],
            b"",
        ),
        "host;my-header1;x-amz-date",
        duplicate,
    );
}

#[test]
fn post_cases() {
    expect(
        &suite("POST", "/", &[], b""),
        "host;x-amz-date",
        "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
    );
    expect(
        &suite("POST", "/?Param1=value1", &[], b""),
        "host;x-amz-date",
        "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
    );
    expect(
        &suite(
            "POST",
            "/",
            &[("content-type", "application/x-www-form-urlencoded")],
            b"Param1=value1",
        ),
        "content-type;host;x-amz-date",
        "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
    );
    expect(
        &suite(
            "POST",
            "/",
            &[(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf8",
            )],
            b"Param1=value1",
        ),
        "content-type;host;x-amz-date",
        "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe",
    );
}

#[test]
fn amz_date_of_the_suite_time() {
    assert_eq!(amz_date(1440938160), DATE);
    assert_eq!(amz_date(0), "19700101T000000Z");
}

fn credential(payload: AwsPayload, token: Option<&str>) -> AwsSigV4 {
    let keys = crate::config::StaticKeys {
        access_key_id: crate::config::Secret::new("AKIDEXAMPLE"),
        secret_access_key: crate::config::Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        session_token: token.map(crate::config::Secret::new),
    };
    AwsSigV4 {
        name: "aws".into(),
        config: AwsSigV4Config {
            service: "s3".into(),
            region: "us-east-1".into(),
            keys: AwsKeys::Static(keys),
            payload,
            content_sha256: true,
            algorithm: crate::config::AwsAlgorithm::SigV4,
        },
        manager: None,
        v4a_keys: v4a::KeyCache::default(),
    }
}

#[tokio::test]
async fn apply_writes_date_token_payload_hash_and_signs_them() {
    let (mut parts, ()) = http::Request::builder()
        .method("PUT")
        .uri("http://bucket.s3.test/my%20key.txt?x-id=PutObject")
        .header("host", "bucket.s3.test")
        .header("user-agent", "app/1")
        .body(())
        .unwrap()
        .into_parts();
    let cred = credential(AwsPayload::Signed, Some("TOKEN"));
    let mut hash = BodyHash::default();
    cred.body_hash(&mut hash);
    hash.update(b"hello");
    let params = SignParams {
        nonce: None,
        epoch: Some(1440938160),
    };
    cred.apply(&mut parts, hash.finish(), &params)
        .await
        .unwrap();
    let h = &parts.headers;
    assert_eq!(h["x-amz-date"], DATE);
    assert_eq!(h["x-amz-security-token"], "TOKEN");
    let body_sha = hex(&Sha256::digest(b"hello"));
    assert_eq!(h["x-amz-content-sha256"], body_sha.as_str());
    let auth = h[AUTHORIZATION].to_str().unwrap();
    assert!(auth.contains("/20150830/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature="), "{auth}");
    // Recomputed from the parts, S3's single encoding of the path.
    let expected = sign(
        &Request {
            method: "PUT",
            path: "/my%20key.txt",
            query: Some("x-id=PutObject"),
            headers: vec![
                ("host", b"bucket.s3.test"),
                ("x-amz-content-sha256", body_sha.as_bytes()),
                ("x-amz-date", DATE.as_bytes()),
                ("x-amz-security-token", b"TOKEN"),
            ],
            payload_hash: &body_sha,
            amz_date: DATE,
        },
        &Scope {
            service: "s3",
            s3: true,
            ..scope()
        },
    );
    assert_eq!(auth, expected.authorization);
    assert!(String::from_utf8_lossy(&expected.canonical_request)
        .starts_with("PUT\n/my%20key.txt\nx-id=PutObject\n"));
}

#[tokio::test]
async fn unsigned_payload_needs_no_body_hash() {
    let cred = credential(AwsPayload::Unsigned, None);
    let mut hash = BodyHash::default();
    cred.body_hash(&mut hash);
    assert!(!hash.is_wanted());
    let (mut parts, ()) = http::Request::builder()
        .method("PUT")
        .uri("http://b.s3.test/k")
        .header("host", "b.s3.test")
        .body(())
        .unwrap()
        .into_parts();
    cred.apply(&mut parts, BodyDigest::Absent, &SignParams::default())
        .await
        .unwrap();
    assert_eq!(parts.headers["x-amz-content-sha256"], "UNSIGNED-PAYLOAD");
    assert!(!parts.headers.contains_key("x-amz-security-token"));
}

#[test]
fn debug_shows_no_secret() {
    let cred = credential(AwsPayload::Signed, Some("TOKEN-SECRET"));
    let text = format!("{cred:?}");
    assert!(
        !text.contains("wJalr") && !text.contains("TOKEN-SECRET"),
        "{text}"
    );
}
