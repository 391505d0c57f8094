//! Cases of AWS's SigV4A test suite (aws-c-auth's aws-signing-test-suite,
//! folder v4a: key AKIDEXAMPLE, service `service`, region set us-east-1,
//! 20150830T123600Z, body not signed). Each case's canonical request and
//! string to sign are the published ones; the signature, randomized in the
//! suite, is checked by verifying it with the suite's published public key.

use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};

use super::v4a::{derive_key, sign, KeyCache};
use super::*;

const DATE: &str = "20150830T123600Z";
const ID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
/// The suite's public-key.json, the same for every case.
const PUBLIC_X: &str = "b6618f6a65740a99e650b33b6b4b5bd0d43b176d721a3edfea7e7d2d56d936b1";
const PUBLIC_Y: &str = "865ed22a7eadc9c5cb9d2cbaca1b3699139fedc5043dc6661864218330c8e518";
/// SHA-256 of the empty body.
const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn published_key() -> VerifyingKey {
    let mut sec1 = vec![4u8];
    sec1.extend(unhex(PUBLIC_X));
    sec1.extend(unhex(PUBLIC_Y));
    VerifyingKey::from_sec1_bytes(&sec1).unwrap()
}

fn verifies(key: &VerifyingKey, message: &str, der_hex: &str) -> bool {
    let sig = Signature::from_der(&unhex(der_hex)).unwrap();
    key.verify(message.as_bytes(), &sig).is_ok()
}

struct Case {
    method: &'static str,
    path: &'static str,
    query: Option<&'static str>,
    /// Beside host, x-amz-date and x-amz-region-set.
    extra: &'static [(&'static str, &'static str)],
    canonical_request: &'static str,
    string_to_sign: &'static str,
    /// The suite's header-signature.txt.
    published_signature: &'static str,
}

fn check(case: &Case) {
    let mut headers: Vec<(&str, &[u8])> = vec![
        ("host", b"example.amazonaws.com"),
        ("x-amz-date", DATE.as_bytes()),
        ("x-amz-region-set", b"us-east-1"),
    ];
    headers.extend(case.extra.iter().map(|(n, v)| (*n, v.as_bytes())));
    let req = Request {
        method: case.method,
        path: case.path,
        query: case.query,
        headers,
        payload_hash: EMPTY,
        amz_date: DATE,
    };
    let key = derive_key(ID, SECRET).unwrap();
    let signed = sign(&req, ID, "service", false, &key);
    assert_eq!(
        String::from_utf8(signed.canonical_request).unwrap(),
        case.canonical_request
    );
    assert_eq!(signed.string_to_sign, case.string_to_sign);
    let public = published_key();
    assert!(verifies(&public, &signed.string_to_sign, &signed.signature));
    assert!(verifies(
        &public,
        &signed.string_to_sign,
        case.published_signature
    ));
    let signed_headers = case.canonical_request.lines().nth_back(1).unwrap();
    assert_eq!(
        signed.authorization,
        format!(
            "AWS4-ECDSA-P256-SHA256 Credential=AKIDEXAMPLE/20150830/service/aws4_request, SignedHeaders={signed_headers}, Signature={}",
            signed.signature
        )
    );
}

#[test]
fn the_derived_key_is_the_published_one() {
    let key = derive_key(ID, SECRET).unwrap();
    let point = key.verifying_key().to_encoded_point(false);
    assert_eq!(hex(point.x().unwrap()), PUBLIC_X);
    assert_eq!(hex(point.y().unwrap()), PUBLIC_Y);
}

#[test]
fn get_vanilla() {
    check(&Case {
        method: "GET",
        path: "/",
        query: None,
        extra: &[],
        canonical_request: "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\nx-amz-region-set:us-east-1\n\nhost;x-amz-date;x-amz-region-set\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign: "AWS4-ECDSA-P256-SHA256\n20150830T123600Z\n20150830/service/aws4_request\ncf59db423e841c8b7e3444158185aa261b724a5c27cbe762676f3eed19f4dc02",
        published_signature: "3045022018b4e277d0281864beb51d3600e23f88510ea5031d68ddfbb68614b82a5eb7d2022100effb9c5f22ed9ef3ae0ab243d21f06bce82365bbb79529a07b6888c343ae5f8c",
    });
}

#[test]
fn post_vanilla_query() {
    check(&Case {
        method: "POST",
        path: "/",
        query: Some("Param1=value1"),
        extra: &[],
        canonical_request: "POST\n/\nParam1=value1\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\nx-amz-region-set:us-east-1\n\nhost;x-amz-date;x-amz-region-set\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign: "AWS4-ECDSA-P256-SHA256\n20150830T123600Z\n20150830/service/aws4_request\n502dea2656f02eea10bd05eeec315ea1a6686ed2861176e1670b2d67e17b2f36",
        published_signature: "3046022100b876f1bd2e85da20227bf515463de11ed5334e78e559bf814ce39c6a500af453022100a0a4797c60fda7bca3af5ae71680853b0c4e401d3da0821e3266062ff3463275",
    });
}

#[test]
fn get_vanilla_with_session_token() {
    check(&Case {
        method: "GET",
        path: "/",
        query: None,
        extra: &[(
            "x-amz-security-token",
            "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267",
        )],
        canonical_request: "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\nx-amz-region-set:us-east-1\nx-amz-security-token:6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267\n\nhost;x-amz-date;x-amz-region-set;x-amz-security-token\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign: "AWS4-ECDSA-P256-SHA256\n20150830T123600Z\n20150830/service/aws4_request\n79893373104239a0547df489af395ec3c1b8873a8601f07f11ffd3f1ac557e7d",
        published_signature: "3044022035c6bc9a8cab8a434bd8bd1cc3b6f1401842f530f1537722ad10d72a1577f8c80220101352fe0720715efbab80f82edb133175f0b61cad85daf943ad615852f9ae10",
    });
}

#[test]
fn get_header_value_trim() {
    check(&Case {
        method: "GET",
        path: "/",
        query: None,
        extra: &[("my-header1", " value1"), ("my-header2", " \"a   b   c\"")],
        canonical_request: "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\nx-amz-date:20150830T123600Z\nx-amz-region-set:us-east-1\n\nhost;my-header1;my-header2;x-amz-date;x-amz-region-set\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign: "AWS4-ECDSA-P256-SHA256\n20150830T123600Z\n20150830/service/aws4_request\n18b43001be9b531ebdd8202144dbd7630ea8a35bc328a7d0e561dda03a876095",
        published_signature: "3046022100f05cfb8a9a49ee4540c49ed27e612ddd1a2d168512bad65a96cdf8378254a4bd022100a3eb663e6734125d467fc00d5a41dc6bf476ec167d5c20657ff3135c8b4f7815",
    });
}

#[test]
fn get_space_normalized() {
    check(&Case {
        method: "GET",
        path: "/example space/",
        query: None,
        extra: &[],
        canonical_request: "GET\n/example%20space/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\nx-amz-region-set:us-east-1\n\nhost;x-amz-date;x-amz-region-set\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign: "AWS4-ECDSA-P256-SHA256\n20150830T123600Z\n20150830/service/aws4_request\n1bbd1a746b47d963b21f6e6783c689c038162ccc3f8a69abeda218a178ee4d19",
        published_signature: "304502202292b4f0e4f1495b9ceb3b77349efeffdce42cb5461f810db3983005c1e772ca022100b4b6175661196a82f5b59968315517e1ffdde58d2e3eba10d3bfe171cde625c4",
    });
}

#[test]
fn get_utf8() {
    check(&Case {
        method: "GET",
        path: "/ሴ",
        query: None,
        extra: &[],
        canonical_request: "GET\n/%E1%88%B4\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\nx-amz-region-set:us-east-1\n\nhost;x-amz-date;x-amz-region-set\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign: "AWS4-ECDSA-P256-SHA256\n20150830T123600Z\n20150830/service/aws4_request\n7c8a7084825e715f0e217a7470ce3611bcfedb5b70329d9b36bba5cefd39c11a",
        published_signature: "3044022009b73628ce2929e224b781c591bdc93fc3381cef5f63992eefb82a286276fa0902203cbc6071d1be7b8c91ec0a04b921881c48cbea2a0a86481f6fa7a983e36190c0",
    });
}

#[test]
fn get_slash_dot_slash_normalized() {
    check(&Case {
        method: "GET",
        path: "/./",
        query: None,
        extra: &[],
        canonical_request: "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\nx-amz-region-set:us-east-1\n\nhost;x-amz-date;x-amz-region-set\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign: "AWS4-ECDSA-P256-SHA256\n20150830T123600Z\n20150830/service/aws4_request\ncf59db423e841c8b7e3444158185aa261b724a5c27cbe762676f3eed19f4dc02",
        published_signature: "3045022100e8ed39e8b964e06162ab1cddbff57c449a9b72e2d052a7a3e12a116ae30185ee022003e6eb0fddbaa586225b26877ab145e05a08ac418ef7c966e5daef258b70cbfc",
    });
}

#[test]
fn the_key_is_derived_again_only_for_new_credentials() {
    let cache = KeyCache::default();
    let public = |id: &str, secret: &str| *cache.key(id, secret).unwrap().verifying_key();
    let first = public(ID, SECRET);
    assert_eq!(first, published_key());
    assert_eq!(public(ID, SECRET), first);
    // Rotated temporary keys: a new secret under the same id, then a new id.
    let rotated = public(ID, "another-secret");
    assert_ne!(rotated, first);
    assert_eq!(
        rotated,
        *derive_key(ID, "another-secret").unwrap().verifying_key()
    );
    assert_ne!(public("ASIAOTHER", SECRET), first);
    assert_eq!(public(ID, SECRET), first);
}

fn credential(region_set: &str, token: Option<&str>) -> AwsSigV4 {
    let keys = crate::config::StaticKeys {
        access_key_id: crate::config::Secret::new(ID),
        secret_access_key: crate::config::Secret::new(SECRET),
        session_token: token.map(crate::config::Secret::new),
    };
    AwsSigV4 {
        name: "aws".into(),
        config: AwsSigV4Config {
            service: "s3".into(),
            region: "us-east-1".into(),
            keys: AwsKeys::Static(keys),
            payload: AwsPayload::Signed,
            content_sha256: true,
            algorithm: AwsAlgorithm::SigV4A {
                region_set: region_set.into(),
            },
        },
        manager: None,
        v4a_keys: KeyCache::default(),
    }
}

async fn apply(cred: &AwsSigV4) -> Parts {
    let (mut parts, ()) = http::Request::builder()
        .method("PUT")
        .uri("http://mrap.accesspoint.s3-global.test/my%20key.txt")
        .header("host", "mrap.accesspoint.s3-global.test")
        .header("user-agent", "app/1")
        .body(())
        .unwrap()
        .into_parts();
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
    parts
}

#[tokio::test]
async fn apply_signs_the_region_set_with_the_derived_key() {
    let cred = credential("us-east-1,eu-west-1", Some("TOKEN"));
    let parts = apply(&cred).await;
    let h = &parts.headers;
    assert_eq!(h["x-amz-region-set"], "us-east-1,eu-west-1");
    assert_eq!(h["x-amz-date"], DATE);
    assert_eq!(h["x-amz-security-token"], "TOKEN");
    let auth = h[AUTHORIZATION].to_str().unwrap();
    let prefix = "AWS4-ECDSA-P256-SHA256 Credential=AKIDEXAMPLE/20150830/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-region-set;x-amz-security-token, Signature=";
    let signature = auth.strip_prefix(prefix).expect(auth);
    // The string to sign rebuilt from what was sent, checked with the
    // suite's public key for these credentials.
    let body_sha = hex(&Sha256::digest(b"hello"));
    let canonical = format!(
        "PUT\n/my%20key.txt\n\nhost:mrap.accesspoint.s3-global.test\nx-amz-content-sha256:{body_sha}\nx-amz-date:{DATE}\nx-amz-region-set:us-east-1,eu-west-1\nx-amz-security-token:TOKEN\n\nhost;x-amz-content-sha256;x-amz-date;x-amz-region-set;x-amz-security-token\n{body_sha}"
    );
    let string_to_sign = format!(
        "AWS4-ECDSA-P256-SHA256\n{DATE}\n20150830/s3/aws4_request\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    assert!(verifies(&published_key(), &string_to_sign, signature));
    // RFC 6979: the same request at the same time signs the same.
    let again = apply(&cred).await;
    assert_eq!(again.headers[AUTHORIZATION], h[AUTHORIZATION]);
}

#[tokio::test]
async fn any_region_is_a_star() {
    let parts = apply(&credential("*", None)).await;
    assert_eq!(parts.headers["x-amz-region-set"], "*");
    assert!(!parts.headers.contains_key("x-amz-security-token"));
}
