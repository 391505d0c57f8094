//! `request_object_audience` and `request_object_lifetime` against the
//! FAPI-style oidc-provider, which reads the pushed request object only
//! when its `aud` names the provider's issuer and its `exp` has not passed.

use super::*;
use crate::browser::Browser;

/// The issuer named as the audience and FAPI's longest lifetime (60
/// minutes): the provider takes the request object and the consent
/// authorizes a session. Another audience: the provider refuses the
/// pushed object, and `start` answers `502` naming its error. The code
/// comes back as a JARM response: FAPI 1.0 Advanced, which the provider
/// enforces, takes a plain `code` response only that way.
#[tokio::test]
#[ignore = "interop: needs `npm ci` in tests/interop/oidc-provider; run by .ci/run"]
async fn the_request_objects_configured_audience_and_lifetime_reach_the_provider() {
    let server = OidcProvider::start_fapi(REDIRECT_URI);
    let extra = format!(
        "par = true\nresponse_mode = \"jwt\"\nrequest_object_audience = {}\nrequest_object_lifetime = \"60m\"",
        toml_str(&server.info.issuer)
    );
    let (sidecar, upstream) = fapi_sidecar(&server, &Client::Rsa.credential(&extra)).await;
    let (back, mut browser) = consent(&sidecar, &server, "alice").await;
    let done = browser.request(http::Method::GET, &back, None).await;
    assert_eq!(done.status, 200, "{done:?}\n{}", server.log());
    call_as(&sidecar, &upstream, &server, "alice", "fapi-client").await;
    assert_intent_asked(&server, "fapi-client", true).await;

    let extra = "par = true\nresponse_mode = \"jwt\"\nrequest_object_audience = \"https://elsewhere.example\"";
    let (sidecar, _upstream) = fapi_sidecar(&server, &Client::Rsa.credential(extra)).await;
    let ticket = send(
        sidecar.control(),
        http::Request::post("/oauth2/api/authorize?session=bob")
            .header("host", "admin")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(ticket.status, 200, "{ticket:?}");
    let ticket: serde_json::Value = serde_json::from_str(&ticket.body).unwrap();
    let mut browser = Browser::default();
    browser.map("countersign.test", sidecar.browser());
    let start = format!(
        "https://countersign.test{}",
        ticket["start"].as_str().unwrap()
    );
    let refused = browser.request(http::Method::GET, &start, None).await;
    assert_eq!(refused.status, 502, "{refused:?}\n{}", server.log());
    assert!(
        refused.body.contains("(invalid_request_object)"),
        "{}",
        refused.body
    );
    assert_eq!(server.grants("authorization_code", "fapi-client").await, 1);
}
