//! OpenID Provider discovery and the FAPI consent flow against
//! oidc-provider: the credential names only its `issuer`, and countersign
//! finds every endpoint (and the provider's keys) in the server's own
//! discovery document.

use super::*;
use crate::browser::forms;
use consent::{consent, consent_page, consent_page_from, consent_without_intent, started};

/// A sidecar config like `config`'s, but with `issuer` instead of
/// `token_url`.
fn discovered(server: &OidcProvider, upstream: &Upstream, credential: &str) -> String {
    format!(
        r#"
[proxy]
listen = "127.0.0.1:0"

[credential.api]
type = "oauth2"
issuer = {}
{credential}

[[route]]
name = "api"
hosts = ["api.interop.test"]
upstream = "{}"
credential = "api"
"#,
        toml_str(&server.info.issuer),
        upstream.http_url()
    )
}

/// private_key_jwt with nothing but the issuer configured: the token
/// endpoint comes from discovery, and the assertion's audience defaults to
/// the issuer (as FAPI asks), which the server accepts.
#[tokio::test]
#[ignore = "interop: needs `npm ci` in tests/interop/oidc-provider; run by .ci/run"]
async fn the_token_endpoint_is_discovered_from_the_issuer() {
    let server = OidcProvider::start();
    let upstream = Upstream::http().await;
    let credential = format!(
        "grant = \"client_credentials\"\nclient_id = \"jwt-client-es256\"\nclient_auth = \"private_key_jwt\"\nsigning_alg = \"ES256\"\nkid = \"ec-1\"\nprivate_key_file = {}\nscope = \"api:read\"\nresource = {}",
        toml_str(key_path(EC_KEY).to_str().unwrap()),
        toml_str(&server.info.resource),
    );
    let sidecar = Sidecar::start(&discovered(&server, &upstream, &credential)).await;
    let token = call(&sidecar, &upstream, &server).await;
    server.assert_active(&token, "jwt-client-es256").await;
    assert_eq!(
        server
            .grants("client_credentials", "jwt-client-es256")
            .await,
        1
    );
    assert_eq!(server.refusals().await, Vec::<String>::new());
}

/// The redirect URI the FAPI clients are registered with: the public host
/// the scripted browser maps to countersign's browser listener.
const REDIRECT_URI: &str = "https://countersign.test/oauth2/api/callback";
const INTENT: &str = "urn-interop-intent-88379";

/// The provider's two FAPI clients that sign with a key of their own.
#[derive(Clone, Copy)]
enum Client {
    /// `fapi-client`: RSA, PS256.
    Rsa,
    /// `fapi-client-es256`: EC P-256, ES256.
    Ec,
}

impl Client {
    fn id(self) -> &'static str {
        match self {
            Client::Rsa => "fapi-client",
            Client::Ec => "fapi-client-es256",
        }
    }

    /// Its authorization_code credential, with `extra` keys.
    fn credential(self, extra: &str) -> String {
        let (alg, key, kid) = match self {
            Client::Rsa => ("PS256", RSA_KEY, "rsa-1"),
            Client::Ec => ("ES256", EC_KEY, "ec-1"),
        };
        format!(
            "grant = \"authorization_code\"\nclient_id = \"{}\"\nclient_auth = \"private_key_jwt\"\nsigning_alg = \"{alg}\"\nkid = \"{kid}\"\nprivate_key_file = {}\nredirect_uri = \"{REDIRECT_URI}\"\nscope = \"openid accounts\"\ntoken_store = \"DIR/sessions\"\nrequest_object = \"signed\"\n{extra}\n",
            self.id(),
            toml_str(key_path(key).to_str().unwrap()),
        )
    }
}

/// countersign with `credential` (whose endpoints it discovers from
/// `server`), its sessions in a folder of its own, in front of a fresh
/// upstream.
async fn fapi_sidecar(server: &OidcProvider, credential: &str) -> (Sidecar, Upstream) {
    let upstream = Upstream::http().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sessions")).unwrap();
    let sidecar = Sidecar::start_in(dir, &discovered(server, &upstream, credential)).await;
    (sidecar, upstream)
}

/// The callback's refusal: 400 with error `code`, its body naming `reason`.
fn assert_refused(answer: &Answer, code: &str, reason: &str) {
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(
        answer.header("x-countersign-error"),
        Some(code),
        "{answer:?}"
    );
    assert!(answer.body.contains(reason), "{}", answer.body);
}

/// An API call through countersign as `session`; the upstream's bearer
/// token, which the provider must say is active and its client's.
async fn call_as(
    sidecar: &Sidecar,
    upstream: &Upstream,
    server: &OidcProvider,
    session: &str,
    client_id: &str,
) {
    let mut req = get("http://api.interop.test/v1/accounts");
    req.headers_mut()
        .insert("x-countersign-session", session.parse().unwrap());
    let answer = send(sidecar.proxy(), req).await;
    assert_eq!(answer.status, 200, "{answer:?}\n{}", server.log());
    let token = upstream
        .last()
        .header("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
        .unwrap()
        .to_string();
    server.assert_active(&token, client_id).await;
}

/// How many grants the provider has revoked.
async fn revocations(server: &OidcProvider) -> usize {
    server
        .events()
        .await
        .iter()
        .filter(|e| e["event"] == "grant.revoked")
        .count()
}

/// The request the provider accepted into its login interaction: it read
/// the consent's intent out of countersign's signed request object, as an
/// essential claim of the ID token.
async fn assert_intent_asked(server: &OidcProvider, client_id: &str, pushed: bool) {
    let events = server.events().await;
    let started = events
        .iter()
        .find(|e| e["event"] == "interaction.started" && e["client_id"] == client_id)
        .unwrap_or_else(|| panic!("no interaction: {}", server.log()));
    let intent = &started["claims"]["id_token"]["openbanking_intent_id"];
    assert_eq!(intent["value"], INTENT, "{started}");
    assert_eq!(intent["essential"], true, "{started}");
    assert_eq!(started["pushed"], pushed, "{started}");
}

/// UK open banking's consent authorization with the code flow: the request
/// object signed PS256 (and ES256 for the second client), pushed to the
/// PAR endpoint, the person logs in and consents at oidc-provider, and
/// countersign exchanges the code with private_key_jwt; the session's
/// token is one the provider says is active. The provider runs FAPI 1.0
/// Advanced for these clients, which takes the code alone only in a JARM
/// response (`response_mode = "jwt"`).
#[tokio::test]
#[ignore = "interop: needs `npm ci` in tests/interop/oidc-provider; run by .ci/run"]
async fn a_consent_with_a_pushed_signed_request_object_authorizes_a_session() {
    let server = OidcProvider::start_fapi(REDIRECT_URI);
    for client in [Client::Rsa, Client::Ec] {
        let client_id = client.id();
        let (sidecar, upstream) = fapi_sidecar(
            &server,
            &client.credential("par = true\nresponse_mode = \"jwt\""),
        )
        .await;
        let (back, mut browser) = consent(&sidecar, &server, "alice").await;
        let done = browser.request(http::Method::GET, &back, None).await;
        assert_eq!(done.status, 200, "{done:?}\n{}", server.log());
        assert!(done.body.contains("alice"), "{}", done.body);
        call_as(&sidecar, &upstream, &server, "alice", client_id).await;
        assert_intent_asked(&server, client_id, true).await;
        // Ending the session revokes it at the revocation endpoint the
        // discovery document names (no `revocation_url` is configured).
        let revoked_before = revocations(&server).await;
        let req = http::Request::delete("/oauth2/api/sessions/alice")
            .header("host", "admin")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        let ended = send(sidecar.control(), req).await;
        assert_eq!(ended.status, 200, "{ended:?}\n{}", server.log());
        let ended: serde_json::Value = serde_json::from_str(&ended.body).unwrap();
        assert_eq!(ended["revocation"], "revoked", "{ended}\n{}", server.log());
        assert_eq!(
            revocations(&server).await,
            revoked_before + 1,
            "{}",
            server.log()
        );
    }
    let refused: Vec<_> = server
        .events()
        .await
        .into_iter()
        .filter(|e| e["event"].as_str().is_some_and(|e| e.ends_with("error")))
        .collect();
    assert!(refused.is_empty(), "{refused:?}");
}

/// Without PAR the signed request object travels in the browser's URL;
/// the provider (which requires signed request objects, and under FAPI
/// 1.0 Advanced reads the parameters only from inside it) takes it.
#[tokio::test]
#[ignore = "interop: needs `npm ci` in tests/interop/oidc-provider; run by .ci/run"]
async fn a_signed_request_object_by_value_is_accepted() {
    let server = OidcProvider::start_fapi(REDIRECT_URI);
    let (sidecar, upstream) =
        fapi_sidecar(&server, &Client::Rsa.credential("response_mode = \"jwt\"")).await;
    let (back, mut browser) = consent(&sidecar, &server, "bob").await;
    let done = browser.request(http::Method::GET, &back, None).await;
    assert_eq!(done.status, 200, "{done:?}\n{}", server.log());
    call_as(&sidecar, &upstream, &server, "bob", "fapi-client").await;
    assert_intent_asked(&server, "fapi-client", false).await;
}

/// The control: the provider does run FAPI 1.0 Advanced for the UK
/// clients. The code alone, without JARM, is what FAPI 1.0 refuses, and
/// the provider refuses it at the PAR endpoint; countersign's start says
/// so (502, the OAuth error code) and the browser never reaches the
/// provider's pages.
#[tokio::test]
#[ignore = "interop: needs `npm ci` in tests/interop/oidc-provider; run by .ci/run"]
async fn the_provider_refuses_what_fapi_1_0_advanced_forbids() {
    let server = OidcProvider::start_fapi(REDIRECT_URI);
    let (sidecar, _upstream) = fapi_sidecar(&server, &Client::Rsa.credential("par = true")).await;
    let ticket = format!("/oauth2/api/authorize?session=alice&intent={INTENT}");
    let (mut browser, start) = started(&sidecar, &ticket).await;
    let refused = browser.request(http::Method::GET, &start, None).await;
    assert_eq!(refused.status, 502, "{refused:?}\n{}", server.log());
    assert!(
        refused
            .body
            .contains("PAR endpoint answered 400 Bad Request (invalid_request)"),
        "{}",
        refused.body
    );
    let events = server.events().await;
    let par = events
        .iter()
        .find(|e| e["event"] == "pushed_authorization_request.error")
        .unwrap_or_else(|| panic!("{events:?}"));
    assert_eq!(
        par["error_description"],
        "requested response_mode is not allowed for this client or request",
        "{par}"
    );
}

mod consent;
mod fapi2;
mod hybrid;
mod mtls;
mod request_object;
mod revoked;
