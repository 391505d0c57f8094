//! `countersign store migrate`, the binary: a countersign on files (a
//! rotating refresh_token credential and two authorized sessions) moves to
//! Redis without spending a token. Countersigns on Redis then renew from
//! the migrated refresh tokens and never touch the old files. It refuses
//! without `[store]`, with Redis down, and over keys already there.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Output};

use super::*;
use crate::binary::BIN;

/// The sessions config plus credential `rt` (refresh_token, rotating, its
/// file `DIR/rt.store`) for host `rt.test`.
fn files_config(tokens: &TokenServer, upstream: &Upstream) -> String {
    format!(
        r#"{}
[credential.rt]
type = "oauth2"
token_url = "{}"
grant = "refresh_token"
client_id = "c"
client_secret = "s"
refresh_token = "rt-seed"
token_store = "DIR/rt.store"

[[route]]
name = "rt"
hosts = ["rt.test"]
upstream = "{}"
credential = "rt"
"#,
        config(tokens, upstream),
        tokens.url(),
        upstream.http_url()
    )
}

fn with_store(toml: &str, url: &str) -> String {
    format!("[store]\nurl = \"{url}\"\nkey_prefix = \"cs-test:\"\n{toml}")
}

/// `countersign store migrate --config PATH [extra]`, with `toml` written
/// to PATH in `dir`.
fn migrate(dir: &Path, toml: &str, extra: &[&str]) -> Output {
    let path = dir.join("migrate.toml");
    let text = toml.replace("DIR", &dir.display().to_string());
    std::fs::write(&path, text).unwrap();
    Command::new(BIN)
        .args(["store", "migrate", "--config"])
        .arg(&path)
        .args(extra)
        .output()
        .expect("the binary runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The refresh token in a plain store file.
fn token_in(file: &Path) -> String {
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    doc["grant"]["refresh_token"].as_str().unwrap().to_string()
}

/// Every store file under `dir` (rt.store and the session files), with its
/// bytes and modification time.
fn store_files(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>, std::time::SystemTime)> {
    let mut files = vec![dir.join("rt.store")];
    for entry in std::fs::read_dir(dir.join("sessions")).unwrap() {
        files.push(entry.unwrap().path());
    }
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let modified = std::fs::metadata(&f).unwrap().modified().unwrap();
            (f.clone(), std::fs::read(&f).unwrap(), modified)
        })
        .collect()
}

async fn call_rt(sidecar: &Sidecar) -> Answer {
    send(sidecar.proxy(), get("http://rt.test/balance")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_move_to_redis_without_spending_a_token_and_are_then_unused() {
    let redis = RedisServer::start();
    let tokens = TokenServer::start(
        &[
            ("gmo-client", ClientCheck::Basic("gmo-secret".into())),
            ("c", ClientCheck::Basic("s".into())),
        ],
        300,
        &["rt-seed"],
    )
    .await;
    let upstream = Upstream::http().await;

    // A single countersign on files: rt rotated its seed, two sessions.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sessions")).unwrap();
    let files = files_config(&tokens, &upstream);
    let one = Sidecar::start_in(dir, &files).await;
    assert_eq!(call_rt(&one).await.status, 200);
    for (session, code) in [("alice", "code-a"), ("bob", "code-b")] {
        let done = authorize(&one, &tokens, session, code).await;
        assert_eq!(done.status, 200, "{}", done.body);
    }
    one.app.shutdown().await;
    let dir = one.dir;
    let before = store_files(dir.path());
    assert_eq!(before.len(), 3, "rt.store and two session files");
    let rt_token = token_in(&dir.path().join("rt.store"));
    let session_tokens: HashSet<String> = before[1..].iter().map(|(f, _, _)| token_in(f)).collect();
    let requests_before = tokens.request_count();

    // Without [store]: refused, nothing to copy into.
    let out = migrate(dir.path(), &files, &[]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("no [store] section"), "{}", text(&out));

    // Redis down: refused, clearly.
    let mut down = RedisServer::start();
    let down_url = down.url();
    down.stop();
    let out = migrate(dir.path(), &with_store(&files, &down_url), &[]);
    assert!(!out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("cannot reach the shared token store"),
        "{said}"
    );
    assert!(said.contains("nothing was copied"), "{said}");

    // The migration: three items, named, no token printed.
    let shared = with_store(&files, &redis.url());
    let out = migrate(dir.path(), &shared, &[]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    let copied = said.lines().filter(|l| l.starts_with("copied ")).count();
    assert_eq!(copied, 3, "{said}");
    assert!(said.contains("3 item(s) copied"), "{said}");
    assert!(said.contains("cs-test:grant:rt"), "{said}");
    assert_eq!(said.matches("cs-test:session:bank:").count(), 2, "{said}");
    for token in tokens.refresh_tokens().iter().chain(tokens.issued().iter()) {
        assert!(
            !said.contains(token.as_str()),
            "a token was printed: {said}"
        );
    }
    assert_eq!(
        tokens.request_count(),
        requests_before,
        "no token was spent"
    );

    // Again: the keys are there now; refused unless --force.
    let out = migrate(dir.path(), &shared, &[]);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("already hold a value"), "{said}");
    assert!(said.contains("cs-test:grant:rt"), "{said}");
    let out = migrate(dir.path(), &shared, &["--force"]);
    assert!(out.status.success(), "{}", text(&out));

    // Countersigns on Redis (token_store removed, as the docs say), in
    // other folders: they renew from the migrated refresh tokens.
    let on_redis = shared
        .replace("token_store = \"DIR/sessions\"\n", "")
        .replace("token_store = \"DIR/rt.store\"\n", "");
    let a = Sidecar::start(&on_redis).await;
    let b = Sidecar::start(&on_redis).await;
    assert_eq!(call_rt(&a).await.status, 200);
    assert_eq!(call(&b, Some("alice")).await.status, 200);
    assert_eq!(call(&a, Some("bob")).await.status, 200);
    assert_eq!(call(&a, Some("alice")).await.status, 200);
    let renewals: Vec<String> = tokens.requests()[requests_before..]
        .iter()
        .map(|r| r.form["refresh_token"].clone())
        .collect();
    // Each replica renews rt at its start, and A renews alice after B
    // (no lease yet): every token presented is a different one, the first
    // ones the migrated tokens.
    let distinct: HashSet<&String> = renewals.iter().collect();
    assert_eq!(distinct.len(), renewals.len(), "{renewals:?}");
    assert!(
        renewals.contains(&rt_token),
        "rt renewed from the migrated token"
    );
    for token in &session_tokens {
        assert!(
            renewals.contains(token),
            "a session from its migrated token"
        );
    }
    assert!(!tokens.reuse_detected(), "no spent token was presented");

    // The old files: neither read into use nor written.
    assert_eq!(store_files(dir.path()), before);
}
