//! `appliance = "gmo-aozora"`: the route listener answers the GMO Aozora
//! appliance's own `POST /v1/authorization/` (form field `sessionId`), so
//! an app written for the appliance moves over with only a base URL
//! change. Driven as the appliance's README does, with curl itself
//! (`curl --request POST .../v1/authorization/ --form 'sessionId="ID"'`,
//! then `curl --request GET '.../corporation/v1/accounts?sessionId=ID'`),
//! and the person's browser between the two.

use std::net::SocketAddr;
use std::process::Command;

use super::*;

/// The sessions config with a route listener in appliance mode.
fn appliance_config(tokens: &TokenServer, upstream: &Upstream, keys: &str) -> String {
    config(tokens, upstream)
        .replace(
            "token_store =",
            &format!("session_param = \"sessionId\"\n{keys}token_store ="),
        )
        .replace(
            "credential = \"bank\"\n",
            "credential = \"bank\"\nlisten = \"127.0.0.1:0\"\nappliance = \"gmo-aozora\"\n",
        )
}

async fn appliance_sidecar(keys: &str) -> (TokenServer, Upstream, Sidecar, SocketAddr) {
    appliance_sidecar_redirecting(keys, REDIRECT).await
}

/// `appliance_sidecar` with `redirect` as the credential's redirect_uri.
async fn appliance_sidecar_redirecting(
    keys: &str,
    redirect: &str,
) -> (TokenServer, Upstream, Sidecar, SocketAddr) {
    let tokens = TokenServer::start(
        &[("gmo-client", ClientCheck::Basic("gmo-secret".into()))],
        300,
        &[],
    )
    .await;
    let upstream = Upstream::http().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sessions")).unwrap();
    let config = appliance_config(&tokens, &upstream, keys).replace(REDIRECT, redirect);
    let sidecar = Sidecar::start_in(dir, &config).await;
    let base = sidecar.app.route_addr("bank").expect("the route listener");
    (tokens, upstream, sidecar, base)
}

/// What curl printed: the status line and headers (`-D -`), then the body,
/// of the last answer; with `--location`, the header blocks of the answers
/// it followed come first (curl prints no body of those).
struct Curled {
    status: u16,
    headers: String,
    body: String,
    followed: Vec<String>,
}

impl Curled {
    fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

/// Runs curl with `args`, as an app's shell would.
async fn curl(args: &[String]) -> Curled {
    let args = args.to_vec();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("curl")
            .args(["--silent", "--show-error", "--dump-header", "-"])
            .args(&args)
            .output()
            .expect("curl runs")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "curl {:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (mut headers, mut body) = text.split_once("\r\n\r\n").unwrap();
    let mut followed = Vec::new();
    while body.starts_with("HTTP/") {
        followed.push(headers.to_string());
        (headers, body) = body.split_once("\r\n\r\n").unwrap();
    }
    let status = headers.split(' ').nth(1).unwrap().parse().unwrap();
    Curled {
        status,
        headers: headers.to_string(),
        body: body.to_string(),
        followed,
    }
}

/// The README's authorization call, for session `id`.
async fn post_authorization(base: SocketAddr, id: &str, extra: &[&str]) -> Curled {
    let mut args = vec![
        "--request".to_string(),
        "POST".to_string(),
        format!("http://{base}/v1/authorization/"),
        "--form".to_string(),
        format!("sessionId=\"{id}\""),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    curl(&args).await
}

#[tokio::test]
async fn an_app_written_for_the_appliance_authorizes_and_calls_with_only_a_new_base_url() {
    let (tokens, upstream, sidecar, base) = appliance_sidecar("").await;

    // 1. The app: the appliance's own request.
    let started = post_authorization(base, "alice", &[]).await;
    assert_eq!(started.status, 302, "{}", started.body);
    assert_eq!(started.header("cache-control").as_deref(), Some("no-store"));
    let location = started.header("location").unwrap();
    let prefix = "https://app.example.test/oauth2/bank/start?ticket=";
    assert!(location.starts_with(prefix), "{location}");
    let json: serde_json::Value = serde_json::from_str(&started.body).unwrap();
    assert_eq!(json["session"], "alice");
    assert_eq!(json["start"], location.as_str());
    assert!(upstream.received().is_empty(), "nothing was forwarded");

    // 2. The person's browser follows it (the host of redirect_uri reaches
    // the browser listener): the usual start, the bank, the callback.
    let start_path = location.strip_prefix("https://app.example.test").unwrap();
    let browser = start(&sidecar, start_path).await;
    let state = query_param(&browser.location, "state");
    tokens.add_code(
        "code-appliance",
        &query_param(&browser.location, "code_challenge"),
        REDIRECT,
    );
    let done = admin_with(
        &sidecar,
        "GET",
        &format!("/oauth2/bank/callback?code=code-appliance&state={state}"),
        Some(&browser.cookie),
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.body);
    let token = tokens.issued().last().unwrap().clone();

    // 3. The app: the appliance's API call, with the session in the query.
    let called = curl(&[
        "--location".to_string(),
        "--request".to_string(),
        "GET".to_string(),
        format!("http://{base}/corporation/v1/accounts?sessionId=alice"),
    ])
    .await;
    assert_eq!(called.status, 200, "{}", called.body);
    let got = upstream.last();
    assert_eq!(got.uri.to_string(), "/corporation/v1/accounts");
    assert_eq!(
        got.header("authorization"),
        Some(&*format!("Bearer {token}"))
    );

    // An unknown session is refused, as the session header's would be.
    let unknown = curl(&[format!(
        "http://{base}/corporation/v1/accounts?sessionId=mallory"
    )])
    .await;
    assert_eq!(unknown.status, 403, "{}", unknown.body);
    assert!(
        unknown.body.contains("`mallory` is not authorized"),
        "{}",
        unknown.body
    );
}

#[tokio::test]
async fn bad_requests_are_refused_and_spend_nothing() {
    let (_tokens, upstream, _sidecar, base) = appliance_sidecar("").await;
    // No form field, a bad id, the field twice, a GET.
    for (args, status, says) in [
        (
            vec!["--request", "POST", "--form", "other=1"],
            400,
            "needs form field `sessionId`",
        ),
        (
            vec!["--request", "POST", "--form", "sessionId=../../x"],
            400,
            "session id must be",
        ),
        (
            vec!["--request", "POST", "--data", "sessionId=a&sessionId=b"],
            400,
            "more than once",
        ),
        (vec!["--request", "GET"], 405, "POST"),
    ] {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        all.push(format!("http://{base}/v1/authorization/"));
        let answer = curl(&all).await;
        assert_eq!(answer.status, status, "{args:?}: {}", answer.body);
        assert!(answer.body.contains(says), "{args:?}: {}", answer.body);
        // The 400s are countersign's own, and say so (docs/errors.md).
        let reason = (status == 400).then_some("bad-request");
        assert_eq!(
            answer.header("x-countersign-error").as_deref(),
            reason,
            "{args:?}"
        );
    }
    // An HTML form (urlencoded) works as well as curl's multipart one.
    let html = curl(&[
        "--data".to_string(),
        "sessionId=bob%40example".to_string(),
        format!("http://{base}/v1/authorization"),
    ])
    .await;
    assert_eq!(html.status, 302, "{}", html.body);
    assert!(upstream.received().is_empty());
}

/// The appliance README's call as it stands, `curl --location --request
/// POST`: curl follows the `302` to countersign's `start` with a POST (the
/// method `--request` forces), which `start` answers `405`, as
/// docs/credentials/oauth2.md#the-gmo-appliance-drop-in-mode says; the app
/// authorizes nobody by following it. The ticket is not spent: the
/// person's browser can still open the `Location`.
#[tokio::test]
async fn the_readmes_curl_location_post_follows_to_a_405_and_spends_nothing() {
    // A plain-http redirect host, so curl can follow to the browser
    // listener (`--connect-to`).
    let redirect = "http://app.example.test/oauth2/callback";
    let (_tokens, upstream, sidecar, base) = appliance_sidecar_redirecting("", redirect).await;
    let followed = curl(&[
        "--location".to_string(),
        "--request".to_string(),
        "POST".to_string(),
        format!("http://{base}/v1/authorization/"),
        "--form".to_string(),
        "sessionId=\"alice\"".to_string(),
        "--connect-to".to_string(),
        format!("app.example.test:80:{}", sidecar.browser()),
    ])
    .await;
    assert_eq!(followed.followed.len(), 1, "{:?}", followed.followed);
    let first = &followed.followed[0];
    assert!(first.starts_with("HTTP/1.1 302"), "{first}");
    let location = first
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("location").then(|| value.trim())
        })
        .unwrap_or_else(|| panic!("{first}"));
    let prefix = "http://app.example.test/oauth2/bank/start?ticket=";
    assert!(location.starts_with(prefix), "{location}");
    assert_eq!(followed.status, 405, "{}", followed.body);
    assert_eq!(followed.header("allow").as_deref(), Some("GET"));
    assert!(followed.body.contains("use GET"), "{}", followed.body);
    assert!(upstream.received().is_empty(), "nothing was forwarded");
    // The browser still starts with that ticket (one use, not spent).
    let start_path = location.strip_prefix("http://app.example.test").unwrap();
    let browser = start(&sidecar, start_path).await;
    assert!(
        browser
            .location
            .starts_with("https://auth.bank.test/authorize"),
        "{}",
        browser.location
    );
}

/// With `authorize_secret`, the appliance's request must carry it (the
/// one change such an app needs); the browser binding is unchanged.
#[tokio::test]
async fn with_an_authorize_secret_the_request_must_carry_it() {
    let (_tokens, _upstream, _sidecar, base) =
        appliance_sidecar("authorize_secret = \"0123456789abcdef-appliance\"\n").await;
    let refused = post_authorization(base, "alice", &[]).await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert_eq!(
        refused.header("www-authenticate").as_deref(),
        Some("Bearer")
    );
    assert!(
        !refused.body.contains("0123456789abcdef"),
        "{}",
        refused.body
    );
    let ok = post_authorization(
        base,
        "alice",
        &[
            "--header",
            "Authorization: Bearer 0123456789abcdef-appliance",
        ],
    )
    .await;
    assert_eq!(ok.status, 302, "{}", ok.body);
}
