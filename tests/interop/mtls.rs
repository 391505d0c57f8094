//! RFC 8705 against oidc-provider (oidc-provider/mtls-server.mjs, its
//! `mTLS` feature, over HTTPS that asks for client certificates):
//! countersign authenticates with `tls_client_auth`, the provider binds the
//! token to countersign's certificate, and the route presents that same
//! certificate to an mTLS upstream with the token.

use super::*;
use base64::Engine as _;

use crate::oidc_provider::form_encode;

/// The subject the provider registered `mtls-client` with, in Node.js's
/// `X509Certificate.subject` form.
pub(crate) const CLIENT_CN: &str = "countersign-tpp";

/// base64url(SHA-256(DER)) of the first certificate in `pem`, as RFC 8705
/// section 3.1 defines `x5t#S256`, computed here independently.
pub(crate) fn thumbprint(pem: &str) -> String {
    use rustls_pki_types::pem::PemObject as _;
    let der = rustls_pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .unwrap()
        .unwrap();
    let digest = ring::digest::digest(&ring::digest::SHA256, der.as_ref());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// RFC 7662 introspection as `introspector` (client_secret_basic, no
/// certificate) over the provider's HTTPS.
async fn introspect(server: &OidcProvider, ca_pem: &str, token: &str) -> serde_json::Value {
    let path = server
        .info
        .introspection_endpoint
        .strip_prefix(&server.info.issuer)
        .unwrap();
    let pair = format!(
        "introspector:{}",
        form_encode(server.secret("introspector"))
    );
    let req = http::Request::post(path)
        .header("host", format!("localhost:{}", server.addr.port()))
        .header(
            "authorization",
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            ),
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body(http_body_util::Full::new(bytes::Bytes::from(format!(
            "token={}",
            form_encode(token)
        ))))
        .unwrap();
    let stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let answer = https_over(stream, "localhost", ca_pem, req).await.unwrap();
    assert_eq!(answer.status, 200, "introspection: {answer:?}");
    serde_json::from_str(&answer.body).unwrap()
}

#[tokio::test]
#[ignore = "interop: needs `npm ci` in tests/interop/oidc-provider; run by .ci/run"]
async fn tls_client_auth_gets_a_token_bound_to_the_certificate_the_route_presents() {
    // One CA for the servers' certificates (provider and upstream), one
    // for client certificates (trusted by both).
    let (server_ca, clients) = (TestCa::new(), TestCa::new());
    let dir = tempfile::tempdir().unwrap();
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
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let server = OidcProvider::start_mtls(&[
        ("TLS_CERT", &path("provider.pem")),
        ("TLS_KEY", &path("provider-key.pem")),
        ("CLIENT_CA", &path("clients-ca.pem")),
        ("CLIENT_DN", &format!("CN={CLIENT_CN}")),
    ]);
    let upstream = Upstream::https_mtls(&server_ca, &clients).await;
    let toml = format!(
        r#"
[proxy]
listen = "127.0.0.1:0"

[credential.bank]
type = "oauth2"
token_url = {}
grant = "client_credentials"
client_id = "mtls-client"
client_auth = "tls_client_auth"
client_cert = "client.pem"
client_key = "client-key.pem"
ca_file = "upstream-ca.pem"
certificate_bound = true

[[route]]
name = "bank"
hosts = ["api.interop.test"]
upstream = "{}"
ca_file = "upstream-ca.pem"
client_cert = "client.pem"
client_key = "client-key.pem"
credential = "bank"
"#,
        toml_str(&server.info.token_endpoint),
        upstream.https_url()
    );
    let sidecar = Sidecar::start_in(dir, &toml).await;

    let answer = send(sidecar.proxy(), get("http://api.interop.test/v1/accounts")).await;
    assert_eq!(answer.status, 200, "{answer:?}\n{}", server.log());
    let seen = upstream.last();
    assert_eq!(seen.uri.path(), "/v1/accounts");
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

    // The provider's word: it issued the token to mtls-client, bound to
    // the certificate countersign presented at its token endpoint.
    let seen = introspect(&server, &server_ca.ca_pem, &token).await;
    assert_eq!(seen["active"], true, "{seen}\n{}", server.log());
    assert_eq!(seen["client_id"], "mtls-client", "{seen}");
    assert_eq!(
        seen["cnf"]["x5t#S256"].as_str(),
        Some(thumbprint(&client_cert).as_str()),
        "{seen}"
    );
    // A second request reuses it.
    let again = send(sidecar.proxy(), get("http://api.interop.test/v1/accounts")).await;
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(
        upstream.last().header("authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    assert!(
        !server.log().contains("grant.error"),
        "the provider refused a token request:\n{}",
        server.log()
    );
}
