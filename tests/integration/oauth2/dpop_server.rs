//! A DPoP authorization server and resource server (RFC 9449) on
//! 127.0.0.1:0, checking what a real one checks. The token endpoint
//! (client_secret_basic; client_credentials, or authorization_code with
//! any code, which also gets a refresh token) wants a valid proof of `POST`
//! on its own URL, with its nonce (a first proof without it is answered
//! 400 `use_dpop_nonce` and a `DPoP-Nonce`), and binds each token to the
//! thumbprint of the proof's key (`cnf.jkt`). The API wants
//! `Authorization: DPoP <token>` and a proof signed by that very key, for
//! its method and URL, with `ath` over the token, a fresh `jti` and its
//! own nonce (401 `WWW-Authenticate: DPoP error="use_dpop_nonce"` else).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use crate::handler_server::{form_decode, header, serve};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64};
use base64::Engine as _;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use ring::signature;
use serde_json::Value;
use sha2::Digest as _;

/// What the API made of one request.
#[derive(Clone, Debug)]
pub struct ApiCall {
    pub method: String,
    pub status: u16,
    /// The proof's claims, when it verified.
    pub claims: Option<Value>,
}

#[derive(Default)]
struct State {
    as_nonce: String,
    rs_nonce: String,
    /// Answer `token_type: Bearer` instead (a server that ignores DPoP).
    bearer: bool,
    /// Access token -> thumbprint of the key it is bound to.
    bound: HashMap<String, String>,
    jtis: HashSet<String>,
    /// (proof claims, status) of each token request.
    token_requests: Vec<(Option<Value>, u16)>,
    calls: Vec<ApiCall>,
    serial: u64,
}

pub struct DpopServer {
    tokens: SocketAddr,
    api: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl DpopServer {
    pub async fn start() -> DpopServer {
        let state = Arc::new(Mutex::new(State {
            as_nonce: "as-nonce-1".into(),
            rs_nonce: "rs-nonce-1".into(),
            ..State::default()
        }));
        let s = Arc::clone(&state);
        let tokens = serve(None, move |req| token(req, Arc::clone(&s))).await;
        let s = Arc::clone(&state);
        let api = serve(None, move |req| api(req, Arc::clone(&s))).await;
        DpopServer { tokens, api, state }
    }

    pub fn token_url(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.tokens.port())
    }

    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.api.port())
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    /// From now on, tokens come back as `Bearer`.
    pub fn answer_bearer(&self) {
        self.with(|s| s.bearer = true);
    }

    /// The API's nonce changes (as a server's nonces expire).
    pub fn set_rs_nonce(&self, nonce: &str) {
        self.with(|s| s.rs_nonce = nonce.to_string());
    }

    pub fn token_requests(&self) -> Vec<(Option<Value>, u16)> {
        self.with(|s| s.token_requests.clone())
    }

    pub fn calls(&self) -> Vec<ApiCall> {
        self.with(|s| s.calls.clone())
    }

    /// The thumbprints the issued tokens are bound to.
    pub fn bound_keys(&self) -> HashSet<String> {
        self.with(|s| s.bound.values().cloned().collect())
    }
}

fn reply(status: u16, headers: &[(&str, &str)], body: &str) -> Response<Full<Bytes>> {
    let mut r = Response::builder()
        .status(status)
        .header("content-type", "application/json");
    for (n, v) in headers {
        r = r.header(*n, *v);
    }
    r.body(Full::new(Bytes::from(body.to_string()))).unwrap()
}

async fn token(req: Request<Incoming>, state: Arc<Mutex<State>>) -> Response<Full<Bytes>> {
    let auth = header(&req, "authorization");
    let proof = header(&req, "dpop");
    let url = format!(
        "http://{}{}",
        header(&req, "host").unwrap_or_default(),
        req.uri().path()
    );
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let form = form_decode(&String::from_utf8_lossy(&body));
    let mut s = state.lock().unwrap();
    let s = &mut *s;
    let verified = proof
        .as_deref()
        .and_then(|p| verify(p, "POST", &url, None, &mut s.jtis));
    let claims = verified.as_ref().map(|(c, _)| c.clone());
    let basic = format!("Basic {}", STANDARD.encode("c:s"));
    let (status, answer) = if auth.as_deref() != Some(basic.as_str()) {
        (401, reply(401, &[], r#"{"error":"invalid_client"}"#))
    } else if !matches!(
        form.get("grant_type").map(String::as_str),
        Some("client_credentials" | "authorization_code")
    ) {
        (
            400,
            reply(400, &[], r#"{"error":"unsupported_grant_type"}"#),
        )
    } else {
        match verified {
            None => (400, reply(400, &[], r#"{"error":"invalid_dpop_proof"}"#)),
            Some((c, _)) if c["nonce"] != s.as_nonce.as_str() => (
                400,
                reply(
                    400,
                    &[("dpop-nonce", &s.as_nonce)],
                    r#"{"error":"use_dpop_nonce","error_description":"Authorization server requires nonce in DPoP proof"}"#,
                ),
            ),
            Some((_, jkt)) => {
                s.serial += 1;
                let access = format!("dpop-at-{}", s.serial);
                s.bound.insert(access.clone(), jkt);
                let kind = if s.bearer { "Bearer" } else { "DPoP" };
                let mut body = serde_json::json!({
                    "access_token": access, "token_type": kind, "expires_in": 300,
                });
                if form.contains_key("code") {
                    body["refresh_token"] = format!("rt-{}", s.serial).into();
                }
                (200, reply(200, &[], &body.to_string()))
            }
        }
    };
    s.token_requests.push((claims, status));
    answer
}

async fn api(req: Request<Incoming>, state: Arc<Mutex<State>>) -> Response<Full<Bytes>> {
    let auth = header(&req, "authorization");
    let proof = header(&req, "dpop");
    let method = req.method().to_string();
    let url = format!(
        "http://{}{}",
        header(&req, "host").unwrap_or_default(),
        req.uri().path()
    );
    let _ = req.into_body().collect().await;
    let mut s = state.lock().unwrap();
    let s = &mut *s;
    let token = auth.as_deref().and_then(|a| a.strip_prefix("DPoP "));
    let verified = match (token, proof.as_deref()) {
        (Some(t), Some(p)) => verify(p, &method, &url, Some(t), &mut s.jtis),
        _ => None,
    };
    let claims = verified.as_ref().map(|(c, _)| c.clone());
    let bound = token.and_then(|t| s.bound.get(t));
    let challenge = r#"DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof""#;
    let (status, answer) = match verified {
        Some((c, jkt)) if Some(&jkt) == bound => {
            if c["nonce"] == s.rs_nonce.as_str() {
                (200, reply(200, &[], "api ok"))
            } else {
                let headers = [
                    ("www-authenticate", challenge),
                    ("dpop-nonce", s.rs_nonce.as_str()),
                ];
                (401, reply(401, &headers, r#"{"error":"use_dpop_nonce"}"#))
            }
        }
        _ => (
            401,
            reply(
                401,
                &[("www-authenticate", r#"DPoP error="invalid_token""#)],
                "invalid_token",
            ),
        ),
    };
    s.calls.push(ApiCall {
        method,
        status,
        claims,
    });
    answer
}

/// Verifies a proof for `method` on `url` (and `token`): its header, its
/// signature with the key it carries, `htm`, `htu`, `iat`, `ath` and a
/// fresh `jti`. Returns the claims and the key's RFC 7638 thumbprint.
fn verify(
    proof: &str,
    method: &str,
    url: &str,
    token: Option<&str>,
    jtis: &mut HashSet<String>,
) -> Option<(Value, String)> {
    let (input, sig) = proof.rsplit_once('.')?;
    let (h, c) = input.split_once('.')?;
    let header: Value = serde_json::from_slice(&B64.decode(h).ok()?).ok()?;
    let claims: Value = serde_json::from_slice(&B64.decode(c).ok()?).ok()?;
    if header["typ"] != "dpop+jwt" {
        return None;
    }
    let jwk = &header["jwk"];
    let field = |name: &str| jwk[name].as_str().map(str::to_string);
    let x = B64.decode(field("x")?).ok()?;
    let (alg, public, canonical): (&dyn signature::VerificationAlgorithm, Vec<u8>, String) = match (
        header["alg"].as_str()?,
        field("kty")?.as_str(),
        field("crv")?.as_str(),
    ) {
        ("ES256", "EC", "P-256") => {
            let y = field("y")?;
            let mut point = vec![4u8];
            point.extend(&x);
            point.extend(B64.decode(&y).ok()?);
            let canonical = format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{y}"}}"#,
                field("x")?
            );
            (&signature::ECDSA_P256_SHA256_FIXED, point, canonical)
        }
        ("EdDSA", "OKP", "Ed25519") => {
            let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, field("x")?);
            (&signature::ED25519, x, canonical)
        }
        _ => return None,
    };
    if jwk.get("d").is_some() {
        return None;
    }
    signature::UnparsedPublicKey::new(alg, public)
        .verify(input.as_bytes(), &B64.decode(sig).ok()?)
        .ok()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let iat = claims["iat"].as_u64()?;
    let ath = token.map(|t| B64.encode(sha2::Sha256::digest(t.as_bytes())));
    let good = claims["htm"] == method
        && claims["htu"] == url
        && iat.abs_diff(now) <= 60
        && claims.get("ath").and_then(Value::as_str) == ath.as_deref()
        && jtis.insert(claims["jti"].as_str()?.to_string());
    let thumbprint = B64.encode(sha2::Sha256::digest(canonical.as_bytes()));
    good.then_some((claims, thumbprint))
}
