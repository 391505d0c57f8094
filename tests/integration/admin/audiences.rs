//! The admin endpoints by audience: probes on the admin listener, the
//! controls on theirs (behind `control_secret` when it is set), each 404
//! on the other's listener; a reload that moves the controls applies at
//! once. (The browser endpoints: `oauth2::sessions`.)

use crate::harness::*;

const SECRET: &str = "ctl-s3cret-0123456789";

/// `admin`'s keys, the control listener on a free port unless they say.
fn config(admin: &str) -> String {
    let control = match admin.contains("control_listen") {
        true => "",
        false => "control_listen = \"127.0.0.1:0\"\n",
    };
    format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\n\n[admin]\nlisten = \"127.0.0.1:0\"\n{control}{admin}"
    )
}

async fn call(to: std::net::SocketAddr, method: &str, path: &str, auth: Option<&str>) -> Answer {
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "admin");
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    send(
        to,
        req.body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn each_listener_answers_its_own_audience_and_404_to_the_others() {
    let sidecar = Sidecar::start(&config("control_listen = \"127.0.0.1:0\"\n")).await;
    let (probes, control) = (sidecar.probes(), sidecar.control());
    assert_ne!(probes, control);

    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(call(probes, "GET", path, None).await.status, 200, "{path}");
        let there = call(control, "GET", path, None).await;
        assert_eq!(there.status, 404, "{path} on the control listener");
        assert!(there.body.contains("admin.listen"), "{}", there.body);
    }
    for (method, path) in [
        ("GET", "/status"),
        ("POST", "/reload"),
        ("POST", "/oauth2/bank/authorize?session=alice"),
        ("GET", "/oauth2/bank/start?ticket=t"),
        ("GET", "/oauth2/bank/callback?state=s&code=c"),
        ("GET", "/nope"),
    ] {
        let refused = call(probes, method, path, None).await;
        assert_eq!(refused.status, 404, "{method} {path} on the probe listener");
        let owner = match path.contains("/start") || path.contains("/callback") {
            true => "admin.browser_listen",
            false => "admin.control_listen",
        };
        assert!(
            refused.body.contains(owner),
            "{method} {path}: {}",
            refused.body
        );
        assert!(refused.body.contains("GET /metrics"), "{}", refused.body);
        assert!(!refused.body.contains("/status"), "{}", refused.body);
    }
    assert_eq!(
        sidecar.app.snapshot().generation,
        1,
        "no reload on the probe port"
    );

    let status = call(control, "GET", "/status", None).await;
    assert_eq!(status.status, 200, "{}", status.body);
    let status: serde_json::Value = serde_json::from_str(&status.body).unwrap();
    assert_eq!(status["listeners"]["admin"], probes.to_string());
    assert_eq!(status["listeners"]["control"], control.to_string());
    assert_eq!(
        status["listeners"]["browser"],
        serde_json::Value::Null,
        "no credential has user sessions: no browser listener"
    );
    let reload = call(control, "POST", "/reload", None).await;
    assert_eq!(reload.status, 200, "{}", reload.body);
}

#[tokio::test]
async fn with_a_control_secret_the_controls_need_its_bearer_and_the_probes_do_not() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("control-secret"), format!("{SECRET}\n")).unwrap();
    let toml =
        config("control_listen = \"0.0.0.0:0\"\ncontrol_secret = \"${file:DIR/control-secret}\"\n");
    let sidecar = Sidecar::start_in(dir, &toml).await;
    let control = sidecar.control();
    let right = format!("Bearer {SECRET}");
    for wrong in [
        None,
        Some("Bearer ctl-s3cret-012345678"),
        Some("Basic Y3RsOnMzY3JldA=="),
        Some(SECRET),
    ] {
        for (method, path) in [("GET", "/status"), ("POST", "/reload"), ("GET", "/nope")] {
            let refused = call(control, method, path, wrong).await;
            assert_eq!(refused.status, 401, "{wrong:?} {method} {path}");
            assert_eq!(refused.header("www-authenticate"), Some("Bearer"));
            assert!(
                refused.body.contains("admin.control_secret"),
                "{}",
                refused.body
            );
            assert!(!refused.body.contains("s3cret"), "{}", refused.body);
        }
    }
    assert_eq!(
        sidecar.app.snapshot().generation,
        1,
        "a refused POST /reload did nothing"
    );

    let status = call(control, "GET", "/status", Some(&right)).await;
    assert_eq!(status.status, 200, "{}", status.body);
    assert!(!status.body.contains("s3cret"), "{}", status.body);
    let lower = call(control, "GET", "/status", Some(&format!("bearer {SECRET}"))).await;
    assert_eq!(lower.status, 200, "the scheme is case-insensitive");
    let reload = call(control, "POST", "/reload", Some(&right)).await;
    assert_eq!(reload.status, 200, "{}", reload.body);
    assert_eq!(sidecar.app.snapshot().generation, 2);
    assert_eq!(
        call(control, "GET", "/nope", Some(&right)).await.status,
        404
    );

    for path in ["/healthz", "/readyz", "/metrics"] {
        let probe = call(sidecar.probes(), "GET", path, None).await;
        assert_eq!(probe.status, 200, "{path} needs no secret");
    }
}

/// Which listener serves the controls is read per request: a reload that
/// moves them to another address takes them there at once, and the admin
/// listener stays bound, answering the probes and never the controls.
#[tokio::test]
async fn a_reload_that_moves_the_controls_applies_at_once() {
    let sidecar = Sidecar::start(&config("")).await;
    let (probes, before) = (sidecar.probes(), sidecar.control());
    assert_ne!(before, probes, "the controls have a listener of their own");
    assert_eq!(call(probes, "GET", "/status", None).await.status, 404);
    assert_eq!(call(before, "GET", "/status", None).await.status, 200);

    // Another loopback address (Linux routes all of 127.0.0.0/8 to lo).
    sidecar.rewrite(&config("control_listen = \"127.0.0.2:0\"\n"));
    // (The file watcher may reload first; either way this one succeeds.)
    sidecar.app.reload().await.expect("the new config is taken");
    assert_eq!(
        sidecar.probes(),
        probes,
        "the admin listener is not rebound"
    );
    let after = sidecar.control();
    assert_eq!(after.ip().to_string(), "127.0.0.2");
    assert_eq!(call(probes, "GET", "/status", None).await.status, 404);
    assert_eq!(call(probes, "GET", "/healthz", None).await.status, 200);
    assert_eq!(call(after, "GET", "/status", None).await.status, 200);
}
