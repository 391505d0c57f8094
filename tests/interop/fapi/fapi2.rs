//! FAPI 2.0 (Security Profile) against the FAPI-style oidc-provider:
//! client `fapi2-client` must push its authorization request (PAR), the
//! provider asks PKCE of every code flow, and its access tokens must be
//! DPoP-bound (RFC 9449), with the server's nonce. countersign puts
//! `dpop_jkt` (its key's thumbprint) in the pushed request, so the code is
//! bound to its key, exchanges the code with a proof signed by that key,
//! and signs a fresh proof for each API request.

use super::*;
use crate::dpop::verified;

pub(super) const CLIENT: &str = "fapi2-client";

/// The FAPI 2.0 credential: PAR, DPoP, private_key_jwt (ES256), with
/// `extra` keys.
pub(super) fn fapi2_credential(extra: &str) -> String {
    format!(
        "grant = \"authorization_code\"\nclient_id = \"{CLIENT}\"\nclient_auth = \"private_key_jwt\"\nsigning_alg = \"ES256\"\nkid = \"ec-1\"\nprivate_key_file = {}\nredirect_uri = \"{REDIRECT_URI}\"\nscope = \"openid accounts\"\ntoken_store = \"DIR/sessions\"\npar = true\ndpop = true\n{extra}\n",
        toml_str(key_path(EC_KEY).to_str().unwrap()),
    )
}

/// The consent end to end: the person logs in and consents, countersign's
/// callback exchanges the code, and an API call through countersign
/// carries a token the provider says is active and bound to the key whose
/// proof `jose` verified on that very request, the key the code was bound
/// to when the request was pushed.
#[tokio::test]
#[ignore = "interop: needs `npm ci` in tests/interop/oidc-provider; run by .ci/run"]
async fn a_fapi2_consent_binds_the_code_and_the_tokens_to_countersigns_dpop_key() {
    let server = OidcProvider::start_fapi(REDIRECT_URI);
    let (sidecar, upstream) = fapi_sidecar(&server, &fapi2_credential("")).await;
    // No consent intent: that rides only in a signed request object.
    let ticket = "/oauth2/api/authorize?session=carol";
    let (back, mut browser) = consent_page_from(&sidecar, &server, ticket).await;
    assert!(
        back.url.starts_with(REDIRECT_URI),
        "{}\n{:?}\n{}",
        back.url,
        browser.visited,
        server.log()
    );
    let done = browser.request(http::Method::GET, &back.url, None).await;
    assert_eq!(done.status, 200, "{done:?}\n{}", server.log());
    assert!(done.body.contains("carol"), "{}", done.body);

    let mut req = get("http://api.interop.test/v1/accounts?page=2");
    req.headers_mut()
        .insert("x-countersign-session", "carol".parse().unwrap());
    let answer = send(sidecar.proxy(), req).await;
    assert_eq!(answer.status, 200, "{answer:?}\n{}", server.log());
    let seen = upstream.last();
    let verdict = verified(&seen, &upstream);
    assert_eq!(verdict["ok"], true, "{verdict}");
    assert_eq!(verdict["control"], "refused", "{verdict}");
    assert_eq!(verdict["header"]["alg"], "ES256", "{verdict}");
    let jkt = verdict["jkt"].clone();
    assert_eq!(jkt.as_str().map(str::len), Some(43), "{verdict}");

    let token = seen
        .header("authorization")
        .and_then(|a| a.strip_prefix("DPoP "))
        .expect("a DPoP token")
        .to_string();
    let by_server = server.assert_active(&token, CLIENT).await;
    assert_eq!(by_server["token_type"], "DPoP", "{by_server}");
    assert_eq!(by_server["cnf"]["jkt"], jkt, "{by_server}");

    let events = server.events().await;
    // The request was pushed, and carried the same key's thumbprint.
    let started = events
        .iter()
        .find(|e| e["event"] == "interaction.started" && e["client_id"] == CLIENT)
        .unwrap_or_else(|| panic!("no interaction: {}", server.log()));
    assert_eq!(started["pushed"], true, "{started}");
    assert_eq!(started["dpop_jkt"], jkt, "{started}");
    // One code exchange: refused once for the server's nonce, then granted.
    let refused: Vec<_> = events
        .iter()
        .filter(|e| e["event"].as_str().is_some_and(|e| e.ends_with("error")))
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["error"], "use_dpop_nonce", "{refused:?}");
    assert_eq!(server.grants("authorization_code", CLIENT).await, 1);
}
