//! The serde mirror of `proxy.toml`: plain strings and numbers exactly as the
//! file spells them. Nothing here is checked beyond its TOML shape;
//! `validate` turns it into the types the proxy uses.

use std::collections::BTreeMap;

use serde::Deserialize;

/// `[proxy]`: the forward listener and limits shared by every route.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProxy {
    pub listen: Option<String>,
    pub unmatched: Option<String>,
    pub max_body: Option<RawSize>,
    pub spool_memory: Option<RawSize>,
    pub spool_dir: Option<String>,
    pub connect_timeout: Option<String>,
    pub response_timeout: Option<String>,
    pub idle_timeout: Option<String>,
    pub idle_connections: Option<i64>,
    pub client_header_timeout: Option<String>,
    pub drain_timeout: Option<String>,
    // Global bounds (`config::Limits`).
    pub max_connections: Option<i64>,
    pub spool_memory_total: Option<RawSize>,
    pub body_idle_timeout: Option<String>,
    pub body_timeout: Option<String>,
    pub h2_max_streams: Option<i64>,
    pub h2_window: Option<RawSize>,
}

/// `[admin]`: the admin listeners, by audience. No `Debug`:
/// `control_secret` is checked to be a reference, so may be a secret.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub listen: Option<String>,
    pub control_listen: Option<String>,
    pub control_secret: Option<String>,
    pub browser_listen: Option<String>,
}

/// `[store]`: the shared store of several replicas. No `Debug`: secrets.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    pub url: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub key_prefix: Option<String>,
    pub ca_file: Option<String>,
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
    pub store_key: Option<String>,
    pub timeout: Option<String>,
    pub wait_replicas: Option<i64>,
    pub local_fallback: Option<bool>,
    pub unsaved_grace: Option<String>,
    pub sentinels: Option<Vec<String>>,
    pub sentinel_master: Option<String>,
    pub sentinel_username: Option<String>,
    pub sentinel_password: Option<String>,
    pub tls: Option<bool>,
}

/// A byte count written either as an integer or as `"64MiB"`.
#[derive(Debug, Clone)]
pub enum RawSize {
    Bytes(i64),
    Text(String),
}

/// By hand rather than `untagged`, so a wrong type gets a message that
/// names what is expected (and, like every shape error, not the value).
impl<'de> Deserialize<'de> for RawSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Size;
        impl serde::de::Visitor<'_> for Size {
            type Value = RawSize;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte count or a size such as \"64MiB\"")
            }
            fn visit_i64<E>(self, n: i64) -> Result<RawSize, E> {
                Ok(RawSize::Bytes(n))
            }
            fn visit_u64<E>(self, n: u64) -> Result<RawSize, E> {
                Ok(RawSize::Bytes(i64::try_from(n).unwrap_or(i64::MAX)))
            }
            fn visit_str<E>(self, text: &str) -> Result<RawSize, E> {
                Ok(RawSize::Text(text.to_string()))
            }
        }
        d.deserialize_any(Size)
    }
}

/// One `[[route]]` table. No `Debug`: header values may hold secrets.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub name: Option<String>,
    #[serde(default)]
    pub hosts: Vec<String>,
    pub port: Option<i64>,
    pub path_prefix: Option<String>,
    pub methods: Option<Vec<String>>,
    pub upstream: Option<String>,
    pub ca_file: Option<String>,
    pub credential: Option<RawCredentialNames>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub listen: Option<String>,
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
    pub sni: Option<String>,
    pub resend_closed: Option<String>,
    pub http2: Option<bool>,
    pub appliance: Option<String>,
}

/// A route's `credential`: one name, or a list applied in order.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawCredentialNames {
    One(String),
    Many(Vec<String>),
}

/// `[intercept]`: the local CA for HTTPS interception.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIntercept {
    pub ca_cert: Option<String>,
    pub ca_key: Option<String>,
    pub leaf_lifetime: Option<String>,
}

/// `[connect]`: CONNECT requests no route matches.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConnect {
    #[serde(default)]
    pub tunnel: Vec<String>,
}

/// `[egress]`: internal destinations the app may reach anyway.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEgress {
    #[serde(default)]
    pub allow: Vec<String>,
}

/// `[credential.NAME]` with `type = "paypay-opa"`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPayPayOpa {
    pub api_key: String,
    pub api_secret: String,
    pub nonce_length: Option<i64>,
}

/// `[credential.NAME]` with `type = "aws-sigv4"`. Every key is optional
/// here so that a missing one is reported with its own key path.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAwsSigV4 {
    pub service: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub payload: Option<String>,
    pub content_sha256: Option<bool>,
    pub keys: Option<String>,
    pub role_arn: Option<String>,
    pub web_identity_token_file: Option<String>,
    pub sts_url: Option<String>,
    pub role_session_name: Option<String>,
    pub container_url: Option<String>,
    pub container_token_file: Option<String>,
    pub container_token: Option<String>,
    pub algorithm: Option<String>,
    pub region_set: Option<RawRegionSet>,
}

/// SigV4A's `region_set`: `"*"` (or one region), or a list of regions.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawRegionSet {
    One(String),
    Many(Vec<String>),
}

/// `[credential.NAME]` with `type = "jws-detached"`. Every key is optional
/// here so that a missing one is reported with its own key path.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJwsDetached {
    pub version: Option<String>,
    pub algorithm: Option<String>,
    pub private_key_file: Option<String>,
    pub kid: Option<String>,
    pub issuer: Option<String>,
    pub trust_anchor: Option<String>,
    pub typ: Option<String>,
    pub max_body: Option<RawSize>,
    pub interaction_id: Option<bool>,
    pub idempotency_key: Option<String>,
}

/// `[credential.NAME]` with `type = "http-signature"`. Every key is
/// optional here so that a missing one is reported with its own key path.
/// No `Debug`: `secret` may be a secret typed in place of its reference.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttpSignature {
    pub algorithm: Option<String>,
    pub secret: Option<String>,
    pub secret_encoding: Option<String>,
    pub private_key_file: Option<String>,
    pub keyid: Option<String>,
    pub label: Option<String>,
    pub components: Option<Vec<String>>,
    pub created: Option<bool>,
    pub expires: Option<String>,
    pub nonce: Option<bool>,
    pub tag: Option<String>,
    pub alg: Option<bool>,
    pub content_digest: Option<String>,
}

/// `[credential.NAME]` with `type = "header"`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeaderCredential {
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub bearer: Option<String>,
    pub basic: Option<RawBasic>,
}

/// `basic = { username = "...", password = "..." }` inside a header credential.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBasic {
    pub username: String,
    pub password: String,
}

/// `[credential.NAME]` with `type = "oauth2"`. Every key is optional here so
/// that a missing one is reported with its own key path. No `Debug`: secrets.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOAuth2 {
    pub token_url: Option<String>,
    pub issuer: Option<String>,
    pub grant: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub client_auth: Option<String>,
    pub private_key_file: Option<String>,
    pub signing_alg: Option<String>,
    pub kid: Option<String>,
    pub assertion_audience: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
    pub audience: Option<String>,
    pub resource: Option<String>,
    #[serde(default)]
    pub extra_params: BTreeMap<String, String>,
    pub token_store: Option<String>,
    pub store_key: Option<String>,
    pub ca_file: Option<String>,
    pub refresh_at: Option<f64>,
    pub wait_for_token: Option<String>,
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
    pub authorize_url: Option<String>,
    pub redirect_uri: Option<String>,
    pub session_header: Option<String>,
    pub session_param: Option<String>,
    pub authorize_secret: Option<String>,
    pub session_facts: Option<Vec<String>>,
    pub revocation_url: Option<String>,
    pub dpop: Option<bool>,
    pub dpop_alg: Option<String>,
    pub certificate_bound: Option<bool>,
    pub request_object: Option<String>,
    pub request_object_audience: Option<String>,
    pub request_object_lifetime: Option<String>,
    pub par: Option<bool>,
    pub response_type: Option<String>,
    pub response_mode: Option<String>,
}

/// `[credential.NAME]` with `type = "issued-key"`. Every key is optional
/// here so that a missing one is reported with its own key path. No
/// `Debug`: the form and the master key hold secrets.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIssuedKey {
    pub issue_url: Option<String>,
    pub form: Option<BTreeMap<String, String>>,
    pub bearer: Option<String>,
    pub response: Option<String>,
    pub json_field: Option<String>,
    pub expires_in_field: Option<String>,
    pub lifetime: Option<String>,
    pub margin: Option<String>,
    pub header: Option<String>,
    pub prefix: Option<String>,
    pub query: Option<String>,
    pub ca_file: Option<String>,
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
    pub refresh_at: Option<f64>,
    pub wait_for_token: Option<String>,
}
