//! Certificate-bound tokens (RFC 8705): the token endpoint is called over
//! mutual TLS with the credential's certificate (`tls_client_auth`), and
//! the route presents that same certificate to its upstream. `countersign
//! check` refuses a route that would present another one, or none.

use super::*;
use crate::binary::{check, write_config};

/// The credential and a route with `route_cert` (`None`: no client_cert).
fn cert_config(tokens: &TokenServer, upstream: &str, route_cert: Option<&str>) -> String {
    let route_cert = route_cert.map_or(String::new(), |c| {
        format!("client_cert = \"{c}.pem\"\nclient_key = \"{c}.key\"\n")
    });
    format!(
        r#"
[proxy]
listen = "127.0.0.1:0"

[credential.bank]
type = "oauth2"
token_url = "{}"
grant = "client_credentials"
client_id = "tpp"
client_auth = "tls_client_auth"
client_cert = "transport.pem"
client_key = "transport.key"
certificate_bound = true
ca_file = "upstream-ca.pem"

[[route]]
name = "bank"
hosts = ["bank.test"]
upstream = "{upstream}"
ca_file = "upstream-ca.pem"
credential = "bank"
{route_cert}"#,
        tokens.url()
    )
}

#[tokio::test]
async fn a_certificate_bound_token_goes_out_with_its_certificate() {
    let (server_ca, clients) = (TestCa::new(), TestCa::new());
    let tls = server_ca.server_config_requiring(&clients);
    let tokens = TokenServer::start_with(&[("tpp", ClientCheck::Tls)], 300, &[], Some(tls)).await;
    let upstream = Upstream::https_mtls(&server_ca, &clients).await;
    let dir = tempfile::tempdir().unwrap();
    server_ca.write_ca(dir.path());
    for (name, cn) in [("transport", "transport"), ("other", "other")] {
        let (cert, key) = clients.client_cert(cn, 30);
        std::fs::write(dir.path().join(format!("{name}.pem")), cert).unwrap();
        std::fs::write(dir.path().join(format!("{name}.key")), key).unwrap();
    }
    let url = upstream.https_url();

    // Another certificate, or none: check names the route and the fix.
    for (cert, expected) in [
        (
            Some("other"),
            "is not the certificate credential `bank`'s tokens are bound to",
        ),
        (
            None,
            "missing; credential `bank` has certificate-bound tokens",
        ),
    ] {
        let path = write_config(dir.path(), &cert_config(&tokens, &url, cert));
        let out = check(&path);
        assert_eq!(out.status.code(), Some(64));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("route[0].client_cert"), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
    }

    // The same certificate at both: the upstream sees it with the token.
    let toml = cert_config(&tokens, &url, Some("transport"));
    let sidecar = Sidecar::start_in(dir, &toml).await;
    let answer = call(&sidecar, "/accounts").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let seen = upstream.last();
    assert_eq!(seen.peer.as_deref(), Some("transport"));
    let token = seen
        .header("authorization")
        .and_then(|a| a.strip_prefix("Bearer "));
    assert_eq!(token.map(str::to_string), tokens.issued().first().cloned());
    sidecar.app.shutdown().await;
}
