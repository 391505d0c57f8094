//! OpenID Provider discovery and the FAPI consent flow against
//! oidc-provider: the credential names only its `issuer`, and countersign
//! finds every endpoint (and the provider's keys) in the server's own
//! discovery document.

use super::*;

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
