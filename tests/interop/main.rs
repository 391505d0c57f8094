//! Interop: countersign's OAuth2 client against an authorization server
//! nobody on this project wrote, panva's oidc-provider (an OpenID Certified
//! Node.js server; the version is pinned in oidc-provider/package.json and
//! installed by `npm ci`). The in-house token server in
//! tests/integration/oauth2 checks what countersign sends; these tests check
//! that a widely used implementation agrees: it accepts countersign's client
//! authentication (client_secret_basic with a secret that needs
//! form-encoding, client_secret_post, private_key_jwt with RS256, PS256 and
//! ES256), the token it issues reaches the upstream, and its refresh-token
//! rotation with reuse detection survives countersign's reloads and restarts.
//!
//! Whether a token is genuine is the server's word, asked through its RFC
//! 7662 introspection endpoint, not ours.
//!
//! `sessions`: a user session countersign serves from one of its grants is
//! ended, and the server confirms (introspection) that countersign's RFC
//! 7009 revocation revoked the grant.
//!
//! `fapi`: discovery from oidc-provider's own configuration document, and
//! UK open banking's consent flow against a second, FAPI-style instance
//! (oidc-provider/fapi-server.mjs: signed request objects required, PAR,
//! `code id_token`), driven by a scripted browser (`browser`) that logs in
//! and consents on the provider's own pages; and the FAPI 2.0 consent
//! (`fapi/fapi2.rs`: PAR, PKCE, DPoP with `dpop_jkt`) against the same
//! instance's `fapi2-client`; and (`fapi/revoked.rs`) a token response
//! whose ID token is refused after the exchange, whose grant countersign
//! revokes at the provider. The instance runs oidc-provider's FAPI
//! profiles (1.0 Advanced for the UK clients, 2.0 for `fapi2-client`).
//! `fapi/mtls.rs` runs the UK open banking recipe over mutual TLS against
//! the same instance with an mTLS host (`mtls_endpoint_aliases`):
//! `tls_client_auth` and `private_key_jwt`, a session token bound to the
//! route's certificate, and a payment whose detached JWS jws/bank.mjs
//! verifies.
//!
//! `mtls`: RFC 8705 against a third instance (oidc-provider/mtls-server.mjs,
//! over HTTPS asking for client certificates): `tls_client_auth`, and a
//! token bound to the certificate the route presents to an mTLS upstream.
//!
//! `fleet`: three countersign processes share one of oidc-provider's
//! rotating grants through a real redis-server for 30 s of load.
//!
//! `dpop`: DPoP-bound tokens (RFC 9449) from oidc-provider, with its
//! nonces, and proofs checked by `jose` the way a resource server does.
//!
//! `sigv4`: AWS SigV4 signatures made by the compiled binary and checked by
//! botocore (python3, installed by `.ci/run`), the way an AWS service
//! checks them; `sigv4a`: SigV4A, by the compiled binary, checked with
//! awscrt.
//!
//! `jws`: UK open banking's detached `x-jws-signature`, made by the compiled
//! binary and checked by panva's `jose` (installed with oidc-provider) in a
//! bank-like resource server, jws/bank.mjs.
//!
//! `hmac_recipes`: the `hmac` recipes (LINE Pay v3, bitFlyer, PayPay) signed
//! by the compiled binary and recomputed by Node.js's own crypto as the
//! providers' samples do.
//!
//! `httpsig`: RFC 9421 signatures made by the compiled binary, checked by
//! the PyPI package http-message-signatures (installed by `.ci/run`).
//!
//! The tests need Node.js and `npm ci --prefix tests/interop/oidc-provider`
//! (and botocore for `sigv4`, http-message-signatures for `httpsig`),
//! so a plain `cargo test` skips them; `.ci/run` runs them with
//! `cargo test --test interop -- --ignored`.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code: a panic is how a test reports a failure"
)]

/// The integration tests' harness (its submodules live beside it).
#[path = "../integration"]
mod integration {
    pub mod harness;
}
mod browser;
mod dpop;
mod fapi;
mod fleet;
mod hmac_recipes;
mod httpsig;
mod jws;
mod mtls;
mod oidc_provider;
mod sessions;
mod sigv4;
mod sigv4a;
mod verifier;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::Duration;

use integration::harness::*;
use oidc_provider::{key_path, OidcProvider, EC_KEY, RSA_KEY};

/// A TOML basic string holding `text` (JSON's escapes are TOML's).
fn toml_str(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}

/// A sidecar config whose route `api` (host `api.interop.test`, to
/// `upstream`) carries oauth2 credential `api` with the keys in `credential`.
fn config(server: &OidcProvider, upstream: &Upstream, credential: &str) -> String {
    format!(
        r#"
[proxy]
listen = "127.0.0.1:0"

[credential.api]
type = "oauth2"
token_url = {}
{credential}

[[route]]
name = "api"
hosts = ["api.interop.test"]
upstream = "{}"
credential = "api"
"#,
        toml_str(&server.info.token_endpoint),
        upstream.http_url()
    )
}

/// One app request through countersign; returns the bearer token the
/// upstream received with it.
async fn call(sidecar: &Sidecar, upstream: &Upstream, server: &OidcProvider) -> String {
    let answer = send(sidecar.proxy(), get("http://api.interop.test/v1/things")).await;
    assert_eq!(answer.status, 200, "{answer:?}\n{}", server.log());
    assert_eq!(answer.header("x-upstream"), Some("yes"));
    let seen = upstream.last();
    assert_eq!(seen.uri.path(), "/v1/things");
    let auth = seen
        .header("authorization")
        .expect("an Authorization header");
    auth.strip_prefix("Bearer ")
        .unwrap_or_else(|| panic!("a bearer token: {auth}"))
        .to_string()
}

/// Calls until the upstream sees a token other than `old` (countersign has
/// renewed it), for at most 15 s.
async fn next_token(
    sidecar: &Sidecar,
    upstream: &Upstream,
    server: &OidcProvider,
    old: &str,
) -> String {
    let renewed = || async {
        let token = call(sidecar, upstream, server).await;
        if token != old {
            Ok(token)
        } else {
            Err(server.log())
        }
    };
    eventually_async(
        "countersign renews the token",
        Duration::from_secs(15),
        renewed,
    )
    .await
}

/// client_credentials with a client secret, asking for scope `api:read` on
/// the server's resource (RFC 8707): the server must accept the client
/// authentication, and the token at the upstream must be the one it issued
/// for that client, scope and audience.
async fn client_credentials_with_secret(client_id: &str, client_auth: &str) {
    let server = OidcProvider::start();
    let upstream = Upstream::http().await;
    let credential = format!(
        "grant = \"client_credentials\"\nclient_id = {}\nclient_auth = \"{client_auth}\"\nclient_secret = {}\nscope = \"api:read\"\nresource = {}",
        toml_str(client_id),
        toml_str(server.secret(client_id)),
        toml_str(&server.info.resource),
    );
    let sidecar = Sidecar::start(&config(&server, &upstream, &credential)).await;
    let token = call(&sidecar, &upstream, &server).await;
    let seen = server.assert_active(&token, client_id).await;
    assert_eq!(seen["scope"], "api:read", "{seen}");
    assert_eq!(seen["aud"], server.info.resource.as_str(), "{seen}");
    assert_eq!(seen["token_type"], "Bearer", "{seen}");
    // A second request reuses the token: one token request in all.
    assert_eq!(call(&sidecar, &upstream, &server).await, token);
    assert_eq!(server.grants("client_credentials", client_id).await, 1);
    assert_eq!(server.refusals().await, Vec::<String>::new());
}

#[tokio::test]
#[ignore = "interop: needs `npm ci` in tests/interop/oidc-provider; run by .ci/run"]
async fn client_secret_basic_is_accepted_with_a_secret_that_needs_form_encoding() {
    // basic-client's secret is `s3cr:et/+&%= ~`: sent raw inside Basic, the
    // `:` would split it and `+`/`%` would decode wrongly at the server.
    client_credentials_with_secret("basic-client", "client_secret_basic").await;
}

#[tokio::test]
#[ignore = "interop: needs `npm ci` in tests/interop/oidc-provider; run by .ci/run"]
async fn client_secret_post_is_accepted() {
    client_credentials_with_secret("post-client", "client_secret_post").await;
}

/// private_key_jwt (RFC 7523) with each algorithm countersign offers, each
/// client registered at the server with only the public key and a pinned
/// `token_endpoint_auth_signing_alg`. The token is renewed quickly
/// (`refresh_at`), so the server also sees a second, fresh assertion: it
/// rejects a reused `jti`.
#[tokio::test]
#[ignore = "interop: needs `npm ci` in tests/interop/oidc-provider; run by .ci/run"]
async fn private_key_jwt_is_accepted_with_rs256_ps256_and_es256() {
    let server = OidcProvider::start();
    let issuer = server.info.issuer.clone();
    // (client, alg, key, kid, assertion_audience: None is token_url)
    let cases = [
        ("jwt-client", "RS256", RSA_KEY, "rsa-1", None),
        (
            "jwt-client-ps256",
            "PS256",
            RSA_KEY,
            "rsa-1",
            Some(issuer.as_str()),
        ),
        ("jwt-client-es256", "ES256", EC_KEY, "ec-1", None),
    ];
    for (client_id, alg, key, kid, audience) in cases {
        let upstream = Upstream::http().await;
        let audience = audience.map_or(String::new(), |a| {
            format!("assertion_audience = {}\n", toml_str(a))
        });
        let credential = format!(
            "grant = \"client_credentials\"\nclient_id = \"{client_id}\"\nclient_auth = \"private_key_jwt\"\nprivate_key_file = {}\nsigning_alg = \"{alg}\"\nkid = \"{kid}\"\nrefresh_at = 0.02\n{audience}",
            toml_str(&key_path(key).display().to_string()),
        );
        let sidecar = Sidecar::start(&config(&server, &upstream, &credential)).await;
        let first = call(&sidecar, &upstream, &server).await;
        let seen = server.assert_active(&first, client_id).await;
        assert_eq!(seen["token_type"], "Bearer", "{alg}: {seen}");
        let second = next_token(&sidecar, &upstream, &server, &first).await;
        server.assert_active(&second, client_id).await;
        assert!(
            server.grants("client_credentials", client_id).await >= 2,
            "{alg}: {:?}",
            server.events().await
        );
        sidecar.app.shutdown().await;
    }
    assert_eq!(server.refusals().await, Vec::<String>::new());
}

/// The refresh token countersign keeps in `path`, after checking what the
/// store must always be: mode 0600, and never the seed once it has rotated.
fn stored_refresh_token(path: &Path, seed: &str) -> String {
    let mode = std::fs::metadata(path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{}", path.display());
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        !text.contains(seed),
        "the store still holds the seed: {text}"
    );
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    doc["grant"]["refresh_token"]
        .as_str()
        .unwrap_or_else(|| panic!("a plain store with a refresh token: {text}"))
        .to_string()
}

/// refresh_token grant against a server that rotates refresh tokens and,
/// when a spent one comes back, revokes the whole grant (so every token of
/// it stops working). countersign starts from the seed, rotates several
/// times, gets a new token manager on a reload (new `scope`), and restarts
/// on the same token_store: every step works only if countersign always
/// presents the newest refresh token. The last step presents a spent one
/// by hand to show that the server does punish reuse.
#[tokio::test]
#[ignore = "interop: needs `npm ci` in tests/interop/oidc-provider; run by .ci/run"]
async fn rotated_refresh_tokens_survive_rotation_reload_and_restart() {
    let server = OidcProvider::start();
    let upstream = Upstream::http().await;
    let seed = server.info.refresh_token.clone();
    let credential = |extra: &str| {
        format!(
            "grant = \"refresh_token\"\nclient_id = \"refresh-client\"\nclient_secret = {}\nrefresh_token = {}\ntoken_store = \"refresh.store\"\n{extra}",
            toml_str(server.secret("refresh-client")),
            toml_str(&seed),
        )
    };

    // 1. The seed, then rotations every ~1 s (refresh_at of a 60 s token).
    let toml = config(&server, &upstream, &credential("refresh_at = 0.02"));
    let sidecar = Sidecar::start(&toml).await;
    let store = sidecar.dir.path().join("refresh.store");
    let first = call(&sidecar, &upstream, &server).await;
    let seen = server.assert_active(&first, "refresh-client").await;
    assert_eq!(seen["sub"], "interop-user", "{seen}");
    let four_refreshes = || async {
        if store.exists() {
            stored_refresh_token(&store, &seed);
        }
        if server.grants("refresh_token", "refresh-client").await >= 4 {
            Ok(())
        } else {
            Err(server.log())
        }
    };
    eventually_async("four refreshes", Duration::from_secs(20), four_refreshes).await;
    let latest = next_token(&sidecar, &upstream, &server, &first).await;
    server.assert_active(&latest, "refresh-client").await;
    assert_eq!(server.introspect(&seed).await["active"], false);

    // 2. A reload that changes `scope` makes a new token manager, which has
    //    to pick up the newest refresh token from the store (a rotation of
    //    the old manager may be in flight right then). No more background
    //    rotations from here on (refresh_at 0.8 of 60 s).
    let generation = *sidecar.app.generations().borrow();
    let toml = config(&server, &upstream, &credential("scope = \"openid\""));
    sidecar.rewrite(&toml);
    sidecar.wait_for_generation(generation).await;
    let new_scope = || async {
        let token = call(&sidecar, &upstream, &server).await;
        let seen = server.assert_active(&token, "refresh-client").await;
        if seen["scope"] == "openid" {
            Ok(token)
        } else {
            Err(format!("{seen}\n{}", server.log()))
        }
    };
    let reloaded = eventually_async(
        "a token for the new scope",
        Duration::from_secs(15),
        new_scope,
    )
    .await;

    // 3. Stop: the stored refresh token is the live one (nothing lost, even
    //    if a token request was under way); then a new App on the same
    //    store, which has no access token and refreshes at once.
    let Sidecar { app, dir, .. } = sidecar;
    app.shutdown().await;
    drop(app);
    let before_restart = stored_refresh_token(&store, &seed);
    server
        .assert_active(&before_restart, "refresh-client")
        .await;
    let refreshes_before = server.grants("refresh_token", "refresh-client").await;
    let sidecar = Sidecar::start_in(dir, &toml).await;
    let after = call(&sidecar, &upstream, &server).await;
    assert_ne!(after, reloaded);
    let seen = server.assert_active(&after, "refresh-client").await;
    assert_eq!(seen["scope"], "openid", "{seen}");
    assert_eq!(
        server.grants("refresh_token", "refresh-client").await,
        refreshes_before + 1,
        "{:?}",
        server.events().await
    );
    let current = stored_refresh_token(&store, &seed);
    assert_ne!(current, before_restart, "the restart's refresh rotated it");
    assert_eq!(server.introspect(&before_restart).await["active"], false);
    server.assert_active(&current, "refresh-client").await;
    assert_eq!(
        server.refusals().await,
        Vec::<String>::new(),
        "the server refused a token request"
    );

    // 4. The control: a spent refresh token presented again is refused,
    //    and the server revokes the grant with everything issued from it.
    let reuse = server
        .post(
            "/token",
            "refresh-client",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &before_restart),
            ],
        )
        .await;
    assert_eq!(reuse.status, 400, "{reuse:?}");
    assert!(reuse.body.contains("invalid_grant"), "{}", reuse.body);
    let refusals = server.refusals().await;
    assert_eq!(refusals.len(), 2, "{refusals:?}");
    assert!(
        refusals
            .iter()
            .any(|e| e.contains("refresh token already used")),
        "{refusals:?}"
    );
    assert!(
        refusals.iter().any(|e| e.contains("grant.revoked")),
        "{refusals:?}"
    );
    assert_eq!(server.introspect(&current).await["active"], false);
    assert_eq!(server.introspect(&after).await["active"], false);
    sidecar.app.shutdown().await;
}
