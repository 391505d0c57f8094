//! DPoP (RFC 9449) against oidc-provider with its `dPoP` feature: client
//! `dpop-client` is registered with `dpop_bound_access_tokens` and must
//! send the server's nonce. countersign's token request is answered
//! `use_dpop_nonce` first and then succeeds with the nonce; the server's
//! introspection says the token is DPoP-bound to the thumbprint of
//! countersign's key; and the proof on the API request is accepted by
//! panva's `jose` (dpop/verify.mjs), which computes that thumbprint itself.

use crate::integration::harness::*;
use crate::oidc_provider::{key_path, OidcProvider, RSA_KEY};
use crate::verifier;
use crate::{config, toml_str};

const CLIENT: &str = "dpop-client";

/// What the resource server's checks (jose) say of the last request the
/// upstream received.
pub(crate) fn verified(seen: &Recorded, upstream: &Upstream) -> serde_json::Value {
    let input = serde_json::json!({
        "method": seen.method.as_str(),
        "url": format!("{}{}", upstream.http_url(), seen.uri),
        "authorization": seen.header("authorization"),
        "dpop": seen.header("dpop"),
    });
    verifier::run(
        "node",
        "tests/interop/dpop/verify.mjs",
        &input,
        "needs `npm ci --prefix tests/interop/oidc-provider`",
    )
}

#[tokio::test]
#[ignore = "interop: needs `npm ci` in tests/interop/oidc-provider; run by .ci/run"]
async fn a_dpop_bound_token_from_oidc_provider_and_proofs_jose_accepts() {
    for alg in ["ES256", "EdDSA"] {
        let server = OidcProvider::start();
        let upstream = Upstream::http().await;
        let credential = format!(
            "grant = \"client_credentials\"\nclient_id = {}\nclient_secret = {}\nscope = \"api:read\"\nresource = {}\ndpop = true\ndpop_alg = \"{alg}\"",
            toml_str(CLIENT),
            toml_str(server.secret(CLIENT)),
            toml_str(&server.info.resource),
        );
        let sidecar = Sidecar::start(&config(&server, &upstream, &credential)).await;
        let mut thumbprints = Vec::new();
        for path in ["/v1/things?page=2", "/v1/other"] {
            let answer = send(
                sidecar.proxy(),
                get(&format!("http://api.interop.test{path}")),
            )
            .await;
            assert_eq!(answer.status, 200, "{alg}: {answer:?}\n{}", server.log());
            let seen = upstream.last();
            let verdict = verified(&seen, &upstream);
            assert_eq!(verdict["ok"], true, "{alg}: {verdict}");
            assert_eq!(verdict["control"], "refused", "{verdict}");
            assert_eq!(verdict["header"]["alg"], alg, "{verdict}");
            assert_eq!(verdict["jkt"].as_str().map(str::len), Some(43), "{verdict}");
            let token = seen
                .header("authorization")
                .and_then(|a| a.strip_prefix("DPoP "))
                .unwrap()
                .to_string();
            // The server's own word: its token, bound to the key whose
            // thumbprint jose computed from the proof.
            let seen_by_server = server.assert_active(&token, CLIENT).await;
            assert_eq!(seen_by_server["token_type"], "DPoP", "{seen_by_server}");
            assert_eq!(
                seen_by_server["cnf"]["jkt"], verdict["jkt"],
                "{seen_by_server}"
            );
            thumbprints.push(verdict["jkt"].clone());
        }
        assert_eq!(thumbprints[0], thumbprints[1], "one key for the credential");
        // The first token request had no nonce and was refused for it; the
        // second carried the server's nonce and got the one token.
        let refusals = server.refusals().await;
        assert_eq!(refusals.len(), 1, "{refusals:?}");
        assert!(refusals[0].contains("use_dpop_nonce"), "{refusals:?}");
        assert_eq!(server.grants("client_credentials", CLIENT).await, 1);
        sidecar.app.shutdown().await;
    }
}

/// The DPoP credential of the "FAPI 2.0 bank" recipe
/// (docs/credentials/oauth2.md) as it is written: client_credentials with
/// `private_key_jwt` signed PS256 under a `kid`, and `dpop = true`.
/// oidc-provider checks the assertion against the RSA key registered for
/// `jwt-client-ps256` (PS256 pinned), binds the token to countersign's
/// DPoP key, and `jose` accepts the proof on the API request.
#[tokio::test]
#[ignore = "interop: needs `npm ci` in tests/interop/oidc-provider; run by .ci/run"]
async fn the_fapi2_bank_recipe_private_key_jwt_ps256_with_dpop() {
    let client = "jwt-client-ps256";
    let server = OidcProvider::start();
    let upstream = Upstream::http().await;
    let credential = format!(
        "grant = \"client_credentials\"\nclient_id = \"{client}\"\nclient_auth = \"private_key_jwt\"\nprivate_key_file = {}\nsigning_alg = \"PS256\"\nkid = \"rsa-1\"\nscope = \"api:read\"\nresource = {}\ndpop = true",
        toml_str(&key_path(RSA_KEY).display().to_string()),
        toml_str(&server.info.resource),
    );
    let sidecar = Sidecar::start(&config(&server, &upstream, &credential)).await;
    let answer = send(sidecar.proxy(), get("http://api.interop.test/v1/accounts")).await;
    assert_eq!(answer.status, 200, "{answer:?}\n{}", server.log());
    let seen = upstream.last();
    let verdict = verified(&seen, &upstream);
    assert_eq!(verdict["ok"], true, "{verdict}");
    assert_eq!(verdict["header"]["alg"], "ES256", "{verdict}");
    let token = seen
        .header("authorization")
        .and_then(|a| a.strip_prefix("DPoP "))
        .expect("a DPoP token")
        .to_string();
    let by_server = server.assert_active(&token, client).await;
    assert_eq!(by_server["token_type"], "DPoP", "{by_server}");
    assert_eq!(by_server["cnf"]["jkt"], verdict["jkt"], "{by_server}");
    assert_eq!(server.grants("client_credentials", client).await, 1);
    sidecar.app.shutdown().await;
}
