//! The hybrid flow (`code id_token`) against the FAPI-style oidc-provider:
//! the answer in the fragment (countersign's callback page) or posted by
//! the provider (`form_post`), its ID token checked before the code is
//! spent.

use super::*;
use crate::browser::params_of;

/// The hybrid flow with the answer in the URL fragment: the callback page
/// (its script from the same path, a strict CSP) posts the fragment back,
/// and countersign checks the provider's ID token (PS256, from its JWKS)
/// before it spends the code. A code swapped in the posted answer fails the
/// `c_hash` check and never reaches the token endpoint.
#[tokio::test]
#[ignore = "interop: needs `npm ci` in tests/interop/oidc-provider; run by .ci/run"]
async fn the_hybrid_flow_checks_the_id_token_from_the_fragment() {
    let server = OidcProvider::start_fapi(REDIRECT_URI);
    let (sidecar, upstream) = fapi_sidecar(
        &server,
        &Client::Rsa.credential("par = true\nresponse_type = \"code id_token\""),
    )
    .await;

    // First a tampered answer: another code than the ID token was issued with.
    let (back, mut browser) = consent(&sidecar, &server, "mallory").await;
    let (path, fragment) = back.split_once('#').expect("the answer is in the fragment");
    let mut answer = params_of(fragment);
    assert!(answer.contains_key("id_token"), "{answer:?}");
    answer.insert("code".into(), format!("{}x", answer["code"]));
    let fields: Vec<(String, String)> = answer.into_iter().collect();
    let refused = browser
        .request(http::Method::POST, path, Some(&fields))
        .await;
    assert_refused(&refused, "id-token-invalid", "c_hash");
    // And an answer without its ID token.
    let (back, mut browser) = consent(&sidecar, &server, "eve").await;
    let (path, fragment) = back.split_once('#').unwrap();
    let fields: Vec<(String, String)> = params_of(fragment)
        .into_iter()
        .filter(|(name, _)| name != "id_token")
        .collect();
    let refused = browser
        .request(http::Method::POST, path, Some(&fields))
        .await;
    assert_refused(&refused, "id-token-invalid", "no ID token");
    assert_eq!(server.grants("authorization_code", "fapi-client").await, 0);

    // Then the person's own answer, through the page as a browser runs it.
    let (back, mut browser) = consent(&sidecar, &server, "alice").await;
    let (path, fragment) = back.split_once('#').unwrap();
    let page = browser.request(http::Method::GET, path, None).await;
    assert_eq!(page.status, 200, "{page:?}");
    let csp = page.header("content-security-policy").unwrap_or("");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(
        page.body.contains("<script src=\"?countersign-script\""),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<script>"), "no inline script");
    let script = browser
        .request(
            http::Method::GET,
            &format!("{path}?countersign-script"),
            None,
        )
        .await;
    assert_eq!(
        script.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert!(script.body.contains("location.hash") && script.body.contains("form.submit()"));
    // What the script does: the fragment's parameters, posted to the page's path.
    let fields: Vec<(String, String)> = params_of(fragment).into_iter().collect();
    let done = browser
        .request(http::Method::POST, path, Some(&fields))
        .await;
    assert_eq!(done.status, 200, "{done:?}\n{}", server.log());
    call_as(&sidecar, &upstream, &server, "alice", "fapi-client").await;
    assert_eq!(server.grants("authorization_code", "fapi-client").await, 1);
}

/// `response_mode = "form_post"`: the provider's own page posts the
/// hybrid answer to the callback.
#[tokio::test]
#[ignore = "interop: needs `npm ci` in tests/interop/oidc-provider; run by .ci/run"]
async fn the_hybrid_flow_with_form_post() {
    let server = OidcProvider::start_fapi(REDIRECT_URI);
    let (sidecar, upstream) = fapi_sidecar(
        &server,
        &Client::Ec.credential("response_type = \"code id_token\"\nresponse_mode = \"form_post\""),
    )
    .await;
    let (page, mut browser) = consent_page(&sidecar, &server, "carol").await;
    assert_eq!(page.answer.status, 200, "{:?}", page.answer);
    let form = forms(&page.answer.body)
        .into_iter()
        .find(|f| f.action == REDIRECT_URI)
        .unwrap_or_else(|| panic!("the provider's form_post page: {}", page.answer.body));
    assert!(form.fields.iter().any(|(n, _)| n == "id_token"), "{form:?}");
    let done = browser.submit(&page.url, &form, "never:").await;
    assert_eq!(
        done.answer.status,
        200,
        "{:?}\n{}",
        done.answer,
        server.log()
    );
    call_as(&sidecar, &upstream, &server, "carol", "fapi-client-es256").await;
    assert_intent_asked(&server, "fapi-client-es256", false).await;
}

/// JARM: the answer as one signed JWT, in the query (`jwt` with `code`) or
/// posted by the provider (`form_post.jwt` with `code id_token`). A
/// response whose signature was tampered with is refused before anything
/// in it is used.
#[tokio::test]
#[ignore = "interop: needs `npm ci` in tests/interop/oidc-provider; run by .ci/run"]
async fn jarm_responses_are_checked_then_used() {
    let server = OidcProvider::start_fapi(REDIRECT_URI);
    let (sidecar, upstream) = fapi_sidecar(
        &server,
        &Client::Rsa.credential("par = true\nresponse_mode = \"jwt\""),
    )
    .await;

    let (back, mut browser) = consent(&sidecar, &server, "mallory").await;
    let (path, query) = back.split_once('?').expect("query.jwt");
    let answer = params_of(query);
    assert_eq!(
        answer.keys().collect::<Vec<_>>(),
        ["response"],
        "{answer:?}"
    );
    // One bit of the signature flipped.
    let response = &answer["response"];
    let (signed, sig) = response.rsplit_once('.').unwrap();
    let flipped = if sig.starts_with('A') { "B" } else { "A" };
    let tampered = format!("{signed}.{flipped}{}", &sig[1..]);
    let refused = browser
        .request(
            http::Method::GET,
            &format!("{path}?response={tampered}"),
            None,
        )
        .await;
    assert_refused(&refused, "jarm-invalid", "signature");
    // Plain parameters are not taken where a JARM response is expected.
    let plain = browser
        .request(http::Method::GET, &format!("{path}?state=s&code=c"), None)
        .await;
    assert_eq!(plain.header("x-countersign-error"), Some("jarm-invalid"));
    assert_eq!(server.grants("authorization_code", "fapi-client").await, 0);

    let (back, mut browser) = consent(&sidecar, &server, "alice").await;
    let done = browser.request(http::Method::GET, &back, None).await;
    assert_eq!(done.status, 200, "{done:?}\n{}", server.log());
    call_as(&sidecar, &upstream, &server, "alice", "fapi-client").await;

    // form_post.jwt with the hybrid flow: the ID token inside the JWT is
    // checked too.
    let (sidecar, upstream) = fapi_sidecar(
        &server,
        &Client::Ec
            .credential("response_type = \"code id_token\"\nresponse_mode = \"form_post.jwt\""),
    )
    .await;
    let (page, mut browser) = consent_page(&sidecar, &server, "carol").await;
    let form = forms(&page.answer.body)
        .into_iter()
        .find(|f| f.action == REDIRECT_URI)
        .unwrap_or_else(|| panic!("the provider's form_post page: {}", page.answer.body));
    let names: Vec<_> = form.fields.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["response"], "{form:?}");
    let done = browser.submit(&page.url, &form, "never:").await;
    assert_eq!(
        done.answer.status,
        200,
        "{:?}\n{}",
        done.answer,
        server.log()
    );
    call_as(&sidecar, &upstream, &server, "carol", "fapi-client-es256").await;

    // jwt with code id_token: the JWT comes in the fragment, and the
    // callback page posts it back.
    let (sidecar, upstream) = fapi_sidecar(
        &server,
        &Client::Rsa.credential("response_type = \"code id_token\"\nresponse_mode = \"jwt\""),
    )
    .await;
    let (back, mut browser) = consent(&sidecar, &server, "dave").await;
    let (path, fragment) = back.split_once('#').expect("fragment.jwt");
    let page = browser.request(http::Method::GET, path, None).await;
    assert!(page.body.contains("countersign-script"), "{page:?}");
    let fields: Vec<(String, String)> = params_of(fragment).into_iter().collect();
    assert_eq!(fields.len(), 1, "{fields:?}");
    let done = browser
        .request(http::Method::POST, path, Some(&fields))
        .await;
    assert_eq!(done.status, 200, "{done:?}\n{}", server.log());
    call_as(&sidecar, &upstream, &server, "dave", "fapi-client").await;
}

/// The hybrid credential of these tests: PS256, pushed, `code id_token`.
fn hybrid_credential() -> String {
    Client::Rsa.credential("par = true\nresponse_type = \"code id_token\"")
}

/// A front-channel ID token from another signer: the provider publishes
/// other keys (under its own kids) than it signs with, so the ID token of
/// the hybrid answer fails its signature check, and the code is never
/// sent to the token endpoint (no grant, nothing to revoke).
#[tokio::test]
#[ignore = "interop: needs `npm ci` in tests/interop/oidc-provider; run by .ci/run"]
async fn a_hybrid_id_token_from_another_signer_is_refused_before_the_exchange() {
    let server = OidcProvider::start_fapi_wrong_jwks(REDIRECT_URI);
    let (sidecar, upstream) = fapi_sidecar(&server, &hybrid_credential()).await;
    let (back, mut browser) = consent(&sidecar, &server, "mallory").await;
    let (path, fragment) = back.split_once('#').expect("the answer is in the fragment");
    let fields: Vec<(String, String)> = params_of(fragment).into_iter().collect();
    assert!(fields.iter().any(|(n, _)| n == "id_token"), "{fields:?}");
    let refused = browser
        .request(http::Method::POST, path, Some(&fields))
        .await;
    assert_refused(
        &refused,
        "id-token-invalid",
        "id-token-invalid: the ID token's signature does not verify with the provider's key",
    );
    assert!(!refused.body.contains("revok"), "{}", refused.body);
    assert_eq!(server.grants("authorization_code", "fapi-client").await, 0);
    assert_eq!(revocations(&server).await, 0);
    let mut req = get("http://api.interop.test/v1/accounts");
    req.headers_mut()
        .insert("x-countersign-session", "mallory".parse().unwrap());
    let answer = send(sidecar.proxy(), req).await;
    assert_eq!(answer.status, 403, "{answer:?}");
    assert!(upstream.received().is_empty(), "nothing reached the API");
}

/// A genuine ID token, signed by the provider, replayed from another
/// person's authorization into this one's answer (its own `state` and
/// code, from its own browser): its `nonce` is not the one sent for this
/// authorization, so it is refused before the code is spent.
#[tokio::test]
#[ignore = "interop: needs `npm ci` in tests/interop/oidc-provider; run by .ci/run"]
async fn an_id_token_replayed_from_another_authorization_is_refused_for_its_nonce() {
    let server = OidcProvider::start_fapi(REDIRECT_URI);
    let (sidecar, upstream) = fapi_sidecar(&server, &hybrid_credential()).await;
    let (theirs, _) = consent(&sidecar, &server, "alice").await;
    let theirs = params_of(theirs.split_once('#').expect("fragment").1);
    let (ours, mut browser) = consent(&sidecar, &server, "mallory").await;
    let (path, fragment) = ours.split_once('#').expect("fragment");
    let mut answer = params_of(fragment);
    assert_ne!(answer["id_token"], theirs["id_token"]);
    answer.insert("id_token".into(), theirs["id_token"].clone());
    let fields: Vec<(String, String)> = answer.into_iter().collect();
    let refused = browser
        .request(http::Method::POST, path, Some(&fields))
        .await;
    assert_refused(
        &refused,
        "id-token-invalid",
        "id-token-invalid: the ID token's `nonce` is not the one sent",
    );
    assert_eq!(server.grants("authorization_code", "fapi-client").await, 0);
    assert!(upstream.received().is_empty());
}
