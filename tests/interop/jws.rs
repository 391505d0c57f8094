//! jws-detached as a UK open banking bank checks it: the compiled
//! countersign binary (`countersign run`) signs requests that reach
//! jws/bank.mjs over mutual TLS (node's TLS checks the route's client
//! certificate), a resource server that verifies every `x-jws-signature`
//! with panva's `jose` (flattenedVerify with the detached body, the three
//! UK OB `crit` claims accepted, RFC 7797 b64=false for the versions before
//! 3.1.4) over the exact bytes it received, and refuses it over the body
//! with one bit changed. PS256 on 3.1.10 (stacked after an OAuth2 bearer
//! from oidc-provider, whose token the server's own introspection vouches
//! for), PS256 on 3.1.3 and ES256 on 4.0; bodies with non-ASCII bytes, in
//! memory and spooled to disk past spool_memory, and one past the
//! credential's max_body (413, never sent).

use std::io::{BufRead as _, BufReader, Read as _};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use serde_json::Value;

use crate::integration::harness::*;
use crate::oidc_provider::{key_path, OidcProvider, EC_KEY, RSA_KEY};
use crate::toml_str;

pub(crate) const KID: &str = "interop-kid";
pub(crate) const ISS: &str = "0015800001041RHAAY/interop-ssa";

/// A child process whose stderr is collected for failure messages.
pub(crate) struct Child2 {
    child: Child,
    _stdin: Option<ChildStdin>,
    log: Arc<Mutex<String>>,
}

impl Child2 {
    fn spawn(mut command: Command) -> Child2 {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the process starts");
        let log = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().unwrap();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let stdin = child.stdin.take();
        Child2 {
            child,
            _stdin: stdin,
            log,
        }
    }

    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits up to 30 s for `find` to pick something out of the stderr log.
    fn wait_in_log<T>(&self, what: &str, find: impl Fn(&str) -> Option<T>) -> T {
        eventually_blocking(what, Duration::from_secs(30), || {
            let log = self.log();
            find(&log).ok_or_else(|| format!("its stderr so far:\n{log}"))
        })
    }
}

impl Drop for Child2 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// jws/bank.mjs, listening on HTTPS with `tls` (its certificate, its key
/// and the CA of client certificates, as files); its first stdout line
/// names the port.
pub(crate) fn start_bank(tls: [&Path; 3]) -> (Child2, SocketAddr) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/jws/bank.mjs");
    let mut command = Command::new("node");
    command
        .arg(script)
        .env("TLS_CERT", tls[0])
        .env("TLS_KEY", tls[1])
        .env("CLIENT_CA", tls[2])
        .env("RSA_KEY", key_path(RSA_KEY))
        .env("EC_KEY", key_path(EC_KEY))
        .env(
            "EXPECT",
            serde_json::json!({"kid": KID, "iss": ISS, "tan": "openbanking.org.uk"}).to_string(),
        );
    let mut bank = Child2::spawn(command);
    let stdout = bank.child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let started: Value = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("bank.mjs did not start ({e}): {line:?}\n{}", bank.log()));
    let port = started["port"].as_u64().unwrap() as u16;
    (bank, SocketAddr::from(([127, 0, 0, 1], port)))
}

fn config(dir: &Path, bank: SocketAddr, server: &OidcProvider, ca_file: &Path) -> String {
    let jws = |name: &str, version: &str, alg: &str, key: &str, extra: &str| {
        format!(
            "[credential.{name}]\ntype = \"jws-detached\"\nversion = \"{version}\"\nalgorithm = \"{alg}\"\nprivate_key_file = {}\nkid = \"{KID}\"\nissuer = \"{ISS}\"\nmax_body = \"256KiB\"\n{extra}\n",
            toml_str(&key_path(key).display().to_string())
        )
    };
    let route = |name: &str, credential: &str| {
        format!(
            "[[route]]\nname = \"{name}\"\nhosts = [\"{name}.bank.test\"]\nupstream = \"https://localhost:{}\"\nca_file = {}\nclient_cert = \"client.pem\"\nclient_key = \"client-key.pem\"\ncredential = {credential}\n",
            bank.port(),
            toml_str(&ca_file.display().to_string())
        )
    };
    format!(
        r#"
[proxy]
listen = "127.0.0.1:0"
spool_dir = {dir}
spool_memory = "64KiB"

[credential.bank-oauth]
type = "oauth2"
token_url = {token_url}
grant = "client_credentials"
client_id = "post-client"
client_auth = "client_secret_post"
client_secret = {secret}

{new}
{old}
{ec}
{r_new}
{r_old}
{r_ec}
"#,
        dir = toml_str(&dir.display().to_string()),
        token_url = toml_str(&server.info.token_endpoint),
        secret = toml_str(server.secret("post-client")),
        new = jws(
            "jws-new",
            "3.1.10",
            "PS256",
            RSA_KEY,
            "typ = \"JOSE\"\ninteraction_id = true\nidempotency_key = \"required\""
        ),
        old = jws("jws-old", "3.1.3", "PS256", RSA_KEY, ""),
        ec = jws("jws-ec", "4.0", "ES256", EC_KEY, ""),
        r_new = route("new", "[\"bank-oauth\", \"jws-new\"]"),
        r_old = route("old", "\"jws-old\""),
        r_ec = route("ec", "\"jws-ec\""),
    )
}

/// The compiled binary, serving `config`; returns it and its proxy address.
fn start_countersign(config: &Path) -> (Child2, SocketAddr) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_countersign"));
    command
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "info");
    let process = Child2::spawn(command);
    let addr = process.wait_in_log("`listening role=forward` line", |log| {
        let line = log.lines().find(|l| l.contains("listening role=forward"))?;
        line.rsplit("local=").next()?.trim().parse().ok()
    });
    (process, addr)
}

/// A JSON payment body of at least `len` bytes with non-ASCII text, so the
/// exact bytes matter.
pub(crate) fn payment(len: usize) -> Vec<u8> {
    format!(
        "{{\"Data\":{{\"Initiation\":{{\"RemittanceInformation\":{{\"Unstructured\":\"Zahlung für Café — £12.50\"}},\"Pad\":\"{}\"}}}},\"Risk\":{{}}}}",
        "p".repeat(len)
    )
    .into_bytes()
}

fn post(url: &str, body: Vec<u8>, key: Option<&str>) -> Request<Full<Bytes>> {
    let mut req = Request::post(url).header("content-type", "application/json");
    if let Some(k) = key {
        req = req.header("x-idempotency-key", k);
    }
    req.body(Full::new(Bytes::from(body))).unwrap()
}

#[tokio::test]
#[ignore = "interop: needs `npm ci` in tests/interop/oidc-provider (jose comes with it); run by .ci/run"]
async fn jose_verifies_every_detached_signature_countersign_sends() {
    let server = OidcProvider::start();
    let dir = tempfile::tempdir().unwrap();
    let (server_ca, clients) = (TestCa::new(), TestCa::new());
    let ca_file = server_ca.write_ca(dir.path());
    let (cert, key) = server_ca.server_cert_pem();
    let (client, client_key) = clients.client_cert("tpp-transport", 90);
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let tls = [
        file("bank.pem", &cert),
        file("bank-key.pem", &key),
        file("clients-ca.pem", &clients.ca_pem),
    ];
    file("client.pem", &client);
    file("client-key.pem", &client_key);
    let (bank, bank_addr) = start_bank([&tls[0], &tls[1], &tls[2]]);
    let path = dir.path().join("proxy.toml");
    std::fs::write(
        &path,
        with_free_admin_port(&config(dir.path(), bank_addr, &server, &ca_file)),
    )
    .unwrap();
    let (countersign, proxy) = start_countersign(&path);
    let context = || format!("countersign:\n{}\nbank:\n{}", countersign.log(), bank.log());

    // (route, b64=false expected, alg)
    let routes = [
        ("new", false, "PS256"),
        ("old", true, "PS256"),
        ("ec", false, "ES256"),
    ];
    let mut verdicts = Vec::new();
    for (route, unencoded, alg) in routes {
        // In memory, then past spool_memory (64 KiB): on disk.
        for len in [0usize, 100 << 10] {
            let body = payment(len);
            let url = format!("http://{route}.bank.test/open-banking/v3.1/pisp/domestic-payments");
            let answer = send(proxy, post(&url, body.clone(), Some("key-1"))).await;
            assert_eq!(
                answer.status,
                200,
                "{route} {len}: {answer:?}\n{}",
                context()
            );
            let verdict: Value = serde_json::from_str(&answer.body).unwrap();
            assert_eq!(verdict["ok"], true, "{verdict}");
            assert_eq!(verdict["control"], "refused", "{verdict}");
            assert_eq!(verdict["peer"], "tpp-transport", "{verdict}");
            assert_eq!(verdict["length"], body.len(), "{verdict}");
            let header = &verdict["header"];
            assert_eq!(header["alg"], alg, "{verdict}");
            assert_eq!(header.get("b64").is_some(), unencoded, "{route}: {header}");
            assert_eq!(verdict["idempotency_key"], "key-1");
            verdicts.push(verdict);
        }
    }

    // The stacked route: the bearer is a token oidc-provider issued to the
    // client, typ is JOSE, and an interaction id was generated.
    let stacked = &verdicts[0];
    assert_eq!(stacked["header"]["typ"], "JOSE");
    let token = stacked["authorization"]
        .as_str()
        .and_then(|a| a.strip_prefix("Bearer "))
        .unwrap_or_else(|| panic!("a bearer token: {stacked}"));
    server.assert_active(token, "post-client").await;
    assert_eq!(stacked["interaction_id"].as_str().map(str::len), Some(36));
    assert_eq!(
        verdicts[2]["authorization"],
        Value::Null,
        "only `new` stacks oauth2"
    );

    // Past the credential's max_body (256 KiB): 413 from countersign.
    let answer = send(
        proxy,
        post(
            "http://ec.bank.test/open-banking/v3.1/pisp/domestic-payments",
            payment(300 << 10),
            None,
        ),
    )
    .await;
    assert_eq!(answer.status, 413, "{answer:?}");
    assert_eq!(answer.header("x-countersign-error"), Some("body-too-large"));
    assert!(answer.body.contains("`jws-ec`"), "{}", answer.body);
}
