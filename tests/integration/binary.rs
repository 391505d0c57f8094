//! The compiled binary as a user runs it: `check`, `sign`, `run` with the
//! shipped example, a 200 MiB upload in bounded memory, SIGHUP.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;

use crate::harness::*;

const BIN: &str = env!("CARGO_BIN_EXE_countersign");

/// A running `countersign run`, its stderr read line by line.
struct Process {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Process {
    fn start(config: &Path, env: &[(&str, &str)]) -> Process {
        Process::start_with(config, &[], env)
    }

    fn start_with(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Process {
        let mut child = Command::new(BIN)
            .args(["run", "--config"])
            .arg(config)
            .args(args)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Process {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (up to 20s) for a log line containing `needle`.
    fn wait_for(&mut self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no log line with {needle:?}; saw:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// The address from the `listening` line of `role`.
    fn listening(&mut self, role: &str) -> SocketAddr {
        let line = self.wait_for(&format!("listening role={role}"));
        let addr = line.rsplit("local=").next().unwrap().trim();
        addr.parse()
            .unwrap_or_else(|_| panic!("no address in {line:?}"))
    }

    /// Waits (up to 30s) for the process to exit; returns its status and
    /// every log line it wrote.
    fn wait_exit(&mut self) -> (std::process::ExitStatus, Vec<String>) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
                    self.seen.push(line);
                }
                return (status, self.seen.clone());
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the process did not exit"
            );
            while let Ok(line) = self.lines.try_recv() {
                self.seen.push(line);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Peak resident memory (VmHWM) in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_config(dir: &Path, toml: &str) -> std::path::PathBuf {
    let path = dir.join("proxy.toml");
    std::fs::write(&path, with_free_admin_port(toml)).unwrap();
    path
}

#[test]
fn check_lists_every_problem_and_exits_64() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        r#"
[proxy]
unmatched = "maybe"
max_body = "12 parsecs"

[credential.p]
type = "paypay-opa"
api_key = "${env:COUNTERSIGN_TEST_SURELY_UNSET}"
api_secret = "s"

[[route]]
name = "a"
hosts = ["a.test"]
upstream = "ftp://a.test"
credential = "nope"

[[route]]
name = "b"
hosts = ["a.test"]
upstream = "https://a.test"
"#,
    );
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for path in [
        "proxy.unmatched:",
        "proxy.max_body:",
        "credential.p.api_key:",
        "route[0].upstream:",
        "route[0].credential:",
    ] {
        assert!(stderr.contains(path), "missing {path} in:\n{stderr}");
    }
}

#[test]
fn the_shipped_example_passes_check() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("proxy.toml.example");
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&example)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_shipped_example_starts_and_serves() {
    // The example as shipped, with its fixed ports swapped for free ones.
    let example =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("proxy.toml.example"))
            .unwrap();
    let toml = example
        .replace("127.0.0.1:3128", "127.0.0.1:0")
        .replace("127.0.0.1:9001", "127.0.0.1:0")
        .replace("127.0.0.1:9901", "127.0.0.1:0");
    let dir = tempfile::tempdir().unwrap();
    let mut p = Process::start(&write_config(dir.path(), &toml), &[]);
    let proxy = p.listening("forward");
    p.wait_for("countersign is serving");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let answer = rt.block_on(send(proxy, get("http://not-routed.test/")));
    assert_eq!(answer.status, 403);
}

#[test]
fn sign_reproduces_the_published_paypay_example() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        r#"
[credential.paypay]
type = "paypay-opa"
api_key = "APIKeyGenerated"
api_secret = "APIKeySecretGenerated"

[[route]]
name = "paypay"
hosts = ["api.paypay.ne.jp"]
upstream = "https://api.paypay.ne.jp"
credential = "paypay"
"#,
    );
    let body = dir.path().join("body.json");
    std::fs::write(
        &body,
        r#"{"sampleRequestBodyKey1":"sampleRequestBodyValue1","sampleRequestBodyKey2":"sampleRequestBodyValue2"}"#,
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["sign", "--config"])
        .arg(&path)
        .args([
            "--route",
            "paypay",
            "--method",
            "POST",
            "--url",
            "http://api.paypay.ne.jp/v2/codes",
        ])
        .args([
            "-H",
            "Content-Type: application/json;charset=UTF-8;",
            "--body-file",
        ])
        .arg(&body)
        .args(["--nonce", "acd028", "--epoch", "1579843452"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines.contains(
        &"authorization: hmac OPA-Auth:APIKeyGenerated:NW1jKIMnzR7tEhMWtcJcaef+nFVBt7jjAGcVuxHhchc=:acd028:1579843452:1j0FnY4flNp5CtIKa7x9MQ=="
    ), "{stdout}");
    assert!(lines.contains(&"host: api.paypay.ne.jp"), "{stdout}");
    assert!(lines.contains(&"content-length: 101"), "{stdout}");
    assert_eq!(
        lines.len(),
        3,
        "only added or changed headers are printed: {stdout}"
    );
}

#[test]
fn a_bad_config_exits_64_before_binding_anything() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = holder.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!("[proxy]\nlisten = \"{taken}\"\nunmatched = \"sometimes\"\n");
    let out = Command::new(BIN)
        .args(["run", "--config"])
        .arg(write_config(dir.path(), &toml))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("proxy.unmatched"), "{stderr}");
    assert!(!stderr.contains("cannot listen"), "{stderr}");
}

#[test]
fn sighup_reloads_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "[proxy]\nlisten = \"127.0.0.1:0\"\n");
    let mut p = Process::start(&path, &[]);
    p.wait_for("countersign is serving");
    p.signal("-HUP");
    p.wait_for("SIGHUP: reloading config");
    p.wait_for("config reloaded generation=2");
}

/// 200 MiB through a body-signing route with max_body raised: the body is
/// spooled to disk, the signature verifies, and the proxy's peak memory stays
/// far below the body size. Also: HTTP_PROXY in countersign's environment
/// points at a dead port and must be ignored.
#[test]
fn a_200_mib_upload_passes_in_bounded_memory() {
    const SIZE: u64 = 200 << 20;
    const CHUNK: usize = 256 << 10;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let upstream = rt.block_on(Upstream::http());
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        r#"
[proxy]
listen = "127.0.0.1:0"
max_body = "256MiB"
spool_memory = "1MiB"
spool_dir = "{spool}"

[credential.paypay]
type = "paypay-opa"
api_key = "k"
api_secret = "s"

[[route]]
name = "paypay"
hosts = ["api.paypay.test"]
upstream = "{up}"
credential = "paypay"
"#,
        spool = dir.path().display(),
        up = upstream.http_url()
    );
    let dead_proxy = format!("http://{dead}");
    let env = [
        ("HTTP_PROXY", dead_proxy.as_str()),
        ("http_proxy", dead_proxy.as_str()),
        ("ALL_PROXY", dead_proxy.as_str()),
    ];
    let mut p = Process::start(&write_config(dir.path(), &toml), &env);
    let proxy = p.listening("forward");

    let answer = rt.block_on(async {
        let (tx, body) = channel_body();
        let req = http::Request::post("http://api.paypay.test/v2/upload")
            .header("content-type", "application/octet-stream")
            .header("content-length", SIZE)
            .body(body)
            .unwrap();
        let exchange = tokio::spawn(async move { try_send(proxy, req).await });
        let chunk = Bytes::from(vec![b'z'; CHUNK]);
        for _ in 0..(SIZE / CHUNK as u64) {
            tx.send(Ok(chunk.clone())).await.unwrap();
        }
        drop(tx);
        exchange.await.unwrap().unwrap()
    });
    assert_eq!(answer.status, 200, "{answer:?}");
    let got = upstream.last();
    assert_eq!(got.body_len, SIZE);
    verify_opa(&got, "k", "s").unwrap();
    let peak = p.peak_rss_kib();
    assert!(peak < 64 * 1024, "peak RSS {peak} KiB for a 200 MiB body");
    eprintln!("countersign peak RSS for a 200 MiB spooled upload: {peak} KiB");
}

#[test]
fn check_names_the_file_of_a_mismatched_client_key() {
    let clients = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let (cert, _) = clients.client_cert("one", 90);
    let (_, other_key) = clients.client_cert("two", 90);
    std::fs::write(dir.path().join("transport.pem"), cert).unwrap();
    std::fs::write(dir.path().join("transport.key"), other_key).unwrap();
    let path = write_config(
        dir.path(),
        "[[route]]\nname = \"ob\"\nhosts = [\"ob.test\"]\nupstream = \"https://ob.test\"\nclient_cert = \"transport.pem\"\nclient_key = \"transport.key\"\n",
    );
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("route[0].client_cert"), "{stderr}");
    assert!(stderr.contains("transport.key"), "{stderr}");
    assert!(stderr.contains("does not match"), "{stderr}");
}

#[test]
fn ca_init_writes_a_private_key_and_refuses_to_overwrite() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("ca");
    let out = Command::new(BIN)
        .args(["ca", "init", "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("NODE_EXTRA_CA_CERTS") && stdout.contains("REQUESTS_CA_BUNDLE"),
        "{stdout}"
    );
    let mode = std::fs::metadata(out_dir.join("ca-key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // The pair loads as an interception CA.
    let toml = "[intercept]\nca_cert = \"ca/ca.pem\"\nca_key = \"ca/ca-key.pem\"\n";
    countersign::config::parse(toml, dir.path()).expect("the new CA loads");
    let before = std::fs::read(out_dir.join("ca-key.pem")).unwrap();
    let again = Command::new(BIN)
        .args(["ca", "init", "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("refusing to overwrite"));
    assert_eq!(std::fs::read(out_dir.join("ca-key.pem")).unwrap(), before);
}

/// SIGTERM while a slow upload is in flight: no new connections are taken,
/// the upload finishes and is answered, then the process exits 0.
#[test]
fn sigterm_lets_a_slow_upload_finish_then_exits_zero() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let upstream = rt.block_on(Upstream::http());
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\ndrain_timeout = \"20s\"\n[credential.k]\ntype = \"header\"\nbearer = \"t\"\n[[route]]\nname = \"r\"\nhosts = [\"api.test\"]\nupstream = \"{}\"\ncredential = \"k\"\n",
        upstream.http_url()
    );
    let mut p = Process::start(&write_config(dir.path(), &toml), &[]);
    let proxy = p.listening("forward");
    p.wait_for("countersign is serving");
    let (tx, body) = channel_body();
    let req = http::Request::post("http://api.test/upload")
        .header("content-type", "application/octet-stream")
        .body(body)
        .unwrap();
    let exchange = rt.spawn(async move { try_send(proxy, req).await });
    rt.block_on(tx.send(Ok(Bytes::from_static(b"first half;"))))
        .unwrap();
    // The upload is in flight once countersign has forwarded its head. (A
    // connection whose request head has not been read yet is idle, and a
    // draining server may close it.)
    rt.block_on(eventually("the upload reaches the upstream", || {
        upstream.connections() > 0
    }));

    p.signal("-TERM");
    p.wait_for("shutting down");
    // "shutting down" is logged as the drain starts; the listener is closed
    // once its accept loop says so.
    while !p.wait_for("stopped listening").contains("forward") {}
    assert!(
        std::net::TcpStream::connect(proxy).is_err() || {
            // The listener may take a moment to close; a new request must not be served.
            let late = rt.block_on(try_send(proxy, get("http://api.test/late")));
            late.is_err()
        }
    );
    rt.block_on(tx.send(Ok(Bytes::from_static(b"second half"))))
        .unwrap();
    drop(tx);
    let answer = rt
        .block_on(exchange)
        .unwrap()
        .expect("the upload is answered");
    assert_eq!(answer.status, 200);
    assert_eq!(upstream.last().body, b"first half;second half");
    let (status, _) = p.wait_exit();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn json_logs_are_one_object_per_line_with_request_fields() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let upstream = rt.block_on(Upstream::http());
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\n[[route]]\nname = \"r\"\nhosts = [\"api.test\"]\nupstream = \"{}\"\n",
        upstream.http_url()
    );
    let mut p = Process::start_with(
        &write_config(dir.path(), &toml),
        &["--log-format", "json"],
        &[],
    );
    let line = p.wait_for("\"listening\"");
    let listening: serde_json::Value = serde_json::from_str(&line).unwrap();
    let proxy: SocketAddr = match listening["role"].as_str() {
        Some("forward proxy") => listening["local"].as_str().unwrap().parse().unwrap(),
        _ => {
            let line = p.wait_for("forward proxy");
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            v["local"].as_str().unwrap().parse().unwrap()
        }
    };
    let answer = rt.block_on(send(
        proxy,
        post("http://api.test/x", "text/plain", "12345"),
    ));
    assert_eq!(answer.status, 200);
    let line = p.wait_for("\"request\"");
    let record: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(record["route"], "r");
    assert_eq!(record["method"], "POST");
    assert_eq!(record["host"], "api.test");
    assert_eq!(record["status"], 200);
    assert_eq!(record["bytes_in"], 5);
    assert_eq!(
        record["upstream"],
        format!("127.0.0.1:{}", upstream.addr.port())
    );
    assert!(record["duration_ms"].is_u64());
    for seen in &p.seen {
        serde_json::from_str::<serde_json::Value>(seen)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {seen}"));
    }
}

/// A full run at `trace` level (PayPay HMAC, header credentials, mutual
/// TLS, an intercepted HTTPS_PROXY request, a reload) must not write any
/// secret, in any form, to the log.
#[test]
fn trace_logs_never_contain_a_secret() {
    const PAYPAY_SECRET: &str = "paypay-secret-Zq81";
    const BEARER: &str = "bearer-token-Xv55";
    const PASSWORD: &str = "basic-password-Kp02";
    const CLIENT_SECRET: &str = "client-secret-Rw73";
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (tokens, api) = rt.block_on(async {
        use crate::oauth2::{Api, ClientCheck, TokenServer};
        let tokens =
            TokenServer::start(&[("c", ClientCheck::Basic(CLIENT_SECRET.into()))], 300, &[]).await;
        let api = Api::start(&tokens).await;
        (tokens, api)
    });
    let (server_ca, clients) = (TestCa::new(), TestCa::new());
    let plain = rt.block_on(Upstream::http());
    let mtls = rt.block_on(Upstream::https_mtls(&server_ca, &clients));
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = clients.client_cert("trace-client", 30);
    std::fs::write(dir.path().join("client.pem"), &cert).unwrap();
    std::fs::write(dir.path().join("client-key.pem"), &key).unwrap();
    std::fs::write(dir.path().join("paypay_secret"), PAYPAY_SECRET).unwrap();
    let ca_file = server_ca.write_ca(dir.path());
    countersign::pki::ca::init(&dir.path().join("ca")).unwrap();
    let app_ca = std::fs::read_to_string(dir.path().join("ca/ca.pem")).unwrap();
    let toml = format!(
        r#"
[proxy]
listen = "127.0.0.1:0"
[intercept]
ca_cert = "ca/ca.pem"
ca_key = "ca/ca-key.pem"
[credential.paypay]
type = "paypay-opa"
api_key = "key-1"
api_secret = "${{file:paypay_secret}}"
[credential.bearer]
type = "header"
bearer = "{BEARER}"
[credential.basic]
type = "header"
basic = {{ username = "svc", password = "{PASSWORD}" }}
[credential.oauth]
type = "oauth2"
token_url = "{token_url}"
grant = "client_credentials"
client_id = "c"
client_secret = "{CLIENT_SECRET}"
[[route]]
name = "oauth"
hosts = ["oauth.test"]
upstream = "{api}"
credential = "oauth"
[[route]]
name = "paypay"
hosts = ["paypay.test"]
upstream = "{plain}"
credential = "paypay"
[[route]]
name = "bearer"
hosts = ["bearer.test"]
upstream = "{plain}"
credential = "bearer"
[[route]]
name = "basic-mtls"
hosts = ["bank.test"]
upstream = "{mtls}"
ca_file = "{ca}"
client_cert = "client.pem"
client_key = "client-key.pem"
credential = "basic"
"#,
        plain = plain.http_url(),
        mtls = mtls.https_url(),
        ca = ca_file.display(),
        token_url = tokens.url(),
        api = api.url()
    );
    let config = write_config(dir.path(), &toml);
    let mut p = Process::start(&config, &[("RUST_LOG", "trace")]);
    let proxy = p.listening("forward");
    rt.block_on(async {
        assert_eq!(
            send(
                proxy,
                post("http://paypay.test/v2/codes", "application/json", "{}")
            )
            .await
            .status,
            200
        );
        assert_eq!(send(proxy, get("http://bearer.test/")).await.status, 200);
        assert_eq!(send(proxy, get("http://bank.test/")).await.status, 200);
        assert_eq!(send(proxy, get("http://oauth.test/")).await.status, 200);
        let tunnel = connect_tunnel(proxy, "bearer.test:443").await.unwrap();
        let mut req = get("/inside");
        req.headers_mut()
            .insert("host", "bearer.test".parse().unwrap());
        assert_eq!(
            https_over(tunnel, "bearer.test", &app_ca, req)
                .await
                .unwrap()
                .status,
            200
        );
    });
    assert_eq!(mtls.last().peer.as_deref(), Some("trace-client"));
    // A reload re-reads every secret too.
    std::fs::write(
        &config,
        std::fs::read_to_string(&config).unwrap() + "\n# touched\n",
    )
    .unwrap();
    p.wait_for("config reloaded");
    p.signal("-TERM");
    let (_, lines) = p.wait_exit();
    let log = lines.join("\n");
    assert!(
        log.contains("TRACE") || log.contains("DEBUG"),
        "the run logged at trace level"
    );
    let basic = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("svc:{PASSWORD}"),
    );
    let key_body = key.lines().nth(1).unwrap().to_string();
    let issued = tokens.issued();
    assert!(!issued.is_empty());
    let fixed = [
        PAYPAY_SECRET,
        BEARER,
        PASSWORD,
        CLIENT_SECRET,
        basic.as_str(),
        key_body.as_str(),
    ];
    for secret in fixed
        .iter()
        .copied()
        .chain(issued.iter().map(String::as_str))
    {
        assert!(!log.contains(secret), "the log holds a secret ({secret})");
    }
}

/// `countersign token` fetches a client_credentials token and shows its
/// state; the token only with --reveal. A rotating grant is only inspected.
#[test]
fn token_shows_state_and_reveals_only_when_asked() {
    use crate::oauth2::{ClientCheck, TokenServer};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tokens = rt.block_on(TokenServer::start(
        &[("c", ClientCheck::Basic("s".into()))],
        300,
        &["rt-seed"],
    ));
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[credential.cc]\ntype = \"oauth2\"\ntoken_url = \"{0}\"\ngrant = \"client_credentials\"\nclient_id = \"c\"\nclient_secret = \"s\"\nscope = \"accounts\"\n[credential.rt]\ntype = \"oauth2\"\ntoken_url = \"{0}\"\ngrant = \"refresh_token\"\nclient_id = \"c\"\nclient_secret = \"s\"\nrefresh_token = \"rt-seed\"\ntoken_store = \"rt.json\"\n",
        tokens.url()
    );
    let config = write_config(dir.path(), &toml);
    let run = |args: &[&str]| {
        Command::new(BIN)
            .args(["token", "--config"])
            .arg(&config)
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["--credential", "cc"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("state: valid") && text.contains("scope: accounts"),
        "{text}"
    );
    assert!(
        text.contains("expires in: 29") || text.contains("expires in: 300s"),
        "{text}"
    );
    for issued in tokens.issued() {
        assert!(
            !text.contains(&issued),
            "the token was shown without --reveal"
        );
    }
    let out = run(&["--credential", "cc", "--reveal"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let last = tokens.issued().last().unwrap().clone();
    assert!(text.contains(&format!("token: {last}")), "{text}");

    let before = tokens.request_count();
    let out = run(&["--credential", "rt", "--reveal"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("not fetched"), "{text}");
    assert_eq!(
        tokens.request_count(),
        before,
        "a rotating grant must not be fetched"
    );
    let out = run(&["--credential", "nope"]);
    assert_eq!(out.status.code(), Some(2));
}

/// `countersign token` on an issued-key credential asks the issuer for a
/// key and shows its lifetime; the key itself, as issued, only with --reveal.
#[test]
fn token_fetches_an_issued_key_and_reveals_it_only_when_asked() {
    use crate::issued_key::{Issuer, Mode, SID, SPW};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let issuer = rt.block_on(Issuer::start(Mode::Text, SID, SPW, None));
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[credential.amivoice]\ntype = \"issued-key\"\nissue_url = \"{}\"\nform = {{ sid = \"{SID}\", spw = \"{SPW}\", epi = \"300000\" }}\nlifetime = \"300s\"\nquery = \"authorization\"\n",
        issuer.url()
    );
    let config = write_config(dir.path(), &toml);
    let run = |args: &[&str]| {
        Command::new(BIN)
            .args(["token", "--config"])
            .arg(&config)
            .args(["--credential", "amivoice"])
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("(issued-key)") && text.contains("state: valid"),
        "{text}"
    );
    // 300 s less the default 5 s margin.
    assert!(
        text.contains("expires in: 29"),
        "the key's usable life: {text}"
    );
    let first = issuer.keys();
    assert_eq!(first.len(), 1, "one key was issued");
    assert!(
        !text.contains(&first[0]),
        "the key was shown without --reveal"
    );

    let out = run(&["--reveal"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let last = issuer.keys().last().unwrap().clone();
    // As issued: `+`, `/` and `=` are not form-encoded here.
    assert!(text.contains(&format!("token: {last}\n")), "{text}");
}
