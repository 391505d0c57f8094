//! Reloads that settle and keep what they did not change: reading a watched
//! file is not a change (each reload once started the next, about six a
//! second, forever), an unrelated reload keeps the upstream pools and the
//! leaf cache, and a secret file that would block (a FIFO) or never end
//! (`/dev/zero`) is refused at once instead of wedging reload and shutdown.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use crate::binary::{check, write_config, Process};
use crate::harness::*;
use crate::reload::config;

/// Long enough for the old loop to have reloaded several times (its period
/// was the 150 ms settle window plus a reload).
const QUIET: Duration = Duration::from_millis(1200);

fn generation(sidecar: &Sidecar) -> u64 {
    *sidecar.app.generations().borrow()
}

#[tokio::test]
async fn reading_the_config_starts_no_reload_and_a_reload_starts_no_other() {
    let upstream = Upstream::http().await;
    let sidecar = Sidecar::start(&config(&upstream.http_url(), "v1")).await;
    // What `cat proxy.toml` does: open, read, close.
    for _ in 0..3 {
        std::fs::read(&sidecar.config_path).unwrap();
    }
    tokio::time::sleep(QUIET).await;
    assert_eq!(generation(&sidecar), 1, "a read started a reload");

    // One reload (as SIGHUP or POST /reload starts it) reads every file
    // again; that must not start another.
    assert_eq!(sidecar.app.reload().await.unwrap(), 2);
    tokio::time::sleep(QUIET).await;
    assert_eq!(generation(&sidecar), 2, "the reload started more reloads");

    // A real change still reloads, once.
    sidecar.rewrite(&config(&upstream.http_url(), "v2"));
    assert_eq!(sidecar.wait_for_generation(2).await, 3);
    tokio::time::sleep(QUIET).await;
    assert_eq!(generation(&sidecar), 3);
    send(sidecar.proxy(), get("http://api.example.test/")).await;
    assert_eq!(upstream.last().header("authorization"), Some("Bearer v2"));
}

/// Two routes, one on the shared client (plain HTTP) and one with its own
/// pool (a TLS upstream with its own `ca_file`); the reload changes only the
/// credential. Afterwards 20 keep-alive requests on each route still use the
/// one connection opened before it.
#[tokio::test]
async fn upstream_pools_survive_a_reload_that_does_not_touch_them() {
    let plain = Upstream::http().await;
    let ca = TestCa::new();
    let tls = Upstream::https(&ca).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_ca(dir.path());
    let toml = |token: &str| {
        config(&plain.http_url(), token)
            + &format!(
                "\n[[route]]\nname = \"tls\"\nhosts = [\"tls.example.test\"]\nupstream = \"{}\"\nca_file = \"{}\"\ncredential = \"api\"\n",
                tls.https_url(),
                ca_file.display()
            )
    };
    let sidecar = Sidecar::start_in(dir, &toml("v1")).await;
    for host in ["api", "tls"] {
        let answer = send(
            sidecar.proxy(),
            get(&format!("http://{host}.example.test/")),
        )
        .await;
        assert_eq!(answer.status, 200, "{answer:?}");
    }
    sidecar.rewrite(&toml("v2"));
    sidecar.wait_for_generation(1).await;
    for i in 0..20 {
        for host in ["api", "tls"] {
            let url = format!("http://{host}.example.test/{i}");
            assert_eq!(send(sidecar.proxy(), get(&url)).await.status, 200);
        }
    }
    assert_eq!(plain.last().header("authorization"), Some("Bearer v2"));
    assert_eq!(tls.last().header("authorization"), Some("Bearer v2"));
    assert_eq!(plain.connections(), 1, "the plain pool was rebuilt");
    assert_eq!(tls.connections(), 1, "the TLS pool was rebuilt");
}

/// The passthrough client is kept like the others, yet a change to
/// `[egress]` takes effect at the next request: the client is keyed on it.
#[tokio::test]
async fn a_kept_client_enforces_the_egress_rules_of_the_new_config() {
    let upstream = Upstream::http().await;
    let toml = |allow: &str, header_timeout: &str| {
        format!("[proxy]\nlisten = \"127.0.0.1:0\"\nunmatched = \"passthrough\"\nclient_header_timeout = \"{header_timeout}\"\n[egress]\nallow = [{allow}]\n")
    };
    let url = format!("http://127.0.0.1:{}/", upstream.addr.port());
    let sidecar = Sidecar::start(&toml("\"127.0.0.1\"", "30s")).await;
    assert_eq!(send(sidecar.proxy(), get(&url)).await.status, 200);
    // Unrelated to upstream clients: the pool stays.
    sidecar.rewrite(&toml("\"127.0.0.1\"", "31s"));
    sidecar.wait_for_generation(1).await;
    assert_eq!(send(sidecar.proxy(), get(&url)).await.status, 200);
    assert_eq!(
        upstream.connections(),
        1,
        "the passthrough pool was rebuilt"
    );

    let g = generation(&sidecar);
    sidecar.rewrite(&toml("", "31s"));
    sidecar.wait_for_generation(g).await;
    let refused = send(sidecar.proxy(), get(&url)).await;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert_eq!(refused.header("x-countersign-error"), Some("egress-denied"));
}

/// The certificate an intercepted CONNECT to `host` is shown.
async fn leaf_shown(proxy: std::net::SocketAddr, host: &str, ca_pem: &str) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject;
    let stream = connect_tunnel(proxy, &format!("{host}:443")).await.unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from(host.to_string()).unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

#[tokio::test]
async fn the_leaf_cache_survives_a_reload_that_does_not_touch_the_ca() {
    let upstream = Upstream::http().await;
    let dir = tempfile::tempdir().unwrap();
    countersign::pki::ca::init(&dir.path().join("ca")).unwrap();
    let app_ca = std::fs::read_to_string(dir.path().join("ca/ca.pem")).unwrap();
    let toml = |token: &str| {
        config(&upstream.http_url(), token)
            + "\n[intercept]\nca_cert = \"ca/ca.pem\"\nca_key = \"ca/ca-key.pem\"\n"
    };
    let sidecar = Sidecar::start_in(dir, &toml("v1")).await;
    let before = leaf_shown(sidecar.proxy(), "api.example.test", &app_ca).await;
    sidecar.rewrite(&toml("v2"));
    sidecar.wait_for_generation(1).await;
    let after = leaf_shown(sidecar.proxy(), "api.example.test", &app_ca).await;
    assert!(
        before == after,
        "a new leaf was minted after an unrelated reload"
    );

    // A new leaf lifetime is a change to the cache: new leaves.
    let g = generation(&sidecar);
    sidecar.rewrite(&toml("v2").replace("ca_key = ", "leaf_lifetime = \"12h\"\nca_key = "));
    sidecar.wait_for_generation(g).await;
    let changed = leaf_shown(sidecar.proxy(), "api.example.test", &app_ca).await;
    assert!(
        changed != after,
        "the leaf lifetime changed but the leaf did not"
    );
}

fn mkfifo(path: &Path) {
    let made = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(made.success());
}

/// Opens the FIFO for writing and closes it, again for each next reader, so
/// readers stuck in it (the code as it was) get end-of-file instead of
/// hanging the test process.
fn unblock(fifo: &Path) {
    let fifo = fifo.to_path_buf();
    std::thread::spawn(move || {
        for _ in 0..20 {
            drop(std::fs::OpenOptions::new().write(true).open(&fifo));
        }
    });
}

async fn admin_reload(sidecar: &Sidecar) -> Answer {
    let req = http::Request::post("/reload")
        .header("host", "admin")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    send(sidecar.control(), req).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_secret_is_refused_at_once_and_shutdown_still_works() {
    let upstream = Upstream::http().await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "t1\n").unwrap();
    let sidecar = Sidecar::start_in(dir, &config(&upstream.http_url(), "${file:token}")).await;

    // Swapped in the way a secret is rotated: new entry, then rename.
    let fifo = sidecar.dir.path().join("token.fifo");
    mkfifo(&fifo);
    std::fs::rename(&fifo, &token).unwrap();
    let answer = match tokio::time::timeout(Duration::from_secs(10), admin_reload(&sidecar)).await {
        Ok(answer) => answer,
        Err(_) => {
            unblock(&token);
            panic!("POST /reload hung on a FIFO secret");
        }
    };
    assert_eq!(answer.status, 422, "{}", answer.body);
    let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(body["problems"][0]["path"], "credential.api.bearer");
    let message = body["problems"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("a FIFO (named pipe), not a regular file"),
        "{message}"
    );
    assert_eq!(
        send(sidecar.proxy(), get("http://api.example.test/"))
            .await
            .status,
        200
    );
    assert_eq!(upstream.last().header("authorization"), Some("Bearer t1"));

    let stopped = tokio::time::timeout(Duration::from_secs(10), sidecar.app.shutdown()).await;
    if stopped.is_err() {
        unblock(&token);
        panic!("shutdown waited on a reload stuck in a FIFO");
    }
}

#[tokio::test]
async fn dev_zero_as_a_secret_is_refused() {
    let upstream = Upstream::http().await;
    let sidecar = Sidecar::start(&config(&upstream.http_url(), "t1")).await;
    sidecar.rewrite(&config(&upstream.http_url(), "${file:/dev/zero}"));
    let e = sidecar.app.reload().await.unwrap_err();
    assert_eq!(e.problems[0].path, "credential.api.bearer");
    assert!(
        e.problems[0]
            .message
            .contains("a device, not a regular file"),
        "{e}"
    );
}

/// The binary: a FIFO swapped in for a secret while it runs is refused, and
/// SIGTERM still ends the process (the stuck reload once held the lock
/// shutdown waits for, and SIGTERM was ignored).
#[test]
fn the_binary_refuses_a_fifo_secret_and_still_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "t1\n").unwrap();
    let path = write_config(
        dir.path(),
        "[proxy]\nlisten = \"127.0.0.1:0\"\ndrain_timeout = \"2s\"\n[credential.api]\ntype = \"header\"\nbearer = \"${file:token}\"\n",
    );
    let mut p = Process::start(&path, &[]);
    p.wait_for("countersign is serving");
    let fifo = dir.path().join("token.fifo");
    mkfifo(&fifo);
    std::fs::rename(&fifo, &token).unwrap();
    p.signal("-HUP");
    p.wait_for("FIFO");
    p.signal("-TERM");
    // Were it stuck, the process is killed when `p` drops.
    let (status, lines) = p.wait_exit();
    assert!(status.success(), "{status:?}\n{}", lines.join("\n"));
    assert!(
        lines.iter().any(|l| l.contains("shut down")),
        "{}",
        lines.join("\n")
    );

    // `check` answers at once too, naming the file's kind.
    let out = check(&path);
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("credential.api.bearer"), "{stderr}");
    assert!(stderr.contains("a FIFO"), "{stderr}");
}
