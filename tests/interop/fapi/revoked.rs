//! The ID token of the token response is checked after the code is spent;
//! when it is refused, the tokens the provider just issued are revoked at
//! its (discovered) revocation endpoint, and the refusal says so.
//!
//! With the FAPI 2.0 client: FAPI 1.0 Advanced (the UK clients) has the
//! provider sign the front-channel answer too (a hybrid ID token, or
//! JARM), whose check against the wrong keys would stop the flow before
//! the exchange; FAPI 2.0's plain code reaches it.

use super::fapi2::fapi2_credential;
use super::*;

/// The provider's published keys are not the ones it signs with, so the ID
/// token of the token response fails its signature check: the person gets
/// `id-token-invalid`, saying the tokens were revoked, the provider reports
/// the grant of that very exchange revoked, and the session never serves.
#[tokio::test]
#[ignore = "interop: needs `npm ci` in tests/interop/oidc-provider; run by .ci/run"]
async fn a_refused_id_token_after_the_exchange_revokes_what_was_issued() {
    let server = OidcProvider::start_fapi_wrong_jwks(REDIRECT_URI);
    let (sidecar, upstream) = fapi_sidecar(&server, &fapi2_credential("")).await;
    let (back, mut browser) = consent_without_intent(&sidecar, &server, "eve").await;
    let refused = browser.request(http::Method::GET, &back, None).await;
    assert_eq!(refused.status, 400, "{refused:?}\n{}", server.log());
    assert_eq!(
        refused.header("x-countersign-error"),
        Some("id-token-invalid"),
        "{refused:?}"
    );
    assert!(
        refused.body.contains("revoked at the provider"),
        "{}",
        refused.body
    );
    assert!(
        refused.body.starts_with(
            "id-token-invalid; the tokens issued with it were revoked at the provider: the ID token's signature does not verify"
        ),
        "{}",
        refused.body
    );

    let events = server.events().await;
    let granted: Vec<_> = events
        .iter()
        .filter(|e| e["event"] == "grant.success" && e["grant_type"] == "authorization_code")
        .collect();
    assert_eq!(granted.len(), 1, "{events:?}");
    let grant_id = &granted[0]["grant_id"];
    assert!(grant_id.is_string(), "{events:?}");
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "grant.revoked" && &e["grant_id"] == grant_id),
        "the exchange's grant is revoked: {events:?}"
    );

    let mut req = get("http://api.interop.test/v1/accounts");
    req.headers_mut()
        .insert("x-countersign-session", "eve".parse().unwrap());
    let answer = send(sidecar.proxy(), req).await;
    assert_ne!(answer.status, 200, "{answer:?}");
    assert!(upstream.received().is_empty(), "nothing reached the API");
}

/// A revocation the provider does not confirm is told as such: here the
/// configured `revocation_url` (which wins over discovery) is the
/// provider's token endpoint, which answers a revocation request 400. The
/// person still gets `id-token-invalid`, and nothing is stored.
#[tokio::test]
#[ignore = "interop: needs `npm ci` in tests/interop/oidc-provider; run by .ci/run"]
async fn a_revocation_the_provider_refuses_is_named_in_the_refusal() {
    let server = OidcProvider::start_fapi_wrong_jwks(REDIRECT_URI);
    let extra = format!("revocation_url = {}", toml_str(&server.info.token_endpoint));
    let (sidecar, _upstream) = fapi_sidecar(&server, &fapi2_credential(&extra)).await;
    let (back, mut browser) = consent_without_intent(&sidecar, &server, "eve").await;
    let refused = browser.request(http::Method::GET, &back, None).await;
    assert_eq!(refused.status, 400, "{refused:?}\n{}", server.log());
    assert_eq!(
        refused.header("x-countersign-error"),
        Some("id-token-invalid")
    );
    assert!(
        refused.body.starts_with(
            "id-token-invalid; revoking the tokens issued with it failed (the refresh_token answered 400 Bad Request; the access_token answered 400 Bad Request); they were dropped: the ID token's signature"
        ),
        "{}",
        refused.body
    );
    let events = server.events().await;
    assert!(
        !events.iter().any(|e| e["event"] == "grant.revoked"),
        "{events:?}"
    );
}
