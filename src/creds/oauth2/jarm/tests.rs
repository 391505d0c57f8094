//! A JARM response: its parameters once signature, issuer, audience and
//! expiry hold; each failure on its own.

use serde_json::json;

use super::super::id_token::tests::{another_ec_key, issue, pkcs8, published, EC, NOW};
use super::*;
use crate::config::SigningAlg;

fn response() -> Value {
    json!({
        "iss": "https://bank.test/as",
        "aud": "tpp-1",
        "exp": NOW + 60,
        "code": "code-1",
        "state": "state-1",
    })
}

async fn open_signed(claims: &Value, signer: &[u8]) -> Result<Map<String, Value>, JarmError> {
    let der = pkcs8(EC);
    let key = published(&der, SigningAlg::Es256, "p1");
    let token = issue(signer, SigningAlg::Es256, "p1", claims);
    open(
        &token,
        "https://bank.test/as",
        "tpp-1",
        NOW,
        |_, _| async move { Ok(key) },
    )
    .await
}

#[tokio::test]
async fn a_checked_response_gives_its_parameters() {
    let params = open_signed(&response(), &pkcs8(EC)).await.unwrap();
    assert_eq!(params["code"], "code-1");
    assert_eq!(params["state"], "state-1");
}

#[tokio::test]
async fn each_broken_rule_is_refused() {
    type Change = fn(&mut Value);
    let cases: &[(Change, &str)] = &[
        (|c| c["iss"] = json!("https://evil.test"), "iss"),
        (|c| c["aud"] = json!("tpp-2"), "aud"),
        (|c| c["exp"] = json!(NOW - SKEW_SECS), "expired"),
        (
            |c| {
                c.as_object_mut().unwrap().remove("exp");
            },
            "expired",
        ),
    ];
    for (change, reason) in cases {
        let mut claims = response();
        change(&mut claims);
        let e = open_signed(&claims, &pkcs8(EC)).await.unwrap_err();
        assert!(e.to_string().contains(reason), "{reason}: {e}");
    }
    let e = open_signed(&response(), &another_ec_key())
        .await
        .unwrap_err();
    assert!(matches!(e, JarmError::Signature), "{e}");
}
