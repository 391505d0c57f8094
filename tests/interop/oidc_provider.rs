//! panva's oidc-provider (pinned in oidc-provider/package.json, set up by
//! oidc-provider/server.mjs) run as a child process, and the two things a
//! test asks it directly: RFC 7662 introspection ("did you issue this token,
//! and is it still good?") and a raw refresh-token request (to show what
//! the server does with a spent refresh token).

use std::io::{BufRead as _, BufReader, Read as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use serde_json::Value;

use crate::integration::harness::{send, Answer};

/// What server.mjs prints once it serves.
#[derive(Debug, serde::Deserialize)]
pub struct Started {
    pub issuer: String,
    pub token_endpoint: String,
    pub introspection_endpoint: String,
    /// RFC 7009 (countersign revokes a session's refresh token there).
    pub revocation_endpoint: String,
    pub events_endpoint: String,
    /// Minted for `refresh-client` at start, as if a person had consented.
    pub refresh_token: String,
    /// Minted for `fleet-client` (3 s access tokens) likewise.
    pub fleet_refresh_token: String,
    /// Minted for `refresh-client` likewise: a user session's grant.
    pub session_refresh_token: String,
    pub resource: String,
    pub secrets: std::collections::HashMap<String, String>,
    /// fapi-server.mjs with certificates: its mTLS host
    /// (`https://localhost:PORT`, the `mtls_endpoint_aliases`); else empty.
    #[serde(default)]
    pub mtls_base: String,
}

pub struct OidcProvider {
    child: Child,
    /// Held open: server.mjs exits when it closes, even if we never kill it.
    _stdin: ChildStdin,
    stderr: Arc<Mutex<String>>,
    pub info: Started,
    pub addr: SocketAddr,
}

pub fn package_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/oidc-provider")
}

/// The PKCS#8 test keys the jwt clients are registered with (public half).
pub fn key_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/integration/oauth2")
        .join(name)
}

pub const RSA_KEY: &str = "test-rsa-key.pem";
pub const EC_KEY: &str = "test-ec-key.pem";

impl OidcProvider {
    pub fn start() -> OidcProvider {
        OidcProvider::spawn("server.mjs", &[])
    }

    /// The FAPI-style instance (fapi-server.mjs), whose clients are
    /// registered with `redirect_uri`.
    pub fn start_fapi(redirect_uri: &str) -> OidcProvider {
        OidcProvider::spawn("fapi-server.mjs", &[("REDIRECT_URI", redirect_uri)])
    }

    /// The FAPI-style instance, serving a JWKS of other keys under its
    /// own kids: every ID token it issues fails its signature check.
    pub fn start_fapi_wrong_jwks(redirect_uri: &str) -> OidcProvider {
        OidcProvider::spawn(
            "fapi-server.mjs",
            &[("REDIRECT_URI", redirect_uri), ("WRONG_JWKS", "1")],
        )
    }

    /// The FAPI-style instance with its mTLS host (fapi-server.mjs with
    /// certificates): `env` names the files and client DN as for
    /// `start_mtls`. The issuer stays on plain HTTP, so `events`,
    /// `introspect` and the browser reach it as they reach `start_fapi`'s.
    pub fn start_fapi_mtls(redirect_uri: &str, env: &[(&str, &str)]) -> OidcProvider {
        let mut env = env.to_vec();
        env.push(("REDIRECT_URI", redirect_uri));
        OidcProvider::spawn("fapi-server.mjs", &env)
    }

    /// The mutual-TLS instance (mtls-server.mjs), over HTTPS; `env` names
    /// its certificate files and client DN (see its usage line). Its
    /// endpoints are HTTPS only: `events`, `post` and `introspect` (plain
    /// HTTP) do not reach it; tests/interop/mtls.rs introspects over TLS.
    pub fn start_mtls(env: &[(&str, &str)]) -> OidcProvider {
        OidcProvider::spawn("mtls-server.mjs", env)
    }

    fn spawn(script: &str, env: &[(&str, &str)]) -> OidcProvider {
        let dir = package_dir();
        assert!(
            dir.join("node_modules/oidc-provider/package.json").exists(),
            "oidc-provider is not installed: run `npm ci --prefix tests/interop/oidc-provider` first"
        );
        let mut child = Command::new("node")
            .arg(script)
            .envs(env.iter().copied())
            .current_dir(&dir)
            .env("RSA_KEY", key_path(RSA_KEY))
            .env("EC_KEY", key_path(EC_KEY))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("node runs (install Node.js 18 or later)");
        let stdin = child.stdin.take().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().unwrap();
        let log = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                log.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let info: Started = match serde_json::from_str(&line) {
            Ok(info) => info,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{script} did not start ({e}): stdout {line:?}, stderr:\n{}",
                    stderr.lock().unwrap()
                );
            }
        };
        let addr = match info.issuer.strip_prefix("https://localhost:") {
            Some(port) => port
                .parse()
                .ok()
                .map(|p| SocketAddr::from(([127, 0, 0, 1], p))),
            None => info
                .issuer
                .strip_prefix("http://")
                .and_then(|a| a.parse().ok()),
        }
        .expect("the issuer is http://127.0.0.1:PORT or https://localhost:PORT");
        OidcProvider {
            child,
            _stdin: stdin,
            stderr,
            info,
            addr,
        }
    }

    /// What the server wrote on stderr (warnings, and each token endpoint
    /// event): for failure messages.
    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Every token endpoint event so far, in order (see server.mjs): each
    /// has `event` (`grant.success`, `grant.error`, `grant.revoked`, ...),
    /// `client_id` and `grant_type`; errors have `error` and `error_detail`.
    pub async fn events(&self) -> Vec<Value> {
        let path = self
            .info
            .events_endpoint
            .strip_prefix(&self.info.issuer)
            .expect("the endpoint is on the issuer");
        let req = Request::get(path)
            .header("host", self.addr.to_string())
            .body(Full::new(Bytes::new()))
            .unwrap();
        let answer = send(self.addr, req).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        serde_json::from_str(&answer.body).unwrap()
    }

    /// How many tokens the server issued to `client_id` with `grant_type`.
    pub async fn grants(&self, grant_type: &str, client_id: &str) -> usize {
        self.events()
            .await
            .iter()
            .filter(|e| {
                e["event"] == "grant.success"
                    && e["grant_type"] == grant_type
                    && e["client_id"] == client_id
            })
            .count()
    }

    /// Every token request the server refused, as one string per refusal.
    pub async fn refusals(&self) -> Vec<String> {
        self.events()
            .await
            .into_iter()
            .filter(|e| e["event"] != "grant.success")
            .map(|e| e.to_string())
            .collect()
    }

    pub fn secret(&self, client_id: &str) -> &str {
        &self.info.secrets[client_id]
    }

    /// A form POST to a path of the server, authenticated with HTTP Basic.
    pub async fn post(&self, path: &str, client_id: &str, form: &[(&str, &str)]) -> Answer {
        let pair = format!(
            "{}:{}",
            form_encode(client_id),
            form_encode(self.secret(client_id))
        );
        let basic = base64::engine::general_purpose::STANDARD.encode(pair);
        let body = form
            .iter()
            .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let req = Request::post(path)
            .header("host", self.addr.to_string())
            .header("authorization", format!("Basic {basic}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        send(self.addr, req).await
    }

    /// RFC 7662 introspection as client `introspector`: the server's own
    /// word on a token (access or refresh).
    pub async fn introspect(&self, token: &str) -> Value {
        let path = self
            .info
            .introspection_endpoint
            .strip_prefix(&self.info.issuer)
            .expect("the endpoint is on the issuer");
        let answer = self.post(path, "introspector", &[("token", token)]).await;
        assert_eq!(answer.status, 200, "introspection: {answer:?}");
        serde_json::from_str(&answer.body).unwrap()
    }

    /// Asserts the server issued `token` to `client_id` and still honours it.
    pub async fn assert_active(&self, token: &str, client_id: &str) -> Value {
        let seen = self.introspect(token).await;
        assert_eq!(seen["active"], true, "{seen}\n{}", self.log());
        assert_eq!(seen["client_id"], client_id, "{seen}");
        seen
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// RFC 6749 Appendix B, written here independently of countersign's.
pub fn form_encode(text: &str) -> String {
    let mut out = String::new();
    for &b in text.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
