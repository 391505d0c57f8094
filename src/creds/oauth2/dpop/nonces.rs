//! Server-provided DPoP nonces (RFC 9449 sections 8 and 9): the latest
//! `DPoP-Nonce` each server (scheme, host and port) sent, put in the next
//! proof for that server; and how a server asks for one (`use_dpop_nonce`:
//! a 400 from the token endpoint, a 401 `WWW-Authenticate: DPoP` challenge
//! from a resource server).

use std::collections::HashMap;
use std::sync::Mutex;

use http::header::WWW_AUTHENTICATE;
use http::{HeaderMap, StatusCode, Uri};

/// The response header that carries a nonce.
pub const NONCE_HEADER: &str = "dpop-nonce";
/// Servers remembered at most; past it the oldest is forgotten.
const MAX_SERVERS: usize = 64;
/// A nonce is opaque, but a longer one is not a nonce.
const MAX_NONCE: usize = 512;

#[derive(Debug, Default)]
pub struct Nonces {
    /// origin -> (nonce, when it was stored, for eviction)
    by_origin: Mutex<HashMap<String, (String, u64)>>,
}

impl Nonces {
    /// The latest nonce `uri`'s server sent.
    pub fn get(&self, uri: &Uri) -> Option<String> {
        self.lock().get(&origin(uri)).map(|(n, _)| n.clone())
    }

    /// Remembers the `DPoP-Nonce` of an answer from `uri`'s server; returns
    /// whether it sent one (a usable one: visible ASCII, RFC 9449's
    /// `NQCHAR`).
    pub fn remember(&self, uri: &Uri, headers: &HeaderMap) -> bool {
        let Some(nonce) = headers
            .get(NONCE_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|n| {
                !n.is_empty()
                    && n.len() <= MAX_NONCE
                    && n.bytes()
                        .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\')
            })
        else {
            return false;
        };
        let mut map = self.lock();
        let seq = map.values().map(|(_, s)| *s).max().map_or(0, |s| s + 1);
        let key = origin(uri);
        if !map.contains_key(&key) && map.len() >= MAX_SERVERS {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, (_, s))| *s)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(key, (nonce.to_string(), seq));
        true
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, u64)>> {
        self.by_origin.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A resource server's `401` with `WWW-Authenticate: DPoP
/// error="use_dpop_nonce"`.
pub fn resource_wants_nonce(status: StatusCode, headers: &HeaderMap) -> bool {
    status == StatusCode::UNAUTHORIZED
        && headers.get_all(WWW_AUTHENTICATE).iter().any(|v| {
            v.to_str().is_ok_and(|text| {
                let lower = text.to_ascii_lowercase();
                lower.trim_start().starts_with("dpop")
                    && (lower.contains("error=\"use_dpop_nonce\"")
                        || lower.contains("error=use_dpop_nonce"))
            })
        })
}

/// `scheme://host:port`, the port always written.
fn origin(uri: &Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
    let port = uri
        .port_u16()
        .unwrap_or(if scheme == "http" { 80 } else { 443 });
    format!(
        "{scheme}://{}:{port}",
        uri.host().unwrap_or("").to_ascii_lowercase()
    )
}
