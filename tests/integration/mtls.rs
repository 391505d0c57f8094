//! Mutual TLS per route: the upstream sees the route's client certificate,
//! rotation on disk switches identity without a restart or a failed request,
//! and bad certificate files are refused at load, naming the file.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::harness::*;

fn route(upstream: &Upstream, ca_file: &std::path::Path, mtls: bool) -> String {
    let identity = if mtls {
        "client_cert = \"client.pem\"\nclient_key = \"client-key.pem\"\n"
    } else {
        ""
    };
    format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\n[[route]]\nname = \"bank\"\nhosts = [\"bank.test\"]\nupstream = \"{}\"\nca_file = \"{}\"\n{identity}",
        upstream.https_url(),
        ca_file.display()
    )
}

fn write_identity(dir: &std::path::Path, clients: &TestCa, cn: &str) {
    let (cert, key) = clients.client_cert(cn, 90);
    write_atomically(&dir.join("client.pem"), &cert);
    write_atomically(&dir.join("client-key.pem"), &key);
}

#[tokio::test]
async fn an_mtls_upstream_accepts_the_routes_certificate_and_rejects_none() {
    let (server_ca, clients) = (TestCa::new(), TestCa::new());
    let upstream = Upstream::https_mtls(&server_ca, &clients).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = server_ca.write_ca(dir.path());
    write_identity(dir.path(), &clients, "client-1");

    let with = Sidecar::start_in(dir, &route(&upstream, &ca_file, true)).await;
    let answer = send(with.proxy(), get("http://bank.test/accounts")).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(upstream.last().peer.as_deref(), Some("client-1"));

    let without = Sidecar::start(&route(&upstream, &ca_file, false)).await;
    let answer = send(without.proxy(), get("http://bank.test/accounts")).await;
    assert_eq!(answer.status, 502, "{answer:?}");
    assert_eq!(answer.header("x-countersign-error"), Some("upstream-tls"));
    assert_eq!(upstream.received().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_client_certificate_switches_identity_without_failures() {
    let (server_ca, clients) = (TestCa::new(), TestCa::new());
    let upstream = Upstream::https_mtls(&server_ca, &clients).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = server_ca.write_ca(dir.path());
    write_identity(dir.path(), &clients, "client-1");
    let sidecar = Sidecar::start_in(dir, &route(&upstream, &ca_file, true)).await;
    let proxy = sidecar.proxy();

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let worker = {
        let (stop, ok) = (Arc::clone(&stop), Arc::clone(&ok));
        tokio::spawn(async move {
            let mut failures = Vec::new();
            for _ in 0..5000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                match try_send(proxy, get("http://bank.test/balance")).await {
                    Ok(a) if a.status == 200 => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(a) => failures.push(format!("{} {}", a.status, a.body)),
                    Err(e) => failures.push(e),
                }
            }
            failures
        })
    };
    eventually("load is flowing", || ok.load(Ordering::Relaxed) > 20).await;
    write_identity(sidecar.dir.path(), &clients, "client-2");
    eventually("the new identity reaches the upstream", || {
        upstream
            .received()
            .last()
            .and_then(|r| r.peer.clone())
            .as_deref()
            == Some("client-2")
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let failures = worker.await.unwrap();
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    let peers: Vec<Option<String>> = upstream.received().into_iter().map(|r| r.peer).collect();
    let first_new = peers
        .iter()
        .position(|p| p.as_deref() == Some("client-2"))
        .unwrap();
    assert!(peers[..first_new]
        .iter()
        .all(|p| p.as_deref() == Some("client-1")));
}

#[tokio::test]
async fn a_mismatched_or_expired_identity_is_refused_naming_the_file() {
    let clients = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let (cert, _) = clients.client_cert("one", 90);
    let (_, other_key) = clients.client_cert("two", 90);
    std::fs::write(dir.path().join("client.pem"), cert).unwrap();
    std::fs::write(dir.path().join("client-key.pem"), other_key).unwrap();
    let toml = "[[route]]\nname = \"bank\"\nhosts = [\"bank.test\"]\nupstream = \"https://bank.test\"\nclient_cert = \"client.pem\"\nclient_key = \"client-key.pem\"\n";
    let e = countersign::config::parse(toml, dir.path()).unwrap_err();
    assert_eq!(e.problems.len(), 1, "{e}");
    assert_eq!(e.problems[0].path, "route[0].client_cert");
    assert!(e.problems[0].message.contains("client-key.pem"), "{e}");
    assert!(e.problems[0].message.contains("does not match"), "{e}");

    let (expired, key) = clients.client_cert("old", -1);
    std::fs::write(dir.path().join("client.pem"), expired).unwrap();
    std::fs::write(dir.path().join("client-key.pem"), key).unwrap();
    let e = countersign::config::parse(toml, dir.path()).unwrap_err();
    assert!(e.problems[0].message.contains("client.pem"), "{e}");
    assert!(e.problems[0].message.contains("expired"), "{e}");

    // Nothing at the path: the message names which file, not the path (the
    // value could be a key pasted where its file name belongs).
    std::fs::remove_file(dir.path().join("client-key.pem")).unwrap();
    let e = countersign::config::parse(toml, dir.path()).unwrap_err();
    assert!(
        e.problems[0].message.contains("cannot read the key file"),
        "{e}"
    );
    assert!(!e.problems[0].message.contains("client-key.pem"), "{e}");
}

/// Interop: `openssl s_server -Verify` is a third-party TLS server that
/// demands and checks a client certificate.
#[tokio::test]
async fn openssl_s_server_accepts_countersigns_client_certificate() {
    let (server_ca, clients) = (TestCa::new(), TestCa::new());
    let dir = tempfile::tempdir().unwrap();
    let (server_cert, server_key) = server_ca.server_cert_pem();
    std::fs::write(dir.path().join("server.pem"), server_cert).unwrap();
    std::fs::write(dir.path().join("server-key.pem"), server_key).unwrap();
    std::fs::write(dir.path().join("clients-ca.pem"), &clients.ca_pem).unwrap();
    let server = OpensslServer::start(dir.path());
    let ca_file = server_ca.write_ca(dir.path());
    write_identity(dir.path(), &clients, "interop-client");
    let toml = |mtls: bool| {
        let identity = if mtls {
            format!(
                "client_cert = \"{0}/client.pem\"\nclient_key = \"{0}/client-key.pem\"\n",
                dir.path().display()
            )
        } else {
            String::new()
        };
        format!(
            "[proxy]\nlisten = \"127.0.0.1:0\"\n[[route]]\nname = \"s\"\nhosts = [\"s.test\"]\nupstream = \"https://localhost:{}\"\nca_file = \"{}\"\n{identity}",
            server.port,
            ca_file.display()
        )
    };
    let with = Sidecar::start(&toml(true)).await;
    let answer = send(with.proxy(), get("http://s.test/")).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(
        answer.body.contains("interop-client"),
        "s_server should report the client certificate: {}",
        answer.body
    );

    let without = Sidecar::start(&toml(false)).await;
    let answer = send(without.proxy(), get("http://s.test/")).await;
    assert_eq!(answer.status, 502, "{answer:?}");
    assert_eq!(answer.header("x-countersign-error"), Some("upstream-tls"));
}

/// An RSA identity made by openssl (PKCS#8 key), accepted by s_server,
/// which is told to trust that self-signed certificate.
#[tokio::test]
async fn an_rsa_client_certificate_from_openssl_works() {
    let server_ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-subj",
            "/CN=rsa-client",
            "-keyout",
            "client-key.pem",
            "-out",
            "client.pem",
        ])
        .current_dir(dir.path())
        .output()
        .expect("openssl is installed");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let (server_cert, server_key) = server_ca.server_cert_pem();
    std::fs::write(dir.path().join("server.pem"), server_cert).unwrap();
    std::fs::write(dir.path().join("server-key.pem"), server_key).unwrap();
    std::fs::copy(
        dir.path().join("client.pem"),
        dir.path().join("clients-ca.pem"),
    )
    .unwrap();
    let server = OpensslServer::start(dir.path());
    let ca_file = server_ca.write_ca(dir.path());
    let toml = format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\n[[route]]\nname = \"s\"\nhosts = [\"s.test\"]\nupstream = \"https://127.0.0.1:{}\"\nsni = \"localhost\"\nca_file = \"{}\"\nclient_cert = \"{2}/client.pem\"\nclient_key = \"{2}/client-key.pem\"\n",
        server.port,
        ca_file.display(),
        dir.path().display()
    );
    let sidecar = Sidecar::start(&toml).await;
    let answer = send(sidecar.proxy(), get("http://s.test/")).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.body.contains("rsa-client"), "{}", answer.body);
}

/// `openssl s_server -www` on a port it picks, killed on drop.
struct OpensslServer {
    child: std::process::Child,
    port: u16,
}

impl OpensslServer {
    fn start(dir: &std::path::Path) -> OpensslServer {
        use std::io::{BufRead, BufReader};
        let mut child = std::process::Command::new("openssl")
            .args(["s_server", "-accept", "0", "-www", "-Verify", "2"])
            .args([
                "-cert",
                "server.pem",
                "-key",
                "server-key.pem",
                "-CAfile",
                "clients-ca.pem",
            ])
            .current_dir(dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("openssl is installed (.ci/run installs it)");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let port = loop {
            let line = lines.next().expect("s_server prints ACCEPT").unwrap();
            if let Some(addr) = line.strip_prefix("ACCEPT ") {
                break addr.rsplit(':').next().unwrap().parse().unwrap();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        OpensslServer { child, port }
    }
}

impl Drop for OpensslServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
