//! The flow across the admin listeners: the app's ticket from the control
//! listener, the browser's start and callback on the browser listener,
//! each 404 elsewhere; and with `admin.control_secret`, the app starts an
//! authorization with it or with the credential's `authorize_secret`,
//! while browsers need neither.

use super::*;

const CONTROL_SECRET: &str = "control-s3cret-0123456789";

/// `setup_with`, and an `[admin]` section of `admin`'s keys; the folder
/// also holds `control-secret`.
async fn setup_admin(keys: &str, admin: &str) -> (TokenServer, Upstream, Sidecar) {
    let tokens = TokenServer::start(
        &[("gmo-client", ClientCheck::Basic("gmo-secret".into()))],
        300,
        &[],
    )
    .await;
    let upstream = Upstream::http().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sessions")).unwrap();
    std::fs::write(dir.path().join("start-secret"), "s3cret-for-the-app-only\n").unwrap();
    std::fs::write(dir.path().join("control-secret"), CONTROL_SECRET).unwrap();
    let toml = config(&tokens, &upstream).replace("token_store =", &format!("{keys}token_store ="));
    let toml = format!("{toml}\n[admin]\nlisten = \"127.0.0.1:0\"\n{admin}");
    let sidecar = Sidecar::start_in(dir, &toml).await;
    (tokens, upstream, sidecar)
}

async fn to(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    authorization: Option<&str>,
) -> Answer {
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "admin");
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    send(
        addr,
        req.body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn the_browser_listener_serves_start_and_callback_and_nothing_else() {
    let (tokens, _upstream, sidecar) = setup_admin(
        "",
        "control_listen = \"127.0.0.1:0\"\nbrowser_listen = \"127.0.0.1:0\"\n",
    )
    .await;
    let (probes, control, browser) = (sidecar.probes(), sidecar.control(), sidecar.browser());
    assert!(probes != control && control != browser && browser != probes);

    let authorize = "/oauth2/bank/authorize?session=alice";
    for elsewhere in [probes, browser] {
        let refused = to(elsewhere, "POST", authorize, None).await;
        assert_eq!(refused.status, 404, "{}", refused.body);
    }
    let start_path = ticket(&sidecar, "alice").await;
    for elsewhere in [probes, control] {
        let refused = to(elsewhere, "GET", &start_path, None).await;
        assert_eq!(refused.status, 404, "{}", refused.body);
        assert!(
            refused.body.contains("admin.browser_listen"),
            "{}",
            refused.body
        );
        let callback = to(
            elsewhere,
            "GET",
            "/oauth2/bank/callback?state=s&code=c",
            None,
        )
        .await;
        assert_eq!(callback.status, 404, "{}", callback.body);
    }
    for path in ["/healthz", "/status"] {
        assert_eq!(to(browser, "GET", path, None).await.status, 404, "{path}");
    }
    // The 404s did not spend the ticket; the browser listener takes it.
    let started = to(browser, "GET", &start_path, None).await;
    assert_eq!(started.status, 302, "{}", started.body);

    // And the whole flow, each step on its own listener.
    let done = super::authorize(&sidecar, &tokens, "bob", "code-bob").await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(call(&sidecar, Some("bob")).await.status, 200);
}

/// A credential without an `authorize_secret`: the control secret guards
/// its authorize endpoint; the browser endpoints, on the control listener
/// here, need no secret at all.
#[tokio::test]
async fn the_control_secret_guards_authorize_but_not_the_browser() {
    let (tokens, _upstream, sidecar) = setup_admin(
        "",
        "control_listen = \"0.0.0.0:0\"\ncontrol_secret = \"${file:DIR/control-secret}\"\nbrowser_listen = \"control\"\n",
    )
    .await;
    let control = sidecar.control();
    assert_eq!(sidecar.browser(), control, "shared, as the operator said");
    let path = "/oauth2/bank/authorize?session=alice";
    for wrong in [
        None,
        Some("Bearer s3cret-for-the-app-only"),
        Some("Bearer nope"),
    ] {
        let refused = to(control, "POST", path, wrong).await;
        assert_eq!(refused.status, 401, "{wrong:?}: {}", refused.body);
        assert_eq!(refused.header("www-authenticate"), Some("Bearer"));
        assert!(!refused.body.contains("s3cret"), "{}", refused.body);
    }
    let unknown = to(control, "POST", "/oauth2/other/authorize?session=a", None).await;
    assert_eq!(
        unknown.status, 401,
        "no credential names without the secret"
    );

    let ok = to(
        control,
        "POST",
        path,
        Some(&format!("Bearer {CONTROL_SECRET}")),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let json: serde_json::Value = serde_json::from_str(&ok.body).unwrap();
    let browser = start(&sidecar, json["start"].as_str().unwrap()).await;
    let state = query_param(&browser.location, "state");
    tokens.add_code(
        "code-a",
        &query_param(&browser.location, "code_challenge"),
        REDIRECT,
    );
    // No Authorization header: a browser has no secret.
    let callback = http::Request::get(format!("/oauth2/bank/callback?code=code-a&state={state}"))
        .header("host", "admin")
        .header("cookie", &browser.cookie);
    let done = send(
        sidecar.browser(),
        callback
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(call(&sidecar, Some("alice")).await.status, 200);
}

/// With both secrets set, the app may start with either: its own
/// `authorize_secret` (as documented before the split) or the control
/// secret. The `authorize_secret` opens nothing else.
#[tokio::test]
async fn with_both_secrets_either_starts_an_authorization() {
    let (_tokens, _upstream, sidecar) = setup_admin(
        "authorize_secret = \"${file:DIR/start-secret}\"\n",
        "control_listen = \"0.0.0.0:0\"\ncontrol_secret = \"${file:DIR/control-secret}\"\nbrowser_listen = \"127.0.0.1:0\"\n",
    )
    .await;
    let control = sidecar.control();
    let path = "/oauth2/bank/authorize?session=alice";
    for right in [
        "Bearer s3cret-for-the-app-only",
        &format!("Bearer {CONTROL_SECRET}"),
    ] {
        let ok = to(control, "POST", path, Some(right)).await;
        assert_eq!(ok.status, 200, "{right}: {}", ok.body);
    }
    let refused = to(control, "POST", path, None).await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("authorize_secret (or admin.control_secret)"),
        "{}",
        refused.body
    );
    let status = to(
        control,
        "GET",
        "/status",
        Some("Bearer s3cret-for-the-app-only"),
    )
    .await;
    assert_eq!(
        status.status, 401,
        "the authorize_secret is not the control secret"
    );
}
