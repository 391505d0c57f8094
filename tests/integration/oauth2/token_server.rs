//! A real OAuth2 authorization server and resource server on 127.0.0.1:0.
//! The token endpoint checks client auth (Basic with form-encoded id and
//! secret, post, private_key_jwt verified with ring), issues tokens with
//! `expires_in`, rotates refresh tokens and treats reuse of a spent one as
//! theft (revoking the grant), and can be told to fail or to hold requests.
//! The API answers 401 to any token that is unknown, expired or revoked.
//! Each authorization_code grant has a `user_seq_no` (as Korea open
//! banking's token responses carry), sent with each of its tokens, and an
//! RFC 7009 revocation endpoint (`/oauth2/revoke`) revokes a grant: its
//! refresh tokens and access tokens.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::handler_server::{form_decode, header, serve};
use crate::harness::gate::Gate;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use sha2::Digest as _;

use super::client_check::{self, ClientCheck};

/// A way for the token endpoint to fail once.
#[derive(Clone, Copy, Debug)]
pub enum Failure {
    Status500,
    Garbage,
    Empty,
    NoAccessToken,
    /// Answer only after this long (beyond countersign's response timeout).
    Hang(Duration),
}

/// One request the token endpoint received, decoded.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    pub form: HashMap<String, String>,
    pub authorization: Option<String>,
    /// When the server received it (before any hold).
    pub at: Instant,
}

#[derive(Default)]
struct State {
    clients: HashMap<String, ClientCheck>,
    expires_in: u64,
    rotate: bool,
    requests: Vec<TokenRequest>,
    /// Access token -> expiry.
    issued: Vec<(String, Instant)>,
    revoked: HashSet<String>,
    /// Refresh token -> still usable.
    refresh: HashMap<String, bool>,
    reuse_detected: bool,
    /// Authorization code -> (PKCE S256 challenge, redirect_uri), one use.
    codes: HashMap<String, (String, String)>,
    failures: VecDeque<Failure>,
    down: bool,
    jtis: HashSet<String>,
    serial: u64,
    /// Token (access or refresh) -> the authorization_code grant it is of.
    grant_of: HashMap<String, u64>,
    grants: u64,
    /// More fields for every token response from now on.
    fields: serde_json::Map<String, serde_json::Value>,
    revocations: Vec<TokenRequest>,
    revocation_down: bool,
}

pub struct TokenServer {
    pub addr: SocketAddr,
    tls: bool,
    state: Arc<Mutex<State>>,
    gate: Gate,
}

impl TokenServer {
    /// `seeds` are refresh tokens the server starts with.
    pub async fn start(
        clients: &[(&str, ClientCheck)],
        expires_in: u64,
        seeds: &[&str],
    ) -> TokenServer {
        TokenServer::start_with(clients, expires_in, seeds, None).await
    }

    pub async fn start_with(
        clients: &[(&str, ClientCheck)],
        expires_in: u64,
        seeds: &[&str],
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> TokenServer {
        let state = State {
            clients: clients
                .iter()
                .map(|(id, c)| (id.to_string(), c.clone()))
                .collect(),
            expires_in,
            rotate: true,
            refresh: seeds.iter().map(|s| (s.to_string(), true)).collect(),
            ..State::default()
        };
        let state = Arc::new(Mutex::new(state));
        let gate = Gate::new();
        let (s, g) = (Arc::clone(&state), gate.clone());
        let is_tls = tls.is_some();
        let addr = serve(tls, move |req| token(req, Arc::clone(&s), g.clone())).await;
        TokenServer {
            addr,
            tls: is_tls,
            state,
            gate,
        }
    }

    /// The RFC 7009 revocation endpoint.
    pub fn revocation_url(&self) -> String {
        self.url().replace("/oauth2/token", "/oauth2/revoke")
    }

    /// Every request the revocation endpoint received.
    pub fn revocations(&self) -> Vec<TokenRequest> {
        self.with(|s| s.revocations.clone())
    }

    /// The revocation endpoint answers 503 while `down`.
    pub fn set_revocation_down(&self, down: bool) {
        self.with(|s| s.revocation_down = down);
    }

    /// Token responses from now on carry `name: value` too.
    pub fn set_field(&self, name: &str, value: serde_json::Value) {
        self.with(|s| s.fields.insert(name.to_string(), value));
    }

    /// The `user_seq_no` of the grant `token` belongs to.
    pub fn user_seq_no(&self, token: &str) -> Option<String> {
        self.with(|s| s.grant_of.get(token).map(|g| seq_no(*g)))
    }

    /// Whether a refresh token is still usable.
    pub fn refresh_live(&self, token: &str) -> bool {
        self.with(|s| s.refresh.get(token).copied().unwrap_or(false))
    }

    pub fn url(&self) -> String {
        match self.tls {
            true => format!("https://localhost:{}/oauth2/token", self.addr.port()),
            false => format!("http://127.0.0.1:{}/oauth2/token", self.addr.port()),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    pub fn requests(&self) -> Vec<TokenRequest> {
        self.with(|s| s.requests.clone())
    }

    pub fn request_count(&self) -> usize {
        self.with(|s| s.requests.len())
    }

    pub fn issued(&self) -> Vec<String> {
        self.with(|s| s.issued.iter().map(|(t, _)| t.clone()).collect())
    }

    pub fn refresh_tokens(&self) -> Vec<String> {
        self.with(|s| s.refresh.keys().cloned().collect())
    }

    pub fn revoke(&self, token: &str) {
        self.with(|s| s.revoked.insert(token.to_string()));
    }

    pub fn expired(&self, token: &str) -> bool {
        self.with(|s| {
            s.issued
                .iter()
                .any(|(t, exp)| t == token && Instant::now() >= *exp)
        })
    }

    pub fn reuse_detected(&self) -> bool {
        self.with(|s| s.reuse_detected)
    }

    pub fn fail_next(&self, failures: &[Failure]) {
        self.with(|s| s.failures.extend(failures.iter().copied()));
    }

    pub fn set_down(&self, down: bool) {
        self.with(|s| s.down = down);
    }

    /// The lifetime of tokens issued from now on.
    pub fn set_expires_in(&self, secs: u64) {
        self.with(|s| s.expires_in = secs);
    }

    pub fn set_rotation(&self, rotate: bool) {
        self.with(|s| s.rotate = rotate);
    }

    pub fn add_refresh_token(&self, token: &str) {
        self.with(|s| s.refresh.insert(token.to_string(), true));
    }

    /// A person consented: `code` may be exchanged once, with the verifier
    /// whose S256 challenge is `challenge`, for `redirect_uri`.
    pub fn add_code(&self, code: &str, challenge: &str, redirect_uri: &str) {
        self.with(|s| {
            s.codes.insert(
                code.to_string(),
                (challenge.to_string(), redirect_uri.to_string()),
            )
        });
    }

    /// Token requests from now on wait (counted on arrival) until `release`.
    pub fn hold(&self) {
        self.gate.hold();
    }

    pub fn release(&self) {
        self.gate.release();
    }

    /// Whether the API would accept `token` now.
    fn accepts(state: &State, token: &str) -> bool {
        !state.revoked.contains(token)
            && state
                .issued
                .iter()
                .any(|(t, exp)| t == token && Instant::now() < *exp)
    }
}

/// What the API saw: the Authorization header and the status it answered.
pub type Seen = (Option<String>, u16);

/// An API that takes only live tokens from `tokens`, recording the
/// Authorization of every request it saw and its answer.
pub struct Api {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Api {
    pub async fn start(tokens: &TokenServer) -> Api {
        let state = Arc::clone(&tokens.state);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let addr = serve(None, move |req: Request<Incoming>| {
            let (state, log) = (Arc::clone(&state), Arc::clone(&log));
            async move {
                let auth = header(&req, "authorization");
                let bearer = auth.as_deref().and_then(|a| a.strip_prefix("Bearer "));
                let ok = bearer.is_some_and(|t| TokenServer::accepts(&state.lock().unwrap(), t));
                let _ = req.into_body().collect().await;
                let status = if ok { 200 } else { 401 };
                log.lock().unwrap().push((auth, status));
                reply(status, if ok { "api ok" } else { "invalid_token" })
            }
        })
        .await;
        Api { addr, seen }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.addr.port())
    }

    /// (Authorization, status) of every request, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn reply(status: u16, body: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn oauth_error(status: u16, code: &str) -> Response<Full<Bytes>> {
    reply(status, &format!(r#"{{"error":"{code}"}}"#))
}

async fn token(
    req: Request<Incoming>,
    state: Arc<Mutex<State>>,
    gate: Gate,
) -> Response<Full<Bytes>> {
    let authorization = header(&req, "authorization");
    let revocation = req.uri().path() == "/oauth2/revoke";
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let form = form_decode(&String::from_utf8_lossy(&body));
    if revocation {
        return revoke(&state, form, authorization);
    }
    let failure = {
        let mut s = state.lock().unwrap();
        s.requests.push(TokenRequest {
            form: form.clone(),
            authorization: authorization.clone(),
            at: Instant::now(),
        });
        if s.down {
            Some(Failure::Status500)
        } else {
            s.failures.pop_front()
        }
    };
    gate.pass().await;
    match failure {
        Some(Failure::Status500) => return reply(500, "oops"),
        Some(Failure::Garbage) => return reply(200, "<html>not json</html>"),
        Some(Failure::Empty) => return reply(200, ""),
        Some(Failure::NoAccessToken) => {
            return reply(200, r#"{"token_type":"Bearer","expires_in":60}"#)
        }
        Some(Failure::Hang(d)) => tokio::time::sleep(d).await,
        None => {}
    }
    let mut s = state.lock().unwrap();
    let s = &mut *s;
    if let Err(e) = client_check::check(&s.clients, &mut s.jtis, &form, authorization.as_deref()) {
        return oauth_error(401, e);
    }
    let mut grant = None;
    let rotate = match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") => false,
        Some("authorization_code") => {
            let code = form.get("code").cloned().unwrap_or_default();
            let Some((challenge, redirect)) = s.codes.remove(&code) else {
                return oauth_error(400, "invalid_grant");
            };
            let verifier = form.get("code_verifier").cloned().unwrap_or_default();
            let computed = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
            if computed != challenge || form.get("redirect_uri") != Some(&redirect) {
                return oauth_error(400, "invalid_grant");
            }
            s.grants += 1;
            grant = Some(s.grants);
            true
        }
        Some("refresh_token") => {
            let presented = form.get("refresh_token").cloned().unwrap_or_default();
            grant = s.grant_of.get(&presented).copied();
            match s.refresh.get(&presented).copied() {
                Some(true) if s.rotate => {
                    s.refresh.insert(presented, false);
                    true
                }
                Some(true) => false,
                Some(false) => {
                    // A spent refresh token came back: theft. Revoke the grant.
                    s.reuse_detected = true;
                    s.refresh.values_mut().for_each(|live| *live = false);
                    return oauth_error(400, "invalid_grant");
                }
                None => return oauth_error(400, "invalid_grant"),
            }
        }
        _ => return oauth_error(400, "unsupported_grant_type"),
    };
    s.serial += 1;
    let access = format!("at-{}-{}", s.serial, random());
    let expires_in = s.expires_in;
    s.issued.push((
        access.clone(),
        Instant::now() + Duration::from_secs(expires_in),
    ));
    let mut body = serde_json::json!({
        "access_token": access, "token_type": "Bearer", "expires_in": expires_in,
    });
    for (name, value) in &s.fields {
        body[name] = value.clone();
    }
    if let Some(g) = grant {
        s.grant_of.insert(access, g);
        body["user_seq_no"] = seq_no(g).into();
    }
    if rotate {
        let next = format!("rt-{}-{}", s.serial, random());
        s.refresh.insert(next.clone(), true);
        if let Some(g) = grant {
            s.grant_of.insert(next.clone(), g);
        }
        body["refresh_token"] = next.into();
    }
    reply(200, &body.to_string())
}

/// Korea open banking's user numbers are ten digits.
fn seq_no(grant: u64) -> String {
    format!("{:010}", 1_100_000_000 + grant)
}

/// RFC 7009: the client authenticates as at the token endpoint; the
/// grant of `token` is revoked (every refresh and access token of it);
/// an unknown token is answered 200 too (section 2.2).
fn revoke(
    state: &Mutex<State>,
    form: HashMap<String, String>,
    authorization: Option<String>,
) -> Response<Full<Bytes>> {
    let mut s = state.lock().unwrap();
    let s = &mut *s;
    s.revocations.push(TokenRequest {
        form: form.clone(),
        authorization: authorization.clone(),
        at: Instant::now(),
    });
    if s.revocation_down {
        return oauth_error(503, "temporarily_unavailable");
    }
    if let Err(e) = client_check::check(&s.clients, &mut s.jtis, &form, authorization.as_deref()) {
        return oauth_error(401, e);
    }
    let Some(token) = form.get("token") else {
        return oauth_error(400, "invalid_request");
    };
    if let Some(grant) = s.grant_of.get(token).copied() {
        let of_grant: Vec<String> = s
            .grant_of
            .iter()
            .filter(|(_, g)| **g == grant)
            .map(|(t, _)| t.clone())
            .collect();
        for t in of_grant {
            if let Some(live) = s.refresh.get_mut(&t) {
                *live = false;
            } else {
                s.revoked.insert(t);
            }
        }
    }
    reply(200, "")
}

fn random() -> String {
    let mut b = [0u8; 12];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap();
    URL_SAFE_NO_PAD.encode(b)
}
