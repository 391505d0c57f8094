//! No sid, spw, master key or issued key ever reaches a log line (at trace
//! level), a `Debug` output or /status, through a full run: both ways of
//! proving countersign to the issuer, a 401 and its replay, and a 503.

use super::*;
use crate::trace_capture::TraceCapture;

/// Credential `amivoice` (sid/spw, key in the query) and credential
/// `master` (master key, key in a header), with a route each.
fn two_credentials(issuer: &Issuer, api: &Api) -> String {
    let base = config(
        issuer,
        &api.url(),
        &amivoice(2_000, "margin = \"1s\"\nwait_for_token = \"300ms\""),
    );
    let master = format!(
        r#"
[credential.master]
type = "issued-key"
issue_url = "{}"
bearer = "{MASTER}"
form = {{ epi = "2000" }}
lifetime = "2s"
header = "X-Api-Key"

[[route]]
name = "master"
hosts = ["master.test"]
upstream = "{}"
credential = "master"
"#,
        issuer.url(),
        api.url()
    );
    base + &master
}

#[tokio::test]
async fn no_secret_or_key_reaches_the_logs_debug_or_status() {
    let capture = TraceCapture::install();

    let issuer = Issuer::start(Mode::Text, SID, SPW, Some(MASTER)).await;
    let api = Api::start(&issuer, KeyIn::Query).await;
    let sidecar = start(&two_credentials(&issuer, &api)).await;
    assert_eq!(call(&sidecar, "/a").await.status, 200);
    let first = api.last_key();
    let master = send(sidecar.proxy(), get("http://master.test/x")).await;
    assert_eq!(master.status, 401, "the API reads the query, not X-Api-Key");
    // A 401 and its replay.
    issuer.revoke(&first);
    assert_eq!(call(&sidecar, "/b").await.status, 200);
    // An outage long enough for a 503.
    issuer.set_down(true);
    let keys = issuer.keys();
    eventually("every key expired", || {
        keys.iter().all(|k| issuer.expired(k))
    })
    .await;
    assert_eq!(call(&sidecar, "/c").await.status, 503);
    let req = http::Request::get("/status")
        .header("host", "admin")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let status = send(sidecar.control(), req).await.body;
    let snapshot_debug = format!("{:?}", sidecar.app.snapshot());

    // The renewal that meets the outage may still be on its way.
    eventually("the failed renewal is logged", || {
        capture.text().contains("issued key fetch failed")
    })
    .await;
    let logs = capture.text();
    assert!(logs.contains("issued key obtained"), "the run was logged");
    assert!(logs.contains("token-unavailable"), "the 503 was logged");
    assert!(status.contains("\"issued-key\""), "{status}");
    let mut secrets: Vec<String> = vec![SID.into(), SPW.into(), MASTER.into()];
    for key in issuer.keys() {
        // As issued, and as form-encoded in a query.
        secrets.push(key.clone());
        secrets.push(
            key.replace('+', "%2B")
                .replace('/', "%2F")
                .replace('=', "%3D"),
        );
    }
    assert!(secrets.len() > 10, "{} secrets checked", secrets.len());
    for secret in &secrets {
        for (what, text) in [
            ("logs", &logs),
            ("Debug", &snapshot_debug),
            ("/status", &status),
        ] {
            assert!(
                !text.contains(secret.as_str()),
                "a secret is in {what}:\n{text}"
            );
        }
    }
}
