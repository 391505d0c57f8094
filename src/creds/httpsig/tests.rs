//! RFC 9421 appendix B: the test keys of B.1 (tests/rfc9421/), the
//! test-request of B.2 and the proxy request of B.3. The signature bases
//! must be the RFC's text exactly; the deterministic signatures (B.2.5
//! hmac-sha256, B.2.6 ed25519) byte for byte; the RFC's randomised ones
//! (RSA-PSS, ECDSA) must verify over the base computed here, and so must
//! the ones made here. RFC 9530 appendix B for Content-Digest.

use std::path::Path;

use ring::signature::{UnparsedPublicKey, VerificationAlgorithm};

use super::*;
use crate::config::CredentialConfig;
use crate::creds::BodyHash;

const CREATED: u64 = 1_618_884_473;
/// RFC 9421 B.1.5, base64.
const SHARED_SECRET: &str =
    "uzvJfB4u3N0Jy4T7NZ75MDVcr8zSTInedJtkgcu46YW4XByzNJjxBdtjUkdJPBtbmHhIDi6pcl8jsasjlTMtDQ==";
const BODY: &[u8] = br#"{"hello": "world"}"#;
/// The test-request's Content-Digest (RFC 9421 B.2; RFC 9530 B.1).
const SHA512_DIGEST: &str = "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:";

fn key_file(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/rfc9421")
        .join(name)
        .display()
        .to_string()
}

/// An http-signature credential from TOML keys, through `check`'s rules.
fn credential(keys: &str) -> HttpSignature {
    let toml = format!("[credential.sig]\ntype = \"http-signature\"\n{keys}\n");
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::config::parse(&toml, dir.path()).unwrap();
    let Some(CredentialConfig::HttpSignature(h)) = config.credentials.remove("sig") else {
        panic!("an http-signature credential");
    };
    HttpSignature::build("sig", &h).unwrap()
}

/// RFC 9421 B.2's test-request, as countersign holds it after routing.
fn test_request() -> Parts {
    let (parts, ()) = http::Request::post("https://example.com/foo?param=Value&Pet=dog")
        .header("host", "example.com")
        .header("date", "Tue, 20 Apr 2021 02:07:55 GMT")
        .header("content-type", "application/json")
        .header("content-length", "18")
        .body(())
        .unwrap()
        .into_parts();
    parts
}

fn body_digest(sha512: bool) -> BodyDigest {
    let mut hash = BodyHash::default();
    hash.want_sha256();
    if sha512 {
        hash.want_sha512();
    }
    hash.update(BODY);
    hash.finish()
}

fn fixed(nonce: Option<&str>) -> SignParams {
    SignParams {
        nonce: nonce.map(str::to_string),
        epoch: Some(CREATED),
    }
}

fn header<'a>(parts: &'a Parts, name: &str) -> &'a str {
    parts.headers.get(name).unwrap().to_str().unwrap()
}

/// The signature bytes of `Signature: LABEL=:...:`.
fn signature_bytes(parts: &Parts, label: &str) -> Vec<u8> {
    let value = header(parts, "signature");
    let b64 = value
        .strip_prefix(&format!("{label}=:"))
        .and_then(|v| v.strip_suffix(':'))
        .unwrap_or_else(|| panic!("a byte sequence under {label}: {value}"));
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

/// The base the credential signed, recomputed from what it sent.
fn base_of(cred: &HttpSignature, parts: &Parts) -> String {
    let input = header(parts, "signature-input");
    let (_, params) = input.split_once('=').unwrap();
    let base = signature_base(&cred.config.components, parts, params).unwrap();
    String::from_utf8(base).unwrap()
}

fn verifies(alg: &'static dyn VerificationAlgorithm, public: &[u8], base: &str, sig: &[u8]) {
    UnparsedPublicKey::new(alg, public)
        .verify(base.as_bytes(), sig)
        .expect("the signature verifies with the public key");
}

fn b64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

#[test]
fn b_2_1_minimal_signature_with_rsa_pss_sha512() {
    let cred = credential(&format!(
        "algorithm = \"rsa-pss-sha512\"\nprivate_key_file = \"{}\"\nkeyid = \"test-key-rsa-pss\"\nlabel = \"sig-b21\"\ncomponents = []\nnonce = true",
        key_file("test-key-rsa-pss.pem")
    ));
    let mut parts = test_request();
    cred.apply(
        &mut parts,
        body_digest(false),
        &fixed(Some("b3k2pp5k7z-50gnwp.yemd")),
    )
    .unwrap();
    let base = base_of(&cred, &parts);
    assert_eq!(
        base,
        concat!(
            r#""@signature-params": ();created=1618884473;keyid="test-key-rsa-pss""#,
            r#";nonce="b3k2pp5k7z-50gnwp.yemd""#
        )
    );
    assert_eq!(
        header(&parts, "signature-input"),
        r#"sig-b21=();created=1618884473;keyid="test-key-rsa-pss";nonce="b3k2pp5k7z-50gnwp.yemd""#
    );
    let public = cred.signer.public_key();
    let pss = &ring::signature::RSA_PSS_2048_8192_SHA512;
    // The RFC's own signature verifies over this base, and so does ours.
    let rfc = b64(concat!(
        "d2pmTvmbncD3xQm8E9ZV2828BjQWGgiwAaw5bAkgibUopemLJcWDy/lkbbHAve4cRAtx31Iq786U7it++wgGx",
        "btRxf8Udx7zFZsckzXaJMkA7ChG52eSkFxykJeNqsrWH5S+oxNFlD4dzVuwe8DhTSja8xxbR/Z2cOGdCbzR72",
        "rgFWhzx2VjBqJzsPLMIQKhO4DGezXehhWwE56YCE+O6c0mKZsfxVrogUvA4HELjVKWmAvtl6UnCh8jYzuVG5W",
        "Sb/QEVPnP5TmcAnLH1g+s++v6d4s8m0gCw1fV5/SITLq9mhho8K3+7EPYTU8IU1bLhdxO5Nyt8C8ssinQ98Xw9Q=="
    ));
    verifies(pss, &public, &base, &rfc);
    verifies(pss, &public, &base, &signature_bytes(&parts, "sig-b21"));
}

#[test]
fn b_2_2_selective_components_with_a_query_param_and_a_tag() {
    let cred = credential(&format!(
        "algorithm = \"rsa-pss-sha512\"\nprivate_key_file = \"{}\"\nkeyid = \"test-key-rsa-pss\"\nlabel = \"sig-b22\"\ntag = \"header-example\"\ncontent_digest = \"sha-512\"\ncomponents = [\"@authority\", \"content-digest\", '@query-param;name=\"Pet\"']",
        key_file("test-key-rsa-pss.pem")
    ));
    let mut parts = test_request();
    cred.apply(&mut parts, body_digest(true), &fixed(None))
        .unwrap();
    let base = base_of(&cred, &parts);
    let expected = [
        "\"@authority\": example.com",
        &format!("\"content-digest\": {SHA512_DIGEST}"),
        "\"@query-param\";name=\"Pet\": dog",
        concat!(
            r#""@signature-params": ("@authority" "content-digest" "@query-param";name="Pet")"#,
            r#";created=1618884473;keyid="test-key-rsa-pss";tag="header-example""#
        ),
    ]
    .join("\n");
    assert_eq!(base, expected);
    let rfc = b64(concat!(
        "LjbtqUbfmvjj5C5kr1Ugj4PmLYvx9wVjZvD9GsTT4F7GrcQEdJzgI9qHxICagShLRiLMlAJjtq6N4CDfKtjvuJ",
        "yE5qH7KT8UCMkSowOB4+ECxCmT8rtAmj/0PIXxi0A0nxKyB09RNrCQibbUjsLS/2YyFYXEu4TRJQzRw1rLEuEf",
        "Y17SARYhpTlaqwZVtR8NV7+4UKkjqpcAoFqWFQh62s7Cl+H2fjBSpqfZUJcsIk4N6wiKYd4je2U/lankenQ99P",
        "ZfB4jY3I5rSV2DSBVkSFsURIjYErOs0tFTQosMTAoxk//0RoKUqiYY8Bh0aaUEb0rQl3/XaVe4bXTugEjHSw=="
    ));
    let pss = &ring::signature::RSA_PSS_2048_8192_SHA512;
    let public = cred.signer.public_key();
    verifies(pss, &public, &base, &rfc);
    verifies(pss, &public, &base, &signature_bytes(&parts, "sig-b22"));
}

#[test]
fn b_2_3_full_coverage_with_rsa_pss_sha512_and_a_sha512_content_digest() {
    let cred = credential(&format!(
        "algorithm = \"rsa-pss-sha512\"\nprivate_key_file = \"{}\"\nkeyid = \"test-key-rsa-pss\"\nlabel = \"sig-b23\"\ncontent_digest = \"sha-512\"\ncomponents = [\"date\", \"@method\", \"@path\", \"@query\", \"@authority\", \"content-type\", \"content-digest\", \"content-length\"]",
        key_file("test-key-rsa-pss.pem")
    ));
    let mut parts = test_request();
    cred.apply(&mut parts, body_digest(true), &fixed(None))
        .unwrap();
    assert_eq!(header(&parts, "content-digest"), SHA512_DIGEST);
    let base = base_of(&cred, &parts);
    let expected = [
        "\"date\": Tue, 20 Apr 2021 02:07:55 GMT",
        "\"@method\": POST",
        "\"@path\": /foo",
        "\"@query\": ?param=Value&Pet=dog",
        "\"@authority\": example.com",
        "\"content-type\": application/json",
        &format!("\"content-digest\": {SHA512_DIGEST}"),
        "\"content-length\": 18",
        concat!(
            r#""@signature-params": ("date" "@method" "@path" "@query" "@authority" "#,
            r#""content-type" "content-digest" "content-length")"#,
            r#";created=1618884473;keyid="test-key-rsa-pss""#
        ),
    ]
    .join("\n");
    assert_eq!(base, expected);
    let rfc = b64(concat!(
        "bbN8oArOxYoyylQQUU6QYwrTuaxLwjAC9fbY2F6SVWvh0yBiMIRGOnMYwZ/5MR6fb0Kh1rIRASVxFkeGt683+",
        "qRpRRU5p2voTp768ZrCUb38K0fUxN0O0iC59DzYx8DFll5GmydPxSmme9v6ULbMFkl+V5B1TP/yPViV7KsLNm",
        "vKiLJH1pFkh/aYA2HXXZzNBXmIkoQoLd7YfW91kE9o/CCoC1xMy7JA1ipwvKvfrs65ldmlu9bpG6A9BmzhuzF",
        "8Eim5f8ui9eH8LZH896+QIF61ka39VBrohr9iyMUJpvRX2Zbhl5ZJzSRxpJyoEZAFL2FUo5fTIztsDZKEgM4cUA=="
    ));
    let pss = &ring::signature::RSA_PSS_2048_8192_SHA512;
    let public = cred.signer.public_key();
    verifies(pss, &public, &base, &rfc);
    let ours = signature_bytes(&parts, "sig-b23");
    assert_eq!(ours.len(), 256);
    verifies(pss, &public, &base, &ours);
}

#[test]
fn b_2_5_hmac_sha256_matches_byte_for_byte() {
    let cred = credential(&format!(
        "algorithm = \"hmac-sha256\"\nsecret = \"{SHARED_SECRET}\"\nsecret_encoding = \"base64\"\nkeyid = \"test-shared-secret\"\nlabel = \"sig-b25\"\ncomponents = [\"date\", \"@authority\", \"content-type\"]"
    ));
    let mut parts = test_request();
    cred.apply(&mut parts, body_digest(false), &fixed(None))
        .unwrap();
    assert_eq!(
        base_of(&cred, &parts),
        concat!(
            "\"date\": Tue, 20 Apr 2021 02:07:55 GMT\n",
            "\"@authority\": example.com\n",
            "\"content-type\": application/json\n",
            r#""@signature-params": ("date" "@authority" "content-type")"#,
            r#";created=1618884473;keyid="test-shared-secret""#
        )
    );
    assert_eq!(
        header(&parts, "signature-input"),
        r#"sig-b25=("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret""#
    );
    assert_eq!(
        header(&parts, "signature"),
        "sig-b25=:pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=:"
    );
}

#[test]
fn b_2_6_ed25519_matches_byte_for_byte() {
    let cred = credential(&format!(
        "algorithm = \"ed25519\"\nprivate_key_file = \"{}\"\nkeyid = \"test-key-ed25519\"\nlabel = \"sig-b26\"\ncomponents = [\"date\", \"@method\", \"@path\", \"@authority\", \"content-type\", \"content-length\"]",
        key_file("test-key-ed25519.pem")
    ));
    let mut parts = test_request();
    cred.apply(&mut parts, body_digest(false), &fixed(None))
        .unwrap();
    assert_eq!(
        base_of(&cred, &parts),
        concat!(
            "\"date\": Tue, 20 Apr 2021 02:07:55 GMT\n",
            "\"@method\": POST\n",
            "\"@path\": /foo\n",
            "\"@authority\": example.com\n",
            "\"content-type\": application/json\n",
            "\"content-length\": 18\n",
            r#""@signature-params": ("date" "@method" "@path" "@authority" "#,
            r#""content-type" "content-length");created=1618884473;keyid="test-key-ed25519""#
        )
    );
    assert_eq!(
        header(&parts, "signature"),
        "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:"
    );
}

/// B.3: the TLS-terminating proxy's signature, ecdsa-p256-sha256 over a
/// request that carries the client certificate in a header.
#[test]
fn b_3_ecdsa_p256_sha256_verifies_raw_r_s_signatures() {
    let cert = concat!(
        ":MIIBqDCCAU6gAwIBAgIBBzAKBggqhkjOPQQDAjA6MRswGQYDVQQKDBJMZXQncyBBdXRoZW50aWNhdGUxGzAZ",
        "BgNVBAMMEkxBIEludGVybWVkaWF0ZSBDQTAeFw0yMDAxMTQyMjU1MzNaFw0yMTAxMjMyMjU1MzNaMA0xCzAJ",
        "BgNVBAMMAkJDMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE8YnXXfaUgmnMtOXU/IncWalRhebrXmckC8vd",
        "gJ1p5Be5F/3YC8OthxM4+k1M6aEAEFcGzkJiNy6J84y7uzo9M6NyMHAwCQYDVR0TBAIwADAfBgNVHSMEGDAW",
        "gBRm3WjLa38lbEYCuiCPct0ZaSED2DAOBgNVHQ8BAf8EBAMCBsAwEwYDVR0lBAwwCgYIKwYBBQUHAwIwHQYD",
        "VR0RAQH/BBMwEYEPYmRjQGV4YW1wbGUuY29tMAoGCCqGSM49BAMCA0gAMEUCIBHda/r1vaL6G3VliL4/Di6Y",
        "K0Q6bMjeSkC3dFCOOB8TAiEAx/kHSB4urmiZ0NX5r5XarmPk0wmuydBVoU4hBVZ1yhk=:"
    );
    let cred = credential(&format!(
        "algorithm = \"ecdsa-p256-sha256\"\nprivate_key_file = \"{}\"\nkeyid = \"test-key-ecc-p256\"\nlabel = \"ttrp\"\ncomponents = [\"@path\", \"@query\", \"@method\", \"@authority\", \"client-cert\"]",
        key_file("test-key-ecc-p256.pem")
    ));
    let (mut parts, ()) =
        http::Request::post("https://service.internal.example/foo?param=Value&Pet=dog")
            .header("host", "service.internal.example")
            .header("client-cert", cert)
            .body(())
            .unwrap()
            .into_parts();
    cred.apply(&mut parts, BodyDigest::Absent, &fixed(None))
        .unwrap();
    let base = base_of(&cred, &parts);
    let expected = format!(
        "\"@path\": /foo\n\"@query\": ?param=Value&Pet=dog\n\"@method\": POST\n\"@authority\": service.internal.example\n\"client-cert\": {cert}\n{}",
        r#""@signature-params": ("@path" "@query" "@method" "@authority" "client-cert");created=1618884473;keyid="test-key-ecc-p256""#
    );
    assert_eq!(base, expected);
    let ecdsa = &ring::signature::ECDSA_P256_SHA256_FIXED;
    let public = cred.signer.public_key();
    let rfc = b64(
        "xVMHVpawaAC/0SbHrKRs9i8I3eOs5RtTMGCWXm/9nvZzoHsIg6Mce9315T6xoklyy0yzhD9ah4JHRwMLOgmizw==",
    );
    verifies(ecdsa, &public, &base, &rfc);
    let ours = signature_bytes(&parts, "ttrp");
    assert_eq!(ours.len(), 64, "raw r || s");
    verifies(ecdsa, &public, &base, &ours);
}

#[test]
fn rsa_v1_5_sha256_verifies_with_the_public_key() {
    let cred = credential(&format!(
        "algorithm = \"rsa-v1_5-sha256\"\nprivate_key_file = \"{}\"\nkeyid = \"test-key-rsa\"\ncomponents = [\"@method\", \"@target-uri\"]\nalg = true",
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/integration/oauth2/test-rsa-key.pem")
            .display()
    ));
    let mut parts = test_request();
    cred.apply(&mut parts, BodyDigest::Absent, &fixed(None))
        .unwrap();
    let base = base_of(&cred, &parts);
    assert_eq!(
        base,
        concat!(
            "\"@method\": POST\n",
            "\"@target-uri\": https://example.com/foo?param=Value&Pet=dog\n",
            r#""@signature-params": ("@method" "@target-uri");created=1618884473;keyid="test-key-rsa";alg="rsa-v1_5-sha256""#
        )
    );
    verifies(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        &cred.signer.public_key(),
        &base,
        &signature_bytes(&parts, "sig1"),
    );
}

/// RFC 9530 appendix B.1: the digests of `{"hello": "world"}`; an empty
/// body has the digest of no bytes.
#[test]
fn content_digest_matches_rfc_9530() {
    let d = body_digest(true);
    assert_eq!(
        content_digest(DigestAlg::Sha256, &d).unwrap(),
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
    );
    assert_eq!(
        content_digest(DigestAlg::Sha512, &d).unwrap(),
        SHA512_DIGEST
    );
    assert_eq!(
        content_digest(DigestAlg::Sha256, &BodyDigest::Absent).unwrap(),
        "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"
    );
}

#[test]
fn a_missing_component_is_refused_naming_it() {
    let cred = credential(&format!(
        "algorithm = \"ed25519\"\nprivate_key_file = \"{}\"\ncomponents = [\"@method\", \"x-request-id\"]",
        key_file("test-key-ed25519.pem")
    ));
    let mut parts = test_request();
    let e = cred
        .apply(&mut parts, BodyDigest::Absent, &fixed(None))
        .unwrap_err();
    assert!(matches!(e, CredError::Request(_)));
    assert_eq!(
        e.to_string(),
        "http-signature `sig`: the request has no header `x-request-id`, which the signature covers (components); the app must send it"
    );
    assert!(parts.headers.get("signature").is_none());
}

#[test]
fn parameters_expires_nonce_tag_and_strings_are_serialised() {
    let cred = credential(
        "algorithm = \"hmac-sha256\"\nsecret = \"k\"\nkeyid = \"a\\\"b\\\\c\"\ncomponents = [\"@method\"]\nexpires = \"5m\"\nnonce = true\ntag = \"app\"\nalg = true\nlabel = \"my-sig\"",
    );
    let mut parts = test_request();
    cred.apply(&mut parts, BodyDigest::Absent, &fixed(None))
        .unwrap();
    let input = header(&parts, "signature-input");
    let (head, nonce) = input.split_once(";nonce=\"").unwrap();
    assert_eq!(
        head,
        r#"my-sig=("@method");created=1618884473;expires=1618884773;keyid="a\"b\\c""#
    );
    let (nonce, tail) = nonce.split_once('"').unwrap();
    assert_eq!(tail, r#";alg="hmac-sha256";tag="app""#);
    assert_eq!(nonce.len(), 22, "128 random bits, base64url: {nonce}");
    // A fresh nonce for every signature.
    let mut again = test_request();
    cred.apply(&mut again, BodyDigest::Absent, &fixed(None))
        .unwrap();
    assert_ne!(header(&again, "signature-input"), input);
}

#[test]
fn debug_output_never_shows_the_key() {
    let secret = "do-not-show-this-secret";
    let toml = format!(
        "[credential.sig]\ntype = \"http-signature\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{secret}\"\ncomponents = []\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let config = crate::config::parse(&toml, dir.path()).unwrap();
    let shown = format!("{config:?}");
    assert!(!shown.contains(secret), "{shown}");
    let cred = credential(&format!(
        "algorithm = \"hmac-sha256\"\nsecret = \"{secret}\"\ncomponents = []"
    ));
    let shown = format!("{cred:?}");
    assert!(
        shown.contains("hmac-sha256") && !shown.contains(secret),
        "{shown}"
    );
}
