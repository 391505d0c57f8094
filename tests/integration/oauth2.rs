//! OAuth2 bearer tokens end to end, against a token endpoint and an API run
//! by the test (see `token_server`): every grant and client auth method
//! here; expiry, outages and 401s in `lifecycle`; refresh-token rotation
//! across restarts in `rotation`; secrets kept out of logs in `secrecy`.

mod cert_bound;
mod client_check;
mod dpop;
mod dpop_server;
mod fleet;
mod lifecycle;
mod lost_records;
mod lost_store;
mod rotation;
mod secrecy;
mod sessions;
mod shared_store;
mod store_rollback;
mod token_server;

use ring::signature::KeyPair as _;
use rustls_pki_types::pem::PemObject;

use crate::harness::*;
pub use client_check::ClientCheck;
pub use token_server::*;

pub const RSA_KEY: &str = include_str!("oauth2/test-rsa-key.pem");
pub const EC_KEY: &str = include_str!("oauth2/test-ec-key.pem");

/// A sidecar config with credential `bank` (common keys plus `credential`)
/// used by route `bank` for host `bank.test`.
pub fn config(tokens: &TokenServer, api: &Api, credential: &str) -> String {
    format!(
        r#"
[proxy]
listen = "127.0.0.1:0"
response_timeout = "1s"

[credential.bank]
type = "oauth2"
token_url = "{}"
{credential}

[[route]]
name = "bank"
hosts = ["bank.test"]
upstream = "{}"
credential = "bank"
"#,
        tokens.url(),
        api.url()
    )
}

pub async fn call(sidecar: &Sidecar, path: &str) -> Answer {
    send(sidecar.proxy(), get(&format!("http://bank.test{path}"))).await
}

/// The access token the API last saw.
pub fn last_token(api: &Api) -> String {
    let seen = api.seen();
    let auth = seen.last().and_then(|(a, _)| a.clone()).expect("a request");
    auth.strip_prefix("Bearer ")
        .expect("a bearer token")
        .to_string()
}

/// The public key of a PEM PKCS#8 private key, as ring verifies with it.
pub fn public_key(pem: &str, alg: &str) -> Vec<u8> {
    let rustls_pki_types::PrivateKeyDer::Pkcs8(der) =
        rustls_pki_types::PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap()
    else {
        panic!("fixture keys are PKCS#8")
    };
    let der = der.secret_pkcs8_der();
    if alg == "ES256" {
        let alg = &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let rng = ring::rand::SystemRandom::new();
        let key = ring::signature::EcdsaKeyPair::from_pkcs8(alg, der, &rng).unwrap();
        key.public_key().as_ref().to_vec()
    } else {
        let key = ring::signature::RsaKeyPair::from_pkcs8(der).unwrap();
        key.public_key().as_ref().to_vec()
    }
}

#[tokio::test]
async fn client_credentials_with_basic_auth_form_encodes_id_and_secret() {
    // Characters that Basic would garble without the RFC 6749 form-encoding.
    let (id, secret) = ("app:1 é", "p@ss:wörd+&=");
    let tokens = TokenServer::start(&[(id, ClientCheck::Basic(secret.into()))], 300, &[]).await;
    let api = Api::start(&tokens).await;
    let cred = format!(
        r#"grant = "client_credentials"
client_id = "{id}"
client_secret = "{secret}"
scope = "accounts payments"
audience = "https://api.bank.test"
resource = "https://api.bank.test/v1"
extra_params = {{ "x-env" = "sandbox" }}"#
    );
    let sidecar = Sidecar::start(&config(&tokens, &api, &cred)).await;
    let mut req = get("http://bank.test/v1/accounts");
    req.headers_mut()
        .insert("authorization", "Bearer app-guess".parse().unwrap());
    let answer = send(sidecar.proxy(), req).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(tokens.issued(), [last_token(&api)]);
    let sent = &tokens.requests()[0];
    assert!(sent.authorization.as_deref().unwrap().starts_with("Basic "));
    let form = &sent.form;
    assert_eq!(form["grant_type"], "client_credentials");
    assert_eq!(form["scope"], "accounts payments");
    assert_eq!(form["audience"], "https://api.bank.test");
    assert_eq!(form["resource"], "https://api.bank.test/v1");
    assert_eq!(form["x-env"], "sandbox");
    assert!(!form.contains_key("client_secret"));
}

#[tokio::test]
async fn client_secret_post_sends_id_and_secret_in_the_form() {
    let tokens =
        TokenServer::start(&[("poster", ClientCheck::Post("s&cret".into()))], 300, &[]).await;
    let api = Api::start(&tokens).await;
    let cred = "grant = \"client_credentials\"\nclient_id = \"poster\"\nclient_secret = \"s&cret\"\nclient_auth = \"client_secret_post\"";
    let sidecar = Sidecar::start(&config(&tokens, &api, cred)).await;
    assert_eq!(call(&sidecar, "/x").await.status, 200);
    let sent = &tokens.requests()[0];
    assert_eq!(sent.authorization, None);
    assert_eq!(sent.form["client_id"], "poster");
}

#[tokio::test]
async fn private_key_jwt_signs_a_verifiable_assertion_with_each_algorithm() {
    for (pem, alg) in [(RSA_KEY, "RS256"), (RSA_KEY, "PS256"), (EC_KEY, "ES256")] {
        let audience = "https://as.bank.test";
        let check = ClientCheck::Jwt(public_key(pem, alg), alg, audience.into());
        let tokens = TokenServer::start(&[("jwt-client", check)], 300, &[]).await;
        let api = Api::start(&tokens).await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("client-key.pem"), pem).unwrap();
        let cred = format!(
            "grant = \"client_credentials\"\nclient_id = \"jwt-client\"\nclient_auth = \"private_key_jwt\"\nprivate_key_file = \"client-key.pem\"\nsigning_alg = \"{alg}\"\nkid = \"key-1\"\nassertion_audience = \"{audience}\""
        );
        let sidecar = Sidecar::start_in(dir, &config(&tokens, &api, &cred)).await;
        let answer = call(&sidecar, "/x").await;
        assert_eq!(answer.status, 200, "{alg}: {answer:?}");
        assert_eq!(tokens.issued().len(), 1, "{alg}");
        let jwt = &tokens.requests()[0].form["client_assertion"];
        let header = jwt.split('.').next().unwrap();
        let header =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header)
                .unwrap();
        let header: serde_json::Value = serde_json::from_slice(&header).unwrap();
        assert_eq!(header["kid"], "key-1");
    }
}

#[tokio::test]
async fn the_token_endpoint_may_be_https_with_its_own_ca_file() {
    let ca = TestCa::new();
    let check = ClientCheck::Basic("s".into());
    let tokens = TokenServer::start_with(&[("c", check)], 300, &[], Some(ca.server_config())).await;
    let api = Api::start(&tokens).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_ca(dir.path());
    let cred = format!(
        "grant = \"client_credentials\"\nclient_id = \"c\"\nclient_secret = \"s\"\nca_file = \"{}\"",
        ca_file.display()
    );
    let sidecar = Sidecar::start_in(dir, &config(&tokens, &api, &cred)).await;
    assert_eq!(call(&sidecar, "/x").await.status, 200);
    assert_eq!(tokens.issued().len(), 1);
}

#[tokio::test]
async fn a_wrong_client_secret_is_a_503_and_never_an_unauthenticated_forward() {
    let tokens = TokenServer::start(&[("c", ClientCheck::Basic("right".into()))], 300, &[]).await;
    let api = Api::start(&tokens).await;
    let cred = "grant = \"client_credentials\"\nclient_id = \"c\"\nclient_secret = \"wrong\"\nwait_for_token = \"300ms\"";
    let sidecar = Sidecar::start(&config(&tokens, &api, cred)).await;
    let answer = call(&sidecar, "/x").await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(
        answer.header("x-countersign-error"),
        Some("token-unavailable")
    );
    assert!(answer.header("retry-after").is_some());
    assert!(answer.body.contains("401"), "{}", answer.body);
    assert!(!answer.body.contains("wrong"), "{}", answer.body);
    assert!(api.seen().is_empty());
}

/// RFC 8705 tls_client_auth, over a token endpoint that demands a client
/// certificate (as UK open banking's MA-TLS does): the certificate is the
/// proof, and a credential without one cannot get a token.
#[tokio::test]
async fn tls_client_auth_proves_the_client_with_its_certificate() {
    let (server_ca, clients) = (TestCa::new(), TestCa::new());
    let tls = server_ca.server_config_requiring(&clients);
    let tokens = TokenServer::start_with(&[("tpp", ClientCheck::Tls)], 300, &[], Some(tls)).await;
    let api = Api::start(&tokens).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = server_ca.write_ca(dir.path());
    let (cert, key) = clients.client_cert("transport", 30);
    std::fs::write(dir.path().join("transport.pem"), cert).unwrap();
    std::fs::write(dir.path().join("transport.key"), key).unwrap();
    let cred = format!(
        "grant = \"client_credentials\"\nclient_id = \"tpp\"\nclient_auth = \"tls_client_auth\"\nclient_cert = \"transport.pem\"\nclient_key = \"transport.key\"\nca_file = \"{}\"",
        ca_file.display()
    );
    let sidecar = Sidecar::start_in(dir, &config(&tokens, &api, &cred)).await;
    assert_eq!(call(&sidecar, "/accounts").await.status, 200);
    assert_eq!(tokens.issued().len(), 1);

    let without = cred.replace(
        "client_cert = \"transport.pem\"\nclient_key = \"transport.key\"\n",
        "",
    );
    let e = countersign::config::parse(&config(&tokens, &api, &without), sidecar.dir.path())
        .unwrap_err();
    assert_eq!(e.problems[0].path, "credential.bank.client_cert", "{e}");
}
