//! A real key issuer and API on 127.0.0.1:0, shaped like AmiVoice's. The
//! issuer takes POSTs only, wants sid/spw form-encoded in the body (and
//! refuses them in the query) or `Authorization: Bearer <master key>`,
//! issues a key valid for `epi` milliseconds (default 30000), as plain text
//! or JSON, and can be told to fail or to hold requests. The API accepts
//! only live keys, from the `authorization` query parameter or a header.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::handler_server::{form_decode, header, serve};
use crate::harness::gate::Gate;
use base64::Engine as _;
use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

/// What the issuer answers with.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Text,
    /// `{"key": ..., "expires_in": seconds}`
    Json,
}

/// One request the issuer received, decoded.
#[derive(Clone, Debug)]
pub struct IssueRequest {
    pub method: http::Method,
    pub query: Option<String>,
    pub content_type: Option<String>,
    pub authorization: Option<String>,
    pub form: HashMap<String, String>,
}

struct State {
    mode: Mode,
    sid: String,
    spw: String,
    master: Option<String>,
    requests: Vec<IssueRequest>,
    /// Key -> end of validity.
    keys: Vec<(String, Instant)>,
    revoked: HashSet<String>,
    down: bool,
}

pub struct Issuer {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    gate: Gate,
}

impl Issuer {
    /// Accepts `sid`/`spw`, and `master` as a Bearer key when given.
    pub async fn start(mode: Mode, sid: &str, spw: &str, master: Option<&str>) -> Issuer {
        let state = Arc::new(Mutex::new(State {
            mode,
            sid: sid.into(),
            spw: spw.into(),
            master: master.map(Into::into),
            requests: Vec::new(),
            keys: Vec::new(),
            revoked: HashSet::new(),
            down: false,
        }));
        let gate = Gate::new();
        let (s, g) = (Arc::clone(&state), gate.clone());
        let addr = serve(None, move |req| issue(req, Arc::clone(&s), g.clone())).await;
        Issuer { addr, state, gate }
    }

    pub fn url(&self) -> String {
        format!(
            "http://127.0.0.1:{}/issue_service_authorization",
            self.addr.port()
        )
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    pub fn requests(&self) -> Vec<IssueRequest> {
        self.with(|s| s.requests.clone())
    }

    pub fn request_count(&self) -> usize {
        self.with(|s| s.requests.len())
    }

    pub fn keys(&self) -> Vec<String> {
        self.with(|s| s.keys.iter().map(|(k, _)| k.clone()).collect())
    }

    pub fn set_down(&self, down: bool) {
        self.with(|s| s.down = down);
    }

    pub fn set_spw(&self, spw: &str) {
        self.with(|s| s.spw = spw.into());
    }

    pub fn revoke(&self, key: &str) {
        self.with(|s| s.revoked.insert(key.into()));
    }

    pub fn expired(&self, key: &str) -> bool {
        self.with(|s| {
            s.keys
                .iter()
                .any(|(k, end)| k == key && Instant::now() >= *end)
        })
    }

    /// Issue requests from now on wait (counted on arrival) until `release`.
    pub fn hold(&self) {
        self.gate.hold();
    }

    pub fn release(&self) {
        self.gate.release();
    }

    fn accepts(state: &State, key: &str) -> bool {
        !state.revoked.contains(key)
            && state
                .keys
                .iter()
                .any(|(k, end)| k == key && Instant::now() < *end)
    }
}

/// Where the API looks for the key.
#[derive(Clone, Copy)]
pub enum KeyIn {
    /// The `authorization` query parameter, as AmiVoice reads it.
    Query,
    /// `Authorization: Bearer <key>`.
    Bearer,
}

/// What the API saw: the request URI, its Authorization header, the key it
/// found, and the status it answered.
#[derive(Clone, Debug)]
pub struct Seen {
    pub uri: Uri,
    pub authorization: Option<String>,
    pub key: Option<String>,
    pub status: u16,
}

pub struct Api {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Api {
    pub async fn start(issuer: &Issuer, key_in: KeyIn) -> Api {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (log, state) = (Arc::clone(&seen), Arc::clone(&issuer.state));
        let addr = serve(None, move |req: Request<Incoming>| {
            let (log, state) = (Arc::clone(&log), Arc::clone(&state));
            async move {
                let authorization = header(&req, "authorization");
                let key = match key_in {
                    KeyIn::Query => {
                        form_decode(req.uri().query().unwrap_or("")).remove("authorization")
                    }
                    KeyIn::Bearer => authorization
                        .as_deref()
                        .and_then(|a| a.strip_prefix("Bearer "))
                        .map(Into::into),
                };
                let ok = key
                    .as_deref()
                    .is_some_and(|k| Issuer::accepts(&state.lock().unwrap(), k));
                let uri = req.uri().clone();
                let _ = req.into_body().collect().await;
                let status = if ok { 200 } else { 401 };
                log.lock().unwrap().push(Seen {
                    uri,
                    authorization,
                    key,
                    status,
                });
                reply(status, if ok { "recognized" } else { "invalid appkey" })
            }
        })
        .await;
        Api { addr, seen }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.addr.port())
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn last_key(&self) -> String {
        let seen = self.seen();
        seen.last()
            .and_then(|s| s.key.clone())
            .expect("a request with a key")
    }
}

async fn issue(
    req: Request<Incoming>,
    state: Arc<Mutex<State>>,
    gate: Gate,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    let got = IssueRequest {
        method: parts.method.clone(),
        query: parts.uri.query().map(Into::into),
        content_type: parts
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(Into::into),
        authorization: parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(Into::into),
        form: form_decode(&String::from_utf8_lossy(&body)),
    };
    state.lock().unwrap().requests.push(got.clone());
    gate.pass().await;
    let mut s = state.lock().unwrap();
    if s.down {
        return reply(500, "service unavailable");
    }
    if got.method != http::Method::POST {
        return reply(405, "POST only");
    }
    let in_query = form_decode(got.query.as_deref().unwrap_or(""));
    if in_query.contains_key("sid") || in_query.contains_key("spw") {
        return reply(400, "sid and spw go in the body");
    }
    let by_password = got.content_type.as_deref() == Some("application/x-www-form-urlencoded")
        && got.form.get("sid") == Some(&s.sid)
        && got.form.get("spw") == Some(&s.spw);
    let by_master = s
        .master
        .as_ref()
        .is_some_and(|m| got.authorization.as_deref() == Some(&format!("Bearer {m}")));
    if !(by_password || by_master) {
        return reply(401, "invalid sid or spw");
    }
    let epi_ms: u64 = got.form.get("epi").map_or(30_000, |e| e.parse().unwrap());
    let serial = s.keys.len() + 1;
    // `+`, `/` and `=` test the key's form-encoding in the query.
    let key = format!("ak{serial}+{}/=", random());
    s.keys
        .push((key.clone(), Instant::now() + Duration::from_millis(epi_ms)));
    match s.mode {
        Mode::Text => reply(200, &format!("{key}\n")),
        Mode::Json => {
            let body = serde_json::json!({ "key": key, "expires_in": epi_ms / 1000 });
            reply(200, &body.to_string())
        }
    }
}

fn reply(status: u16, body: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn random() -> String {
    let mut b = [0u8; 9];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap();
    base64::engine::general_purpose::STANDARD.encode(b)
}
