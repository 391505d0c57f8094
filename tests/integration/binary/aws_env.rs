//! Temporary AWS keys as a pod gets them, through the compiled binary
//! started with the pod's environment: a config that names no role, token
//! file or endpoint takes them from `AWS_ROLE_ARN` and
//! `AWS_WEB_IDENTITY_TOKEN_FILE` (IRSA) or `AWS_CONTAINER_CREDENTIALS_*`
//! and `AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE)` (ECS, EKS Pod
//! Identity); and short-lived keys are renewed, the token file read
//! afresh for each exchange.

mod fakes;

use std::net::SocketAddr;

use super::*;
use fakes::{container_endpoint, key_id, short_lived_sts};

/// Routes `sts.aws.test` to a web-identity credential and `pod.aws.test`
/// to a container one; neither names a role, a token file, a URL or a
/// token: those come from the environment. (`sts_url` only points STS at
/// the fake.)
fn config(upstream: &str, sts: SocketAddr) -> String {
    format!(
        r#"
[proxy]
listen = "127.0.0.1:0"

[credential.irsa]
type = "aws-sigv4"
service = "execute-api"
region = "eu-west-1"
keys = "web-identity"
sts_url = "http://{sts}/"

[credential.pod]
type = "aws-sigv4"
service = "execute-api"
region = "eu-west-1"
keys = "container"

[[route]]
name = "irsa"
hosts = ["sts.aws.test"]
upstream = "{upstream}"
credential = "irsa"

[[route]]
name = "pod"
hosts = ["pod.aws.test"]
upstream = "{upstream}"
credential = "pod"
"#
    )
}

const ROLE: &str = "arn:aws:iam::123456789012:role/from-env";

/// The access key id an upstream request was signed with.
fn signed_with(got: &Recorded) -> String {
    let auth = got.header("authorization").unwrap_or_default();
    auth.split("Credential=")
        .nth(1)
        .and_then(|c| c.split('/').next())
        .unwrap_or_default()
        .to_string()
}

#[test]
fn web_identity_and_container_keys_come_from_the_pods_environment() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let upstream = rt.block_on(Upstream::http());
    let (sts, forms) = rt.block_on(short_lived_sts(3600));
    let (agent, gets) = rt.block_on(container_endpoint());
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("eks.amazonaws.com-token");
    std::fs::write(&token_file, "eyJ.irsa-from-env.sig\n").unwrap();
    let pod_token = dir.path().join("eks-pod-identity-token");
    std::fs::write(&pod_token, "pod-token-from-file\n").unwrap();
    let path = write_config(dir.path(), &config(&upstream.http_url(), sts));
    let full_uri = format!("http://{agent}/v1/credentials");
    let mut p = Process::start(
        &path,
        &[
            ("AWS_ROLE_ARN", ROLE),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", token_file.to_str().unwrap()),
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &full_uri),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                pod_token.to_str().unwrap(),
            ),
        ],
    );
    let proxy = p.listening("forward");
    p.wait_for("countersign is serving");

    let answer = rt.block_on(send(proxy, get("http://sts.aws.test/prod/items")));
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(signed_with(&upstream.last()), key_id("STS", 1));
    assert_eq!(
        upstream.last().header("x-amz-security-token"),
        Some("sts-session-1")
    );
    let form = forms.lock().unwrap()[0].clone();
    assert_eq!(form["Action"], "AssumeRoleWithWebIdentity");
    assert_eq!(form["RoleArn"], ROLE, "the role from AWS_ROLE_ARN");
    assert_eq!(
        form["WebIdentityToken"], "eyJ.irsa-from-env.sig",
        "the token from the file AWS_WEB_IDENTITY_TOKEN_FILE names"
    );

    let answer = rt.block_on(send(proxy, get("http://pod.aws.test/prod/items")));
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(signed_with(&upstream.last()), key_id("POD", 1));
    assert_eq!(
        gets.lock().unwrap()[0].as_deref(),
        Some("pod-token-from-file"),
        "the token from the file AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE names, at AWS_CONTAINER_CREDENTIALS_FULL_URI"
    );
    drop(p);

    // The token itself in AWS_CONTAINER_AUTHORIZATION_TOKEN (ECS).
    let mut p = Process::start(
        &path,
        &[
            ("AWS_ROLE_ARN", ROLE),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", token_file.to_str().unwrap()),
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &full_uri),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "ecs-token-value"),
        ],
    );
    let proxy = p.listening("forward");
    p.wait_for("countersign is serving");
    let answer = rt.block_on(send(proxy, get("http://pod.aws.test/prod/items")));
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        gets.lock().unwrap().last().unwrap().as_deref(),
        Some("ecs-token-value")
    );
    drop(p);

    // AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (ECS) is taken as a path on
    // ECS's fixed address, which no test can serve: `check` accepts it,
    // and without any of the variables names what is missing.
    let env = |cmd: &mut Command| {
        cmd.env_remove("AWS_CONTAINER_CREDENTIALS_FULL_URI")
            .env_remove("AWS_CONTAINER_AUTHORIZATION_TOKEN")
            .env_remove("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
            .env("AWS_ROLE_ARN", ROLE)
            .env("AWS_WEB_IDENTITY_TOKEN_FILE", &token_file);
    };
    let mut relative = Command::new(BIN);
    relative.args(["check", "--config"]).arg(&path);
    env(&mut relative);
    let out = relative
        .env(
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "/v2/credentials/abc",
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut neither = Command::new(BIN);
    neither.args(["check", "--config"]).arg(&path);
    env(&mut neither);
    let out = neither
        .env_remove("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(
        stderr.contains("credential.pod.container_url: missing, and neither AWS_CONTAINER_CREDENTIALS_FULL_URI nor AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is set"),
        "{stderr}"
    );
}

/// Keys that live 3 seconds, new ones at each exchange: countersign
/// renews them before they run out, reading the token file again (the
/// platform rotates it), and the upstream sees the new access key.
#[test]
fn short_lived_web_identity_keys_are_renewed_with_the_rewritten_token() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let upstream = rt.block_on(Upstream::http());
    let (sts, forms) = rt.block_on(short_lived_sts(3));
    let (agent, _) = rt.block_on(container_endpoint());
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "first.projected.token").unwrap();
    let path = write_config(dir.path(), &config(&upstream.http_url(), sts));
    let full_uri = format!("http://{agent}/v1/credentials");
    let mut p = Process::start(
        &path,
        &[
            ("AWS_ROLE_ARN", ROLE),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", token_file.to_str().unwrap()),
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &full_uri),
        ],
    );
    let proxy = p.listening("forward");
    p.wait_for("countersign is serving");
    let answer = rt.block_on(send(proxy, get("http://sts.aws.test/a")));
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(signed_with(&upstream.last()), key_id("STS", 1));
    // The platform rotates the projected token.
    write_atomically(&token_file, "second.projected.token");

    rt.block_on(eventually("a second exchange with STS", || {
        forms.lock().unwrap().len() >= 2
    }));
    let tokens: Vec<String> = forms
        .lock()
        .unwrap()
        .iter()
        .map(|f| f["WebIdentityToken"].clone())
        .collect();
    assert_eq!(tokens[0], "first.projected.token");
    assert_eq!(
        tokens[1], "second.projected.token",
        "the renewal reads the token file again: {tokens:?}"
    );
    // Requests are signed with the renewed keys once they are held.
    let renewed = rt.block_on(eventually_async(
        "a request signed with renewed keys",
        std::time::Duration::from_secs(10),
        || async {
            let answer = send(proxy, get("http://sts.aws.test/b")).await;
            let got = upstream.last();
            let key = signed_with(&got);
            if answer.status == 200 && key != key_id("STS", 1) {
                Ok((key, got.header("x-amz-security-token").map(str::to_string)))
            } else {
                Err(format!("{} signed with {key}", answer.status))
            }
        },
    ));
    assert!(renewed.0.starts_with("ASIASTS"), "{renewed:?}");
    let n: usize = renewed.0["ASIASTS".len()..].parse().unwrap();
    assert!(n >= 2, "{renewed:?}");
    assert_eq!(renewed.1, Some(format!("sts-session-{n}")));
}
