//! Refresh tokens: every rotation stored before use, a restart in the
//! middle of rotations losing nothing and never presenting a spent token, a
//! new seed taking over, and clear errors for a damaged store or wrong key.

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt as _;

use countersign::app::StartError;
use countersign::{App, StartOptions};

use super::*;

const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KEY_B: &str = "HxwdHh8AAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRo=";

fn refresh_cred(seed: &str, extra: &str) -> String {
    format!(
        "grant = \"refresh_token\"\nclient_id = \"c\"\nclient_secret = \"s\"\nrefresh_token = \"{seed}\"\ntoken_store = \"bank.store\"\n{extra}"
    )
}

async fn server(expires_in: u64, seeds: &[&str]) -> (TokenServer, Api) {
    let tokens =
        TokenServer::start(&[("c", ClientCheck::Basic("s".into()))], expires_in, seeds).await;
    let api = Api::start(&tokens).await;
    (tokens, api)
}

/// Stops `sidecar` and starts a new App on the same folder and store.
async fn restart(sidecar: Sidecar, toml: &str) -> Sidecar {
    let Sidecar { app, dir, .. } = sidecar;
    app.shutdown().await;
    drop(app);
    Sidecar::start_in(dir, toml).await
}

fn presented(tokens: &TokenServer) -> Vec<String> {
    tokens
        .requests()
        .iter()
        .map(|r| r.form["refresh_token"].clone())
        .collect()
}

async fn rotations_survive_a_restart(store_key: Option<&str>) {
    let (tokens, api) = server(1, &["rt-seed"]).await;
    let extra = store_key.map_or(String::new(), |k| format!("store_key = \"{k}\""));
    let toml = config(
        &tokens,
        &api,
        &refresh_cred("rt-seed", &format!("refresh_at = 0.5\n{extra}")),
    );
    let sidecar = Sidecar::start(&toml).await;
    assert_eq!(call(&sidecar, "/a").await.status, 200);
    eventually("three rotations", || tokens.request_count() >= 3).await;
    let sidecar = restart(sidecar, &toml).await;
    let before = tokens.request_count();
    assert_eq!(call(&sidecar, "/b").await.status, 200);
    eventually("three more rotations", || {
        tokens.request_count() >= before + 3
    })
    .await;
    assert_eq!(call(&sidecar, "/c").await.status, 200);

    assert!(
        !tokens.reuse_detected(),
        "a spent refresh token was presented"
    );
    let presented = presented(&tokens);
    let distinct: HashSet<_> = presented.iter().collect();
    assert_eq!(
        distinct.len(),
        presented.len(),
        "each refresh token is presented once: {presented:?}"
    );
    assert_eq!(
        presented[0], "rt-seed",
        "the seed is used once, at the start"
    );
    assert!(api.seen().iter().all(|(_, status)| *status == 200));

    let store = sidecar.dir.path().join("bank.store");
    let mode = std::fs::metadata(&store).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let text = std::fs::read_to_string(&store).unwrap();
    let in_plain_text = tokens
        .refresh_tokens()
        .iter()
        .any(|t| text.contains(t.as_str()));
    assert_eq!(in_plain_text, store_key.is_none(), "{text}");
}

#[tokio::test]
async fn rotated_refresh_tokens_survive_a_restart() {
    rotations_survive_a_restart(None).await;
}

#[tokio::test]
async fn an_encrypted_store_survives_a_restart_and_hides_the_token() {
    rotations_survive_a_restart(Some(KEY_A)).await;
}

#[tokio::test]
async fn without_rotation_the_refresh_token_is_presented_again() {
    let (tokens, api) = server(1, &["rt-seed"]).await;
    tokens.set_rotation(false);
    let toml = config(&tokens, &api, &refresh_cred("rt-seed", "refresh_at = 0.5"));
    let sidecar = Sidecar::start(&toml).await;
    assert_eq!(call(&sidecar, "/a").await.status, 200);
    eventually("two renewals", || tokens.request_count() >= 3).await;
    assert!(presented(&tokens).iter().all(|t| t == "rt-seed"));
    assert!(
        !sidecar.dir.path().join("bank.store").exists(),
        "nothing rotated, nothing stored"
    );
}

#[tokio::test]
async fn a_new_seed_takes_over_and_then_its_rotations_win_on_restart() {
    let (tokens, api) = server(300, &["rt-seed"]).await;
    let toml = config(&tokens, &api, &refresh_cred("rt-seed", ""));
    let sidecar = Sidecar::start(&toml).await;
    assert_eq!(call(&sidecar, "/a").await.status, 200);
    // A person authorised again: the operator sets the new refresh token.
    tokens.add_refresh_token("rt-reconsented");
    let toml = config(&tokens, &api, &refresh_cred("rt-reconsented", ""));
    sidecar.rewrite(&toml);
    sidecar.wait_for_generation(1).await;
    eventually("the new seed is presented", || tokens.request_count() == 2).await;
    assert_eq!(presented(&tokens)[1], "rt-reconsented");
    // Same seed after a restart: the stored (rotated) token wins.
    let sidecar = restart(sidecar, &toml).await;
    assert_eq!(call(&sidecar, "/b").await.status, 200);
    let presented = presented(&tokens);
    assert_eq!(presented.len(), 3);
    assert!(presented[2].starts_with("rt-"), "{presented:?}");
    assert_ne!(presented[2], "rt-reconsented");
    assert!(!tokens.reuse_detected());
}

/// Starts an App on `toml` in `dir` and returns the problems it refused.
async fn refused(dir: &std::path::Path, toml: &str) -> Vec<(String, String)> {
    let path = dir.join("proxy.toml");
    write_atomically(&path, toml);
    match App::start(&path, StartOptions::default()).await {
        Ok(_) => panic!("countersign must refuse to start"),
        Err(StartError::Config(e)) => e
            .problems
            .into_iter()
            .map(|p| (p.path, p.message))
            .collect(),
        Err(e) => panic!("unexpected error: {e}"),
    }
}

#[tokio::test]
async fn a_damaged_store_or_a_wrong_key_refuses_to_start_with_a_clear_error() {
    let (tokens, api) = server(300, &["rt-seed"]).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bank.store"), "{ not what we wrote").unwrap();
    let plain = config(&tokens, &api, &refresh_cred("rt-seed", ""));
    let problems = refused(dir.path(), &plain).await;
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].0, "credential.bank.token_store");
    assert!(
        problems[0].1.contains("not a countersign token store"),
        "{problems:?}"
    );

    std::fs::remove_file(dir.path().join("bank.store")).unwrap();
    let keyed = |key: &str| {
        config(
            &tokens,
            &api,
            &refresh_cred("rt-seed", &format!("store_key = \"{key}\"")),
        )
    };
    let sidecar = Sidecar::start_in(dir, &keyed(KEY_A)).await;
    assert_eq!(call(&sidecar, "/a").await.status, 200);
    let Sidecar { app, dir, .. } = sidecar;
    app.shutdown().await;
    let problems = refused(dir.path(), &keyed(KEY_B)).await;
    assert_eq!(problems[0].0, "credential.bank.token_store");
    assert!(
        problems[0].1.contains("cannot be decrypted with store_key"),
        "{problems:?}"
    );
    let problems = refused(dir.path(), &plain).await;
    assert!(
        problems[0].1.contains("encrypted, but no store_key"),
        "{problems:?}"
    );
    assert!(!tokens.reuse_detected());
}

#[tokio::test]
async fn countersign_sign_refuses_to_spend_a_refresh_token() {
    let (tokens, api) = server(300, &["rt-seed"]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("proxy.toml");
    write_atomically(&path, &config(&tokens, &api, &refresh_cred("rt-seed", "")));
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_countersign"))
            .arg("sign")
            .arg("--config")
            .arg(&path)
            .args(["--route", "bank", "--url", "http://bank.test/x"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("rotates refresh tokens"), "{stderr}");
    assert_eq!(tokens.request_count(), 0);
}
