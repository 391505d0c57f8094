//! UK open banking's consent over mutual TLS (FAPI 1.0 Advanced, RFC
//! 8705), as the recipe in docs/credentials/oauth2.md configures it,
//! against fapi-server.mjs with its mTLS host: the credential names only
//! the issuer and a client certificate, and countersign sends its PAR, code
//! exchange and revocation requests to the discovered
//! `mtls_endpoint_aliases` (the issuer's own host takes no certificate, so
//! a request sent there could not authenticate). The session's token is
//! bound to the certificate, which the route presents to the account API
//! (an mTLS upstream) and to the payment API (jws/bank.mjs, which checks
//! the stacked detached JWS with `jose`).

use std::net::SocketAddr;

use super::*;
use crate::browser::params_of;
use crate::jws::{payment, start_bank, ISS, KID};
use crate::mtls::{thumbprint, CLIENT_CN};

/// The mTLS host's UK clients, by how they authenticate at its token and
/// PAR endpoints.
#[derive(Clone, Copy, Debug)]
enum Auth {
    /// `fapi-mtls-client`: tls_client_auth, the certificate is the proof.
    TlsClientAuth,
    /// `fapi-mtls-jwt-client`: private_key_jwt over the mutual TLS.
    PrivateKeyJwt,
}

impl Auth {
    fn client_id(self) -> &'static str {
        match self {
            Auth::TlsClientAuth => "fapi-mtls-client",
            Auth::PrivateKeyJwt => "fapi-mtls-jwt-client",
        }
    }

    fn method(self) -> &'static str {
        match self {
            Auth::TlsClientAuth => "tls_client_auth",
            Auth::PrivateKeyJwt => "private_key_jwt",
        }
    }
}

/// The recipe's two credentials (the person's consent, the payment's
/// signature) and routes (account API, payment API), both routes with the
/// transport certificate the session's tokens are bound to.
fn recipe(server: &OidcProvider, auth: Auth, accounts: &Upstream, bank: SocketAddr) -> String {
    let key = toml_str(key_path(RSA_KEY).to_str().unwrap());
    let route = |name: &str, upstream: &str, credential: &str| {
        format!(
            "[[route]]\nname = \"{name}\"\nhosts = [\"{name}.interop.test\"]\nupstream = \"{upstream}\"\nca_file = \"upstream-ca.pem\"\nclient_cert = \"client.pem\"\nclient_key = \"client-key.pem\"\nheaders = {{ \"x-fapi-financial-id\" = \"0015800001041RHAAY\" }}\ncredential = {credential}\n"
        )
    };
    format!(
        r#"
[proxy]
listen = "127.0.0.1:0"

[credential.api]
type = "oauth2"
issuer = {issuer}
grant = "authorization_code"
client_id = "{client_id}"
client_auth = "{method}"
private_key_file = {key}
signing_alg = "PS256"
kid = "rsa-1"
client_cert = "client.pem"
client_key = "client-key.pem"
ca_file = "upstream-ca.pem"
certificate_bound = true
scope = "openid accounts"
redirect_uri = "{REDIRECT_URI}"
token_store = "DIR/sessions"
request_object = "signed"
par = true
response_type = "code id_token"

[credential.jws]
type = "jws-detached"
version = "3.1.10"
algorithm = "PS256"
private_key_file = {key}
kid = "{KID}"
issuer = "{ISS}"
interaction_id = true
idempotency_key = "required"

{accounts}
{payments}
"#,
        issuer = toml_str(&server.info.issuer),
        client_id = auth.client_id(),
        method = auth.method(),
        accounts = route("accounts", &accounts.https_url(), "\"api\""),
        payments = route(
            "payments",
            &format!("https://localhost:{}", bank.port()),
            "[\"api\", \"jws\"]"
        ),
    )
}

/// The events of `client_id` named `event`.
fn of(events: &[serde_json::Value], event: &str, client_id: &str) -> Vec<serde_json::Value> {
    events
        .iter()
        .filter(|e| e["event"] == event && e["client_id"] == client_id)
        .cloned()
        .collect()
}

/// Asserts every event of `client_id` named `event` (at least one) was
/// taken by the mTLS host, `alias` (`localhost:PORT`), with a certificate.
fn assert_on_alias(events: &[serde_json::Value], event: &str, client_id: &str, alias: &str) {
    let seen = of(events, event, client_id);
    assert!(!seen.is_empty(), "no {event}: {events:?}");
    for e in &seen {
        assert_eq!(e["host"], alias, "{event} off the mTLS host: {e}");
        assert_eq!(e["mtls"], true, "{event} without a certificate: {e}");
    }
}

/// The whole recipe for one client: consent (PAR, signed request object
/// with the intent, hybrid answer, code exchange, all back-channel calls on
/// the mTLS alias), an account API call whose token introspection reports
/// bound to the route's certificate, a payment whose detached JWS the bank
/// verifies beside that token, and the session's end revoking the grant
/// over mutual TLS.
async fn uk_open_banking_over_mtls(auth: Auth) {
    let client_id = auth.client_id();
    let (server_ca, clients) = (TestCa::new(), TestCa::new());
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sessions")).unwrap();
    let (server_cert, server_key) = server_ca.server_cert_pem();
    let (client_cert, client_key) = clients.client_cert(CLIENT_CN, 30);
    for (name, text) in [
        ("provider.pem", &server_cert),
        ("provider-key.pem", &server_key),
        ("clients-ca.pem", &clients.ca_pem),
        ("client.pem", &client_cert),
        ("client-key.pem", &client_key),
    ] {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    server_ca.write_ca(dir.path());
    let path = |name: &str| dir.path().join(name);
    let text = |name: &str| path(name).to_str().unwrap().to_string();
    let server = OidcProvider::start_fapi_mtls(
        REDIRECT_URI,
        &[
            ("TLS_CERT", &text("provider.pem")),
            ("TLS_KEY", &text("provider-key.pem")),
            ("CLIENT_CA", &text("clients-ca.pem")),
            ("CLIENT_DN", &format!("CN={CLIENT_CN}")),
        ],
    );
    let alias = server
        .info
        .mtls_base
        .strip_prefix("https://")
        .expect("fapi-server.mjs serves its mTLS host")
        .to_string();
    let accounts = Upstream::https_mtls(&server_ca, &clients).await;
    let (bank, bank_addr) = start_bank([
        &path("provider.pem"),
        &path("provider-key.pem"),
        &path("clients-ca.pem"),
    ]);
    let toml = recipe(&server, auth, &accounts, bank_addr);
    let sidecar = Sidecar::start_in(dir, &toml).await;
    let context = || format!("provider:\n{}\nbank:\n{}", server.log(), bank.log());

    // The person consents; the bank answers in the fragment, which the
    // callback page posts back.
    let (back, mut browser) = consent(&sidecar, &server, "alice").await;
    let (callback, fragment) = back.split_once('#').expect("the answer is in the fragment");
    let answer: Vec<(String, String)> = params_of(fragment).into_iter().collect();
    assert!(answer.iter().any(|(n, _)| n == "id_token"), "{answer:?}");
    let done = browser
        .request(http::Method::POST, callback, Some(&answer))
        .await;
    assert_eq!(done.status, 200, "{done:?}\n{}", context());
    assert_intent_asked(&server, client_id, true).await;

    // The account API: the mTLS upstream sees the route's certificate, and
    // the provider says the token is bound to it.
    let mut req = get("http://accounts.interop.test/open-banking/v3.1/aisp/accounts");
    req.headers_mut()
        .insert("x-countersign-session", "alice".parse().unwrap());
    let answer = send(sidecar.proxy(), req).await;
    assert_eq!(answer.status, 200, "{answer:?}\n{}", context());
    let seen = accounts.last();
    assert_eq!(
        seen.peer.as_deref(),
        Some(CLIENT_CN),
        "the route's certificate"
    );
    let token = seen
        .header("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
        .expect("a bearer token")
        .to_string();
    let bound = thumbprint(&client_cert);
    let by_server = server.assert_active(&token, client_id).await;
    assert_eq!(
        by_server["cnf"]["x5t#S256"].as_str(),
        Some(bound.as_str()),
        "{by_server}"
    );

    // The payment: the session's token first, then the detached JWS, over
    // the same certificate to the bank, which verifies the signature over
    // the bytes it received.
    let body = payment(64);
    let req = http::Request::post(
        "http://payments.interop.test/open-banking/v3.1/pisp/domestic-payments",
    )
    .header("content-type", "application/json")
    .header("x-idempotency-key", "pay-1")
    .header("x-countersign-session", "alice")
    .body(http_body_util::Full::new(bytes::Bytes::from(body.clone())))
    .unwrap();
    let answer = send(sidecar.proxy(), req).await;
    assert_eq!(answer.status, 200, "{answer:?}\n{}", context());
    let verdict: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(verdict["ok"], true, "{verdict}");
    assert_eq!(verdict["control"], "refused", "{verdict}");
    assert_eq!(verdict["peer"], CLIENT_CN, "{verdict}");
    assert_eq!(verdict["length"], body.len(), "{verdict}");
    assert_eq!(verdict["header"]["alg"], "PS256", "{verdict}");
    assert_eq!(verdict["header"]["kid"], KID, "{verdict}");
    assert_eq!(verdict["idempotency_key"], "pay-1", "{verdict}");
    assert_eq!(verdict["interaction_id"].as_str().map(str::len), Some(36));
    assert_eq!(
        verdict["authorization"].as_str(),
        Some(format!("Bearer {token}").as_str()),
        "the session's token, stacked before the signature: {verdict}"
    );
    server.assert_active(&token, client_id).await;

    // The back channel went to the mTLS alias, with the certificate.
    let events = server.events().await;
    assert_on_alias(&events, "par.success", client_id, &alias);
    let granted = of(&events, "grant.success", client_id);
    assert_eq!(granted.len(), 1, "one code exchange: {events:?}");
    assert_eq!(granted[0]["grant_type"], "authorization_code");
    assert_on_alias(&events, "grant.success", client_id, &alias);

    // Ending the session revokes the grant at the alias's revocation
    // endpoint, over mutual TLS.
    let req = http::Request::delete("/oauth2/api/sessions/alice")
        .header("host", "admin")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let ended = send(sidecar.control(), req).await;
    assert_eq!(ended.status, 200, "{ended:?}\n{}", context());
    let ended: serde_json::Value = serde_json::from_str(&ended.body).unwrap();
    assert_eq!(ended["revocation"], "revoked", "{ended}\n{}", context());
    let events = server.events().await;
    assert_on_alias(&events, "grant.revoked", client_id, &alias);
    assert_eq!(server.introspect(&token).await["active"], false);
    let refused: Vec<_> = events
        .iter()
        .filter(|e| e["event"].as_str().is_some_and(|e| e.ends_with("error")))
        .collect();
    assert!(refused.is_empty(), "{refused:?}");
}

#[tokio::test]
#[ignore = "interop: needs `npm ci` in tests/interop/oidc-provider; run by .ci/run"]
async fn uk_open_banking_consent_and_payment_over_mtls_with_tls_client_auth() {
    uk_open_banking_over_mtls(Auth::TlsClientAuth).await;
}

#[tokio::test]
#[ignore = "interop: needs `npm ci` in tests/interop/oidc-provider; run by .ci/run"]
async fn uk_open_banking_consent_and_payment_over_mtls_with_private_key_jwt() {
    uk_open_banking_over_mtls(Auth::PrivateKeyJwt).await;
}
