//! A user session served from a grant of oidc-provider's, then ended with
//! `DELETE /oauth2/NAME/sessions/ID`: countersign's RFC 7009 revocation
//! request (client_secret_basic with a secret that needs form-encoding)
//! must be one the server accepts, and the server itself, asked through
//! introspection, must then say the session's refresh token and the access
//! token it issued with it are no longer good.

use sha2::{Digest as _, Sha256};

use super::*;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where countersign's file store keeps session `session` of credential
/// `credential` (docs/credentials/oauth2.md: one file per session in the
/// `token_store` folder, named by a hash), written here as a session the
/// person authorized would leave it, with the server's refresh token.
fn seed_session(folder: &Path, credential: &str, session: &str, refresh_token: &str) {
    let name = hex(&Sha256::digest(format!("{credential}\n{session}")));
    let doc = serde_json::json!({
        "format": "countersign-token-store",
        "grant": {
            "seed_sha256": hex(&Sha256::digest(b"")),
            "refresh_token": refresh_token,
        },
    });
    let path = folder.join(format!("session-{}.json", &name[..32]));
    std::fs::write(&path, doc.to_string()).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The refresh token the session's file holds now.
fn stored_refresh_token(folder: &Path) -> String {
    let file = std::fs::read_dir(folder).unwrap().next().unwrap().unwrap();
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file.path()).unwrap()).unwrap();
    doc["grant"]["refresh_token"].as_str().unwrap().to_string()
}

#[tokio::test]
#[ignore = "interop: needs `npm ci` in tests/interop/oidc-provider; run by .ci/run"]
async fn ending_a_session_revokes_its_grant_at_the_server() {
    let server = OidcProvider::start();
    let upstream = Upstream::http().await;
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("sessions");
    std::fs::create_dir(&folder).unwrap();
    seed_session(&folder, "api", "alice", &server.info.session_refresh_token);
    let credential = format!(
        "grant = \"authorization_code\"\nauthorize_url = {}\nredirect_uri = \"http://127.0.0.1/callback\"\nclient_id = \"refresh-client\"\nclient_secret = {}\nrevocation_url = {}\ntoken_store = \"DIR/sessions\"\n",
        toml_str(&format!("{}/auth", server.info.issuer)),
        toml_str(server.secret("refresh-client")),
        toml_str(&server.info.revocation_endpoint),
    );
    let sidecar = Sidecar::start_in(dir, &config(&server, &upstream, &credential)).await;
    let with_session = || {
        let mut req = get("http://api.interop.test/v1/things");
        req.headers_mut()
            .insert("x-countersign-session", "alice".parse().unwrap());
        req
    };
    let answer = send(sidecar.proxy(), with_session()).await;
    assert_eq!(answer.status, 200, "{answer:?}\n{}", server.log());
    let access = upstream
        .last()
        .header("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
        .unwrap()
        .to_string();
    server.assert_active(&access, "refresh-client").await;
    // Rotated: the file now holds the successor, which the server honours.
    let refresh = stored_refresh_token(&folder);
    assert_ne!(refresh, server.info.session_refresh_token);
    server.assert_active(&refresh, "refresh-client").await;

    let req = http::Request::delete("/oauth2/api/sessions/alice")
        .header("host", "admin")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let ended = send(sidecar.control(), req).await;
    assert_eq!(ended.status, 200, "{ended:?}\n{}", server.log());
    let ended: serde_json::Value = serde_json::from_str(&ended.body).unwrap();
    assert_eq!(ended["revocation"], "revoked", "{ended}\n{}", server.log());

    // The server's word: the refresh token is revoked, and with it the
    // grant, so the access token issued with it too.
    for token in [&refresh, &access] {
        let seen = server.introspect(token).await;
        assert_eq!(seen["active"], false, "{seen}\n{}", server.log());
    }
    assert!(
        server
            .events()
            .await
            .iter()
            .any(|e| e["event"] == "grant.revoked"),
        "{}",
        server.log()
    );
    assert_eq!(std::fs::read_dir(&folder).unwrap().count(), 0);
    let refused = send(sidecar.proxy(), with_session()).await;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert_eq!(
        refused.header("x-countersign-error"),
        Some("session-unauthorized")
    );
}
