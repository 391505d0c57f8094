//! The signing input against RFC 7797's published examples (both `b64`
//! variants), the UK OB protected header for each version, signatures that
//! verify with the public key, and the FAPI header rules.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::Request;
use ring::signature::{self, EcdsaKeyPair, KeyPair as _, RsaKeyPair};
use rustls_pki_types::pem::PemObject;
use serde_json::json;
use sha2::Sha256;

use super::*;
use crate::config::{IdempotencyKey, ObVersion, SecretBytes, SigningAlg};
use crate::creds::BodyHash;

const RSA: &str = include_str!("../../../tests/integration/oauth2/test-rsa-key.pem");
const EC: &str = include_str!("../../../tests/integration/oauth2/test-ec-key.pem");

fn pkcs8(pem: &str) -> Vec<u8> {
    match rustls_pki_types::PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap() {
        rustls_pki_types::PrivateKeyDer::Pkcs8(k) => k.secret_pkcs8_der().to_vec(),
        _ => panic!("fixture is PKCS#8"),
    }
}

fn config(version: &str, alg: SigningAlg) -> JwsDetachedConfig {
    let pem = match alg {
        SigningAlg::Es256 => EC,
        _ => RSA,
    };
    JwsDetachedConfig {
        alg,
        pkcs8: SecretBytes::new(pkcs8(pem)),
        kid: "rt0rxv7lo86ohb6wNLDheQrEfyY".into(),
        issuer: "0015800001041RHAAY/4ZsLc3Kqh8y9ia3e9ooc8Y".into(),
        trust_anchor: "openbanking.org.uk".into(),
        version: ObVersion::parse(version).unwrap(),
        typ: false,
        max_body: 4 << 20,
        interaction_id: false,
        idempotency_key: IdempotencyKey::Optional,
    }
}

/// RFC 7797 section 4: the payload `$.02` signed with HS256 and the key of
/// RFC 7515 appendix A.1, with the payload encoded (4.1) and not (4.2).
/// The signing input is what countersign builds; HMAC stands in for the
/// algorithm so the RFC's published signatures can be compared.
#[test]
fn the_signing_input_matches_rfc_7797_examples_both_ways() {
    let key = B64
        .decode("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow")
        .unwrap();
    let hs256 = |input: &[u8]| {
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(input);
        B64.encode(mac.finalize().into_bytes())
    };
    let (encoded, input) = signing_input(&json!({"alg": "HS256"}), b"$.02", false);
    assert_eq!(encoded, "eyJhbGciOiJIUzI1NiJ9");
    assert_eq!(input, b"eyJhbGciOiJIUzI1NiJ9.JC4wMg");
    assert_eq!(hs256(&input), "5mvfOroL-g7HyqJoozehmsaqmvTYGEq5jTI1gVvoEoQ");

    let header = json!({"alg": "HS256", "b64": false, "crit": ["b64"]});
    let (encoded, input) = signing_input(&header, b"$.02", true);
    assert_eq!(
        encoded,
        "eyJhbGciOiJIUzI1NiIsImI2NCI6ZmFsc2UsImNyaXQiOlsiYjY0Il19"
    );
    assert_eq!(
        input,
        b"eyJhbGciOiJIUzI1NiIsImI2NCI6ZmFsc2UsImNyaXQiOlsiYjY0Il19.$.02"
    );
    assert_eq!(hs256(&input), "A5dxf2s96_n5FLueVuW1Z_vh161FwXZC4YLPff6dmDY");
}

#[test]
fn from_3_1_4_the_header_has_no_b64_and_crit_lists_the_three_claims() {
    let h = protected_header(&config("3.1.10", SigningAlg::Ps256), 1_700_000_000);
    assert_eq!(
        h,
        json!({
            "alg": "PS256",
            "kid": "rt0rxv7lo86ohb6wNLDheQrEfyY",
            "cty": "application/json",
            "http://openbanking.org.uk/iat": 1_700_000_000u64,
            "http://openbanking.org.uk/iss": "0015800001041RHAAY/4ZsLc3Kqh8y9ia3e9ooc8Y",
            "http://openbanking.org.uk/tan": "openbanking.org.uk",
            "crit": [
                "http://openbanking.org.uk/iat",
                "http://openbanking.org.uk/iss",
                "http://openbanking.org.uk/tan"
            ],
        })
    );
    assert!(
        h["http://openbanking.org.uk/iat"].is_u64(),
        "a JSON integer"
    );
}

#[test]
fn before_3_1_4_the_header_carries_b64_false_listed_in_crit() {
    let mut c = config("3.1.3", SigningAlg::Ps256);
    c.typ = true;
    let h = protected_header(&c, 42);
    assert_eq!(h["b64"], json!(false));
    assert_eq!(h["typ"], "JOSE");
    assert_eq!(
        h["crit"],
        json!([
            "b64",
            "http://openbanking.org.uk/iat",
            "http://openbanking.org.uk/iss",
            "http://openbanking.org.uk/tan"
        ])
    );
}

fn public_key(alg: SigningAlg) -> Vec<u8> {
    match alg {
        SigningAlg::Es256 => EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &pkcs8(EC),
            crate::random::generator(),
        )
        .unwrap()
        .public_key()
        .as_ref()
        .to_vec(),
        _ => RsaKeyPair::from_pkcs8(&pkcs8(RSA))
            .unwrap()
            .public_key()
            .as_ref()
            .to_vec(),
    }
}

/// Verifies `jws` (compact, detached) over `body` as a bank would, and
/// returns its protected header.
fn verify(jws: &str, body: &[u8], alg: SigningAlg) -> serde_json::Value {
    let (header, rest) = jws.split_once('.').unwrap();
    let sig = rest.strip_prefix('.').expect("the payload part is empty");
    let parsed: serde_json::Value = serde_json::from_slice(&B64.decode(header).unwrap()).unwrap();
    let mut input = format!("{header}.").into_bytes();
    if parsed["b64"] == json!(false) {
        input.extend_from_slice(body);
    } else {
        input.extend_from_slice(B64.encode(body).as_bytes());
    }
    let verifier: &dyn signature::VerificationAlgorithm = match alg {
        SigningAlg::Es256 => &signature::ECDSA_P256_SHA256_FIXED,
        _ => &signature::RSA_PSS_2048_8192_SHA256,
    };
    signature::UnparsedPublicKey::new(verifier, public_key(alg))
        .verify(&input, &B64.decode(sig).unwrap())
        .expect("the signature verifies");
    parsed
}

fn post(body: &[u8]) -> (http::request::Parts, BodyDigest) {
    let (parts, ()) =
        Request::post("https://ob.bank.test/open-banking/v3.1/pisp/domestic-payment-consents")
            .header("content-type", "application/json")
            .body(())
            .unwrap()
            .into_parts();
    (parts, digest(body))
}

fn post_parts() -> http::request::Parts {
    Request::post("https://ob.bank.test/p")
        .body(())
        .unwrap()
        .into_parts()
        .0
}

/// The body through the same hash the proxy feeds, in small chunks.
fn digest(body: &[u8]) -> BodyDigest {
    let cred = JwsDetached::build("bank", &config("3.1.10", SigningAlg::Ps256)).unwrap();
    let mut hash = BodyHash::default();
    cred.body_hash(&post_parts(), &mut hash);
    for chunk in body.chunks(7) {
        hash.update(chunk);
    }
    hash.finish()
}

#[test]
fn each_version_and_algorithm_signs_the_exact_body_verifiably() {
    let body = br#"{"Data":{"Initiation":{"InstructionIdentification":"ACME412","InstructedAmount":{"Amount":"165.88","Currency":"GBP"}}},"Risk":{}}"#;
    for (version, alg) in [
        ("3.1.10", SigningAlg::Ps256),
        ("3.1.3", SigningAlg::Ps256),
        ("4.0", SigningAlg::Es256),
        ("3.1.2", SigningAlg::Es256),
    ] {
        let cred = JwsDetached::build("bank", &config(version, alg)).unwrap();
        let (mut parts, digest) = post(body);
        let params = SignParams {
            nonce: None,
            epoch: Some(1_700_000_000),
        };
        cred.apply(&mut parts, digest, &params).unwrap();
        let jws = parts.headers[X_JWS_SIGNATURE].to_str().unwrap();
        let header = verify(jws, body, alg);
        assert_eq!(header["alg"], alg.as_str(), "{version}");
        assert_eq!(header["http://openbanking.org.uk/iat"], 1_700_000_000u64);
        assert_eq!(
            header.get("b64").is_some(),
            ObVersion::parse(version).unwrap().unencoded_payload(),
            "{version}: {header}"
        );
        // A changed body does not verify.
        let verifier: &dyn signature::VerificationAlgorithm = match alg {
            SigningAlg::Es256 => &signature::ECDSA_P256_SHA256_FIXED,
            _ => &signature::RSA_PSS_2048_8192_SHA256,
        };
        let (h, sig) = jws.split_once("..").unwrap();
        let mut tampered = format!("{h}.").into_bytes();
        let other = br#"{"Data":{}}"#;
        if header.get("b64").is_some() {
            tampered.extend_from_slice(other);
        } else {
            tampered.extend_from_slice(B64.encode(other).as_bytes());
        }
        assert!(signature::UnparsedPublicKey::new(verifier, public_key(alg))
            .verify(&tampered, &B64.decode(sig).unwrap())
            .is_err());
    }
}

#[test]
fn a_request_without_a_body_gets_no_signature() {
    let cred = JwsDetached::build("bank", &config("3.1.10", SigningAlg::Ps256)).unwrap();
    let (mut parts, ()) = Request::get("https://ob.bank.test/accounts")
        .body(())
        .unwrap()
        .into_parts();
    cred.apply(&mut parts, BodyDigest::Absent, &SignParams::default())
        .unwrap();
    assert!(parts.headers.get(X_JWS_SIGNATURE).is_none());
}

#[test]
fn the_interaction_id_is_a_fresh_uuid_v4_unless_the_app_sent_one() {
    let mut c = config("3.1.10", SigningAlg::Ps256);
    c.interaction_id = true;
    let cred = JwsDetached::build("bank", &c).unwrap();
    let ids: Vec<String> = (0..2)
        .map(|_| {
            let (mut parts, digest) = post(b"{}");
            cred.apply(&mut parts, digest, &SignParams::default())
                .unwrap();
            parts.headers[X_FAPI_INTERACTION_ID]
                .to_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_ne!(ids[0], ids[1]);
    for id in &ids {
        let groups: Vec<&str> = id.split('-').collect();
        assert_eq!(
            groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12],
            "{id}"
        );
        assert!(id
            .bytes()
            .all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_eq!(&groups[2][..1], "4", "version 4: {id}");
        assert!("89ab".contains(&groups[3][..1]), "RFC 9562 variant: {id}");
    }

    let (mut parts, digest) = post(b"{}");
    parts
        .headers
        .insert(X_FAPI_INTERACTION_ID, "app-chosen-id".parse().unwrap());
    cred.apply(&mut parts, digest, &SignParams::default())
        .unwrap();
    let sent: Vec<_> = parts
        .headers
        .get_all(X_FAPI_INTERACTION_ID)
        .iter()
        .collect();
    assert_eq!(sent, ["app-chosen-id"]);

    let (mut parts, digest) = post(b"{}");
    let fixed = SignParams {
        nonce: Some("93bac548-d2de-4546-b106-880a5018460d".into()),
        epoch: None,
    };
    cred.apply(&mut parts, digest, &fixed).unwrap();
    assert_eq!(
        parts.headers[X_FAPI_INTERACTION_ID],
        "93bac548-d2de-4546-b106-880a5018460d"
    );
}

#[test]
fn a_required_idempotency_key_is_checked_on_post_and_put_only() {
    let mut c = config("3.1.10", SigningAlg::Ps256);
    c.idempotency_key = IdempotencyKey::Required;
    let cred = JwsDetached::build("bank", &c).unwrap();
    let parts = |method: &str, key: Option<&str>| {
        let mut b = Request::builder()
            .method(method)
            .uri("https://ob.bank.test/p");
        if let Some(k) = key {
            b = b.header("x-idempotency-key", k);
        }
        b.body(()).unwrap().into_parts().0
    };
    for method in ["POST", "PUT"] {
        let e = cred.refuse_early(&parts(method, None)).unwrap_err();
        assert!(
            e.to_string()
                .contains("x-idempotency-key is missing: credential `bank` requires it"),
            "{e}"
        );
        assert!(cred.refuse_early(&parts(method, Some("  "))).is_err());
        cred.refuse_early(&parts(method, Some("FRESCO.21302.GFX.20")))
            .unwrap();
    }
    for method in ["GET", "DELETE", "PATCH"] {
        cred.refuse_early(&parts(method, None)).unwrap();
    }
    let mut c = config("3.1.10", SigningAlg::Ps256);
    c.idempotency_key = IdempotencyKey::Optional;
    let cred = JwsDetached::build("bank", &c).unwrap();
    cred.refuse_early(&parts("POST", None)).unwrap();
}

#[test]
fn a_key_that_does_not_suit_the_algorithm_is_refused_and_debug_hides_it() {
    let e = Signer::new(&pkcs8(EC), SigningAlg::Ps256).unwrap_err();
    assert!(e.contains("is not an RSA key usable for PS256"), "{e}");
    let e = Signer::new(&pkcs8(RSA), SigningAlg::Es256).unwrap_err();
    assert!(e.contains("is not a P-256 key usable for ES256"), "{e}");
    let cred = JwsDetached::build("bank", &config("3.1.10", SigningAlg::Ps256)).unwrap();
    let shown = format!("{cred:?}");
    assert!(
        !shown.contains("pkcs8: SecretBytes([") && shown.contains("<redacted>"),
        "{shown}"
    );
}
