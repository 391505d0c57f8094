//! Issued short-lived keys end to end (AmiVoice's one-time APPKEY), against
//! an issuer and an API run by the test (see `issuer`): sid/spw in the body
//! and the key in the `authorization` query parameter; a master key and a
//! JSON answer with the key in a header; a refused issuer. The lifecycle
//! (single flight, renewal, outages, reloads, 401) is in `lifecycle`, and
//! secrets kept out of logs and /status in `secrecy`.

mod fleet;
mod issuer;
mod lifecycle;
mod secrecy;

use crate::handler_server::form_decode;
use crate::harness::*;
pub use issuer::*;

pub const SID: &str = "sid-Q8wz";
pub const SPW: &str = "spw-7Lm2";
pub const MASTER: &str = "master-appkey-Vn41";

/// A sidecar config with credential `amivoice` (issue_url plus `credential`)
/// used by route `amivoice` for host `amivoice.test`.
pub fn config(issuer: &Issuer, upstream: &str, credential: &str) -> String {
    format!(
        r#"
[proxy]
listen = "127.0.0.1:0"
response_timeout = "1s"

[credential.amivoice]
type = "issued-key"
issue_url = "{}"
{credential}

[[route]]
name = "amivoice"
hosts = ["amivoice.test"]
upstream = "{upstream}"
credential = "amivoice"
"#,
        issuer.url()
    )
}

/// The AmiVoice recipe: sid and spw (from files in the sidecar's folder),
/// epi in milliseconds, the key in the `authorization` query parameter.
pub fn amivoice(epi_ms: u64, extra: &str) -> String {
    format!(
        "form = {{ sid = \"{SID}\", spw = \"${{file:spw}}\", epi = \"{epi_ms}\", ipa = \"127.0.0.1\" }}\nlifetime = \"{epi_ms}ms\"\nquery = \"authorization\"\n{extra}"
    )
}

/// A sidecar in a folder that holds the `spw` file.
pub async fn start(toml: &str) -> Sidecar {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("spw"), format!("{SPW}\n")).unwrap();
    Sidecar::start_in(dir, toml).await
}

pub async fn call(sidecar: &Sidecar, path_and_query: &str) -> Answer {
    let url = format!("http://amivoice.test{path_and_query}");
    send(sidecar.proxy(), get(&url)).await
}

#[tokio::test]
async fn sid_and_spw_go_in_the_body_and_the_key_in_the_authorization_parameter() {
    let issuer = Issuer::start(Mode::Text, SID, SPW, None).await;
    let upstream = Upstream::http().await;
    let sidecar = start(&config(
        &issuer,
        &upstream.http_url(),
        &amivoice(300_000, ""),
    ))
    .await;
    let mut req = get("http://amivoice.test/v1/recognize?d=grammar&authorization=app-guess&u=1");
    req.headers_mut()
        .insert("authorization", "Bearer app-guess".parse().unwrap());
    let answer = send(sidecar.proxy(), req).await;
    assert_eq!(answer.status, 200, "{answer:?}");

    let asked = issuer.requests();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].method, http::Method::POST);
    assert_eq!(asked[0].query, None, "nothing in the issue URL's query");
    assert_eq!(
        asked[0].content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(asked[0].authorization, None);
    let form = &asked[0].form;
    assert_eq!(
        (form["sid"].as_str(), form["spw"].as_str()),
        (SID, SPW),
        "sid and spw in the body"
    );
    assert_eq!(
        (form["epi"].as_str(), form["ipa"].as_str()),
        ("300000", "127.0.0.1")
    );

    let got = upstream.last();
    let key = issuer.keys()[0].clone();
    assert!(key.contains('+') && key.contains('/') && key.contains('='));
    let query = got.uri.query().unwrap();
    let params = form_decode(query);
    assert_eq!(params["authorization"], key, "the key, decoded: {query}");
    assert_eq!(
        (params["d"].as_str(), params["u"].as_str()),
        ("grammar", "1")
    );
    assert!(
        query.starts_with("d=grammar&u=1&authorization="),
        "the app's other parameters kept, in order: {query}"
    );
    assert_eq!(got.uri.path(), "/v1/recognize");
    assert_eq!(
        got.header("authorization"),
        None,
        "the app's header removed"
    );
}

#[tokio::test]
async fn a_master_key_as_bearer_and_a_json_answer_put_the_key_in_a_header() {
    let issuer = Issuer::start(Mode::Json, SID, SPW, Some(MASTER)).await;
    let api = Api::start(&issuer, KeyIn::Bearer).await;
    let credential = format!(
        "bearer = \"{MASTER}\"\nform = {{ epi = \"60000\" }}\nresponse = \"json\"\njson_field = \"key\"\nexpires_in_field = \"expires_in\"\nheader = \"Authorization\"\nprefix = \"Bearer \"\n"
    );
    let sidecar = start(&config(&issuer, &api.url(), &credential)).await;
    let mut req = get("http://amivoice.test/v1/recognize?authorization=kept");
    req.headers_mut()
        .insert("authorization", "Bearer app-guess".parse().unwrap());
    let answer = send(sidecar.proxy(), req).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let asked = &issuer.requests()[0];
    assert_eq!(
        asked.authorization.as_deref(),
        Some(format!("Bearer {MASTER}").as_str())
    );
    assert!(!asked.form.contains_key("sid"));
    let seen = &api.seen()[0];
    assert_eq!(
        seen.authorization.as_deref(),
        Some(format!("Bearer {}", issuer.keys()[0]).as_str())
    );
    assert_eq!(
        seen.uri.query(),
        Some("authorization=kept"),
        "the query is the app's business when the key goes in a header"
    );
    let status = sidecar.app.snapshot();
    let stats = status.credentials["amivoice"].token_stats().unwrap();
    let left = stats.expires_in.unwrap().as_secs();
    // Never more than 60s less the 5s margin (without it, 59 right now).
    assert!((30..=55).contains(&left), "{left}s left");
}

#[tokio::test]
async fn a_refused_spw_is_a_503_and_never_an_unauthenticated_forward() {
    let issuer = Issuer::start(Mode::Text, SID, "the-right-one", None).await;
    let upstream = Upstream::http().await;
    let credential = amivoice(300_000, "wait_for_token = \"300ms\"");
    let sidecar = start(&config(&issuer, &upstream.http_url(), &credential)).await;
    let answer = call(&sidecar, "/v1/recognize?d=grammar").await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(
        answer.header("x-countersign-error"),
        Some("token-unavailable")
    );
    assert!(answer.header("retry-after").is_some());
    assert!(answer.body.contains("issued key"), "{}", answer.body);
    assert!(answer.body.contains("401"), "{}", answer.body);
    for secret in [SID, SPW] {
        assert!(!answer.body.contains(secret), "{}", answer.body);
    }
    assert!(upstream.received().is_empty());
}
