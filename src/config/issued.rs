//! The validated settings of an `issued-key` credential: where short-lived
//! keys are issued, what proves countersign to the issuer, how to read the
//! key and how long it lasts, and where it goes in matched requests. Only
//! `validate` makes these; `creds::issued` turns them into a running key
//! manager.

use std::time::Duration;

use http::{HeaderName, Uri};
use rustls_pki_types::CertificateDer;

use super::Secret;
use crate::pki::identity::ClientIdentity;

#[derive(Debug, Clone)]
pub struct IssuedKeyConfig {
    /// Absolute `http` or `https` URL of the issuing endpoint; POSTed to.
    pub issue_url: Uri,
    /// Fields of the `application/x-www-form-urlencoded` request body, in
    /// name order (AmiVoice: `sid`, `spw`, `epi`, `ipa`). Never the query.
    pub form: Vec<(String, Secret)>,
    /// A master key sent as `Authorization: Bearer <key>` to the issuer.
    pub bearer: Option<Secret>,
    pub response: KeyResponse,
    /// How long a key is valid from when it was asked for; required unless
    /// the response says (`expires_in_field`).
    pub lifetime: Option<Duration>,
    /// A key is never used in its last `margin`; `None`: the smaller of 5s
    /// and a tenth of the lifetime.
    pub margin: Option<Duration>,
    pub placement: KeyPlacement,
    /// Extra trust roots for the issuing endpoint, from `ca_file`.
    pub ca_roots: Vec<CertificateDer<'static>>,
    /// Client certificate presented to the issuing endpoint.
    pub client_identity: Option<ClientIdentity>,
    /// Fraction of a key's usable life after which it is renewed (0 < x < 1).
    pub refresh_at: f64,
    /// How long a request may wait for a first (or fresh) key.
    pub wait_for_token: Duration,
    /// `[store]`, when set: one key per expiry for the whole fleet, issued
    /// by the lease holder and published to the other replicas.
    pub shared_store: Option<std::sync::Arc<super::StoreConfig>>,
}

/// How the issuing endpoint's answer holds the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyResponse {
    /// The whole body, trimmed, is the key (AmiVoice).
    Text,
    /// A JSON object; `key_field` holds the key, and `expires_in_field`
    /// (when set) its lifetime in seconds.
    Json {
        key_field: String,
        expires_in_field: Option<String>,
    },
}

/// Where a key goes in a matched request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPlacement {
    /// `name: <prefix><key>`, replacing any the app sent.
    Header { name: HeaderName, prefix: String },
    /// The query parameter `name=<key>` (form-encoded) on the upstream URI,
    /// replacing any the app sent; the other parameters are kept.
    Query { name: String },
}
