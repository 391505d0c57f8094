//! The request object: signed with the credential's key (verified here
//! with ring from the public half), its header and the claims FAPI and UK
//! open banking ask for. (oidc-provider checks it independently in the
//! interop suite.)

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use ring::signature::{self, EcdsaKeyPair, KeyPair as _, RsaKeyPair};
use rustls_pki_types::pem::PemObject;
use serde_json::Value;

use super::*;
use crate::config::{JwtKey, SecretBytes, SigningAlg};

const RSA: &str = include_str!("../../../../../tests/integration/oauth2/test-rsa-key.pem");
const EC: &str = include_str!("../../../../../tests/integration/oauth2/test-ec-key.pem");

fn pkcs8(pem: &str) -> Vec<u8> {
    match rustls_pki_types::PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap() {
        rustls_pki_types::PrivateKeyDer::Pkcs8(k) => k.secret_pkcs8_der().to_vec(),
        _ => panic!("fixture is PKCS#8"),
    }
}

fn signer(pem: &str, alg: SigningAlg) -> AssertionSigner {
    AssertionSigner::new(&JwtKey {
        pkcs8: SecretBytes::new(pkcs8(pem)),
        alg,
        kid: Some("sig-1".into()),
        audience: "https://bank.test/as".into(),
    })
    .unwrap()
}

/// Verifies the JWS with the public half of `pem`; (header, claims).
fn verified(jws: &str, pem: &str, alg: SigningAlg) -> (Value, Value) {
    let der = pkcs8(pem);
    let (verifier, public): (&dyn signature::VerificationAlgorithm, Vec<u8>) = match alg {
        SigningAlg::Es256 => (
            &signature::ECDSA_P256_SHA256_FIXED,
            EcdsaKeyPair::from_pkcs8(
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                &der,
                crate::random::generator(),
            )
            .unwrap()
            .public_key()
            .as_ref()
            .to_vec(),
        ),
        _ => (
            &signature::RSA_PSS_2048_8192_SHA256,
            RsaKeyPair::from_pkcs8(&der)
                .unwrap()
                .public_key()
                .as_ref()
                .to_vec(),
        ),
    };
    let (input, sig) = jws.rsplit_once('.').unwrap();
    signature::UnparsedPublicKey::new(verifier, public)
        .verify(input.as_bytes(), &B64.decode(sig).unwrap())
        .expect("the request object's signature verifies");
    let (h, c) = input.split_once('.').unwrap();
    let parse = |p: &str| serde_json::from_slice(&B64.decode(p).unwrap()).unwrap();
    (parse(h), parse(c))
}

fn params() -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code id_token".into()),
        ("client_id", "tpp-1".into()),
        ("redirect_uri", "https://tpp.test/cb".into()),
        ("scope", "openid accounts".into()),
        ("state", "st-1".into()),
        ("nonce", "n-1".into()),
        ("code_challenge", "ch-1".into()),
        ("code_challenge_method", "S256".into()),
    ]
}

#[test]
fn ps256_and_es256_objects_carry_every_parameter_and_the_fapi_claims() {
    for (pem, alg) in [(RSA, SigningAlg::Ps256), (EC, SigningAlg::Es256)] {
        let jws = request_object(
            &signer(pem, alg),
            "tpp-1",
            &params(),
            None,
            1_700_000_000,
            300,
        )
        .unwrap();
        let (header, claims) = verified(jws.expose(), pem, alg);
        assert_eq!(header["alg"], alg.as_str());
        assert_eq!(header["kid"], "sig-1");
        assert_eq!(header["typ"], "oauth-authz-req+jwt");
        for (name, value) in params() {
            assert_eq!(claims[name], value.as_str(), "{name}");
        }
        assert_eq!(claims["iss"], "tpp-1");
        assert_eq!(claims["aud"], "https://bank.test/as");
        assert_eq!(claims["iat"], 1_700_000_000u64);
        assert_eq!(claims["nbf"], 1_700_000_000u64);
        let exp = claims["exp"].as_u64().unwrap();
        assert!(
            exp > 1_700_000_000 && exp - 1_700_000_000 <= 3600,
            "FAPI: at most 60 min"
        );
        assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));
        assert!(
            claims.get("claims").is_none(),
            "no intent, no claims request"
        );
    }
}

#[test]
fn the_intent_is_an_essential_claim_of_the_id_token_and_userinfo() {
    let jws = request_object(
        &signer(EC, SigningAlg::Es256),
        "tpp-1",
        &params(),
        Some("urn-bank-intent-88379"),
        1_700_000_000,
        300,
    )
    .unwrap();
    let (_, claims) = verified(jws.expose(), EC, SigningAlg::Es256);
    for part in ["id_token", "userinfo"] {
        let asked = &claims["claims"][part]["openbanking_intent_id"];
        assert_eq!(asked["value"], "urn-bank-intent-88379", "{claims}");
        assert_eq!(asked["essential"], true, "{claims}");
    }
}

#[test]
fn each_object_has_its_own_jti() {
    let s = signer(EC, SigningAlg::Es256);
    let jti = || {
        let jws = request_object(&s, "c", &params(), None, 1, 300).unwrap();
        verified(jws.expose(), EC, SigningAlg::Es256).1["jti"].clone()
    };
    assert_ne!(jti(), jti());
}

/// `request_object_lifetime` is `exp` - `nbf`; `request_object_audience`
/// (here the signer's, as config validation sets it) is `aud`.
#[test]
fn the_lifetime_and_audience_are_the_configured_ones() {
    let s = AssertionSigner::new(&JwtKey {
        pkcs8: SecretBytes::new(pkcs8(EC)),
        alg: SigningAlg::Es256,
        kid: None,
        audience: "https://bank.test/ob-aud".into(),
    })
    .unwrap();
    for lifetime in [1, 300, 3600] {
        let jws = request_object(&s, "c", &params(), None, 1_700_000_000, lifetime).unwrap();
        let (_, claims) = verified(jws.expose(), EC, SigningAlg::Es256);
        assert_eq!(claims["aud"], "https://bank.test/ob-aud");
        assert_eq!(claims["nbf"], 1_700_000_000u64);
        assert_eq!(claims["exp"], 1_700_000_000u64 + lifetime);
    }
}
