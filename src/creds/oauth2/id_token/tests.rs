//! Every ID token rule, each broken on its own in an otherwise good token
//! signed by a test "provider" key; the hash rule against OpenID Connect
//! Core's published example.

use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair as _, RsaKeyPair};
use rustls_pki_types::pem::PemObject;
use serde_json::json;

use super::*;
use crate::config::{JwtKey, SecretBytes, SigningAlg};
use crate::creds::oauth2::jwt::AssertionSigner;

const RSA: &str = include_str!("../../../../tests/integration/oauth2/test-rsa-key.pem");
pub(crate) const EC: &str = include_str!("../../../../tests/integration/oauth2/test-ec-key.pem");
pub(crate) const NOW: u64 = 1_700_000_000;

pub(crate) fn pkcs8(pem: &str) -> Vec<u8> {
    match rustls_pki_types::PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap() {
        rustls_pki_types::PrivateKeyDer::Pkcs8(k) => k.secret_pkcs8_der().to_vec(),
        _ => panic!("fixture is PKCS#8"),
    }
}

pub(crate) fn another_ec_key() -> Vec<u8> {
    EcdsaKeyPair::generate_pkcs8(
        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &SystemRandom::new(),
    )
    .unwrap()
    .as_ref()
    .to_vec()
}

/// The provider: signs `claims` with `der` as `alg`, header `kid`.
pub(crate) fn issue(der: &[u8], alg: SigningAlg, kid: &str, claims: &Value) -> String {
    AssertionSigner::new(&JwtKey {
        pkcs8: SecretBytes::new(der.to_vec()),
        alg,
        kid: Some(kid.into()),
        audience: String::new(),
    })
    .unwrap()
    .compact("JWT", claims)
    .unwrap()
    .expose()
    .to_string()
}

/// The provider's published key for `der`, as its JWKS would list it.
pub(crate) fn published(der: &[u8], alg: SigningAlg, kid: &str) -> Jwk {
    let jwk = match alg {
        SigningAlg::Es256 => {
            let pair = EcdsaKeyPair::from_pkcs8(
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                der,
                &SystemRandom::new(),
            )
            .unwrap();
            let point = pair.public_key().as_ref();
            json!({"kty":"EC","crv":"P-256","kid":kid,
                   "x":B64.encode(&point[1..33]),"y":B64.encode(&point[33..])})
        }
        _ => {
            let pair = RsaKeyPair::from_pkcs8(der).unwrap();
            let public: signature::RsaPublicKeyComponents<Vec<u8>> = pair.public().into();
            json!({"kty":"RSA","kid":kid,"n":B64.encode(&public.n),"e":B64.encode(&public.e)})
        }
    };
    let set = json!({ "keys": [jwk] }).to_string();
    super::super::discovery::parse_jwks(set.as_bytes())
        .unwrap()
        .remove(0)
}

fn good_claims() -> Value {
    json!({
        "iss": "https://bank.test/as",
        "sub": "psu-1",
        "aud": "tpp-1",
        "exp": NOW + 60,
        "iat": NOW,
        "nonce": "n-0S6_WzA2Mj",
        "c_hash": half_hash("code-1"),
        "s_hash": half_hash("state-1"),
        "openbanking_intent_id": "urn-bank-intent-1",
    })
}

fn expected() -> Expected<'static> {
    Expected {
        issuer: "https://bank.test/as",
        client_id: "tpp-1",
        nonce: Some("n-0S6_WzA2Mj"),
        code: Some("code-1"),
        state: Some("state-1"),
        now: NOW,
    }
}

/// Validates `token` with the provider's key set holding `keys`.
async fn check(token: &str, keys: Vec<Jwk>) -> Result<Claims, IdTokenError> {
    validate(token, &expected(), |kid, alg| async move {
        keys.into_iter()
            .find(|k| k.suits(&alg) && (kid.is_none() || k.kid == kid))
            .ok_or(DiscoveryError::NoKey(kid.unwrap_or_default(), alg))
    })
    .await
}

async fn with_claims(change: impl FnOnce(&mut Value)) -> Result<Claims, IdTokenError> {
    let der = pkcs8(EC);
    let mut claims = good_claims();
    change(&mut claims);
    let token = issue(&der, SigningAlg::Es256, "p1", &claims);
    check(&token, vec![published(&der, SigningAlg::Es256, "p1")]).await
}

#[test]
fn the_hashes_match_openid_connects_published_example() {
    // OpenID Connect Core 1.0 Appendix A.4 (code id_token) and A.5's at_hash.
    assert_eq!(
        half_hash("Qcb0Orv1zh30vL1MPRsbm-diHiMwcLyZvn1arpZv-Jxf_11jnpEX3Tgfvk"),
        "LDktKdoQak3Pk0cnXxCltA"
    );
    assert_eq!(
        half_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
        "77QmUPtjPfzWtF2AnpK9RQ"
    );
}

#[tokio::test]
async fn a_good_token_passes_with_each_algorithm() {
    for (pem, alg) in [
        (EC, SigningAlg::Es256),
        (RSA, SigningAlg::Ps256),
        (RSA, SigningAlg::Rs256),
    ] {
        let der = pkcs8(pem);
        let token = issue(&der, alg, "p1", &good_claims());
        let claims = check(&token, vec![published(&der, alg, "p1")])
            .await
            .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(claims.0["openbanking_intent_id"], "urn-bank-intent-1");
    }
}

#[tokio::test]
async fn each_broken_claim_is_refused_with_its_reason() {
    type Change = fn(&mut Value);
    let cases: &[(Change, &str)] = &[
        (|c| c["nonce"] = json!("another"), "nonce"),
        (
            |c| {
                c.as_object_mut().unwrap().remove("nonce");
            },
            "nonce",
        ),
        (|c| c["c_hash"] = json!(half_hash("another-code")), "c_hash"),
        (
            |c| {
                c.as_object_mut().unwrap().remove("c_hash");
            },
            "c_hash",
        ),
        (
            |c| c["s_hash"] = json!(half_hash("another-state")),
            "s_hash",
        ),
        (
            |c| {
                c.as_object_mut().unwrap().remove("s_hash");
            },
            "s_hash",
        ),
        (|c| c["iss"] = json!("https://bank.test/as/"), "iss"),
        (|c| c["aud"] = json!("tpp-2"), "aud"),
        (|c| c["aud"] = json!(["tpp-1", "tpp-2"]), "azp"),
        (
            |c| {
                c["aud"] = json!(["tpp-1", "tpp-2"]);
                c["azp"] = json!("tpp-2");
            },
            "azp",
        ),
        (|c| c["exp"] = json!(NOW - SKEW_SECS), "expired"),
        (
            |c| {
                c.as_object_mut().unwrap().remove("exp");
            },
            "expired",
        ),
        (|c| c["iat"] = json!(NOW + SKEW_SECS + 1), "iat"),
        (|c| c["nbf"] = json!(NOW + SKEW_SECS + 1), "nbf"),
    ];
    for (change, reason) in cases {
        let e = with_claims(change).await.unwrap_err();
        assert!(e.to_string().contains(reason), "{reason}: {e}");
    }
    // Several audiences with this client as `azp`, and clocks within the
    // skew, are fine.
    with_claims(|c| {
        c["aud"] = json!(["tpp-1", "tpp-2"]);
        c["azp"] = json!("tpp-1");
        c["exp"] = json!(NOW - SKEW_SECS + 1);
        c["iat"] = json!(NOW + SKEW_SECS);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_token_from_another_signer_or_an_unknown_key_is_refused() {
    let der = pkcs8(EC);
    let published_key = published(&der, SigningAlg::Es256, "p1");
    // Signed by someone else under the provider's kid.
    let forged = issue(&another_ec_key(), SigningAlg::Es256, "p1", &good_claims());
    let e = check(&forged, vec![published_key.clone()])
        .await
        .unwrap_err();
    assert!(matches!(e, IdTokenError::Signature), "{e}");
    // A kid the provider does not publish.
    let unknown = issue(&der, SigningAlg::Es256, "p9", &good_claims());
    let e = check(&unknown, vec![published_key.clone()])
        .await
        .unwrap_err();
    assert!(
        matches!(e, IdTokenError::Keys(DiscoveryError::NoKey(..))),
        "{e}"
    );
    // The claims changed after signing.
    let token = issue(&der, SigningAlg::Es256, "p1", &good_claims());
    let (h, rest) = token.split_once('.').unwrap();
    let (_, s) = rest.split_once('.').unwrap();
    let mut claims = good_claims();
    claims["sub"] = json!("psu-2");
    let tampered = format!("{h}.{}.{s}", B64.encode(claims.to_string()));
    let e = check(&tampered, vec![published_key]).await.unwrap_err();
    assert!(matches!(e, IdTokenError::Signature), "{e}");
}

#[tokio::test]
async fn unsigned_mac_and_malformed_tokens_are_refused() {
    let none = format!(
        "{}.{}.",
        B64.encode(r#"{"alg":"none"}"#),
        B64.encode(good_claims().to_string())
    );
    assert!(matches!(check(&none, vec![]).await, Err(IdTokenError::Algorithm(a)) if a == "none"));
    let hs = format!(
        "{}.{}.c2ln",
        B64.encode(r#"{"alg":"HS256"}"#),
        B64.encode(good_claims().to_string())
    );
    assert!(matches!(
        check(&hs, vec![]).await,
        Err(IdTokenError::Algorithm(_))
    ));
    for bad in ["", "a.b", "a.b.c.d", "!!.e30.sig", "e30.bm90IGpzb24.c2ln"] {
        assert!(
            matches!(check(bad, vec![]).await, Err(IdTokenError::Malformed)),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn the_intent_in_the_id_token_must_be_the_one_asked_for() {
    let claims = with_claims(|_| {}).await.unwrap();
    claims.check_intent("urn-bank-intent-1").unwrap();
    let e = claims.check_intent("urn-bank-intent-2").unwrap_err();
    assert!(matches!(e, IdTokenError::Intent), "{e}");
    let without = with_claims(|c| {
        c.as_object_mut().unwrap().remove("openbanking_intent_id");
    })
    .await
    .unwrap();
    assert!(without.check_intent("urn-bank-intent-1").is_err());
}

#[tokio::test]
async fn the_token_endpoints_id_token_needs_no_hashes_but_the_rest() {
    let der = pkcs8(EC);
    let key = published(&der, SigningAlg::Es256, "p1");
    let mut claims = good_claims();
    let map = claims.as_object_mut().unwrap();
    map.remove("c_hash");
    map.remove("s_hash");
    let token = issue(&der, SigningAlg::Es256, "p1", &claims);
    let back = || Expected {
        code: None,
        state: None,
        ..expected()
    };
    let found = |k: Jwk| move |_, _| async move { Ok::<_, DiscoveryError>(k) };
    let checked = validate(&token, &back(), found(key.clone())).await.unwrap();
    assert_eq!(checked.subject(), Some("psu-1"));
    // Without a nonce sent, none is asked for.
    let mut plain = claims.clone();
    plain.as_object_mut().unwrap().remove("nonce");
    let token_without = issue(&der, SigningAlg::Es256, "p1", &plain);
    let unsent = Expected {
        nonce: None,
        ..back()
    };
    validate(&token_without, &unsent, found(key.clone()))
        .await
        .unwrap();
    // The front channel's rules still want both hashes.
    let e = validate(&token, &expected(), found(key)).await.unwrap_err();
    assert!(matches!(e, IdTokenError::CodeHash), "{e}");
}
