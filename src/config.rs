//! The only module that knows TOML. `load` reads `proxy.toml`, resolves
//! `${env:}`/`${file:}` references and returns a `Config` that has passed every
//! check, or every problem found, each with its key path.

mod admin;
mod aws;
mod hmac;
mod http_sig;
mod issued;
mod jws;
mod limits;
mod oauth2;
mod raw;
mod secret;
mod store;
mod units;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};
use rustls_pki_types::CertificateDer;

pub use admin::{is_loopback, AdminSettings, BrowserListen};
pub use aws::{
    AwsAlgorithm, AwsKeys, AwsPayload, AwsSigV4Config, ContainerEndpoint, ContainerToken,
    StaticKeys, WebIdentity,
};
pub use hmac::{
    BodyDigestSpec, DigestAlgorithm, Encoding, Field, HmacAlgorithm, HmacConfig, NonceFormat, Part,
    Piece, Template, TimestampFormat,
};
pub use http_sig::{Component, DigestAlg, HttpSigAlgorithm, HttpSigConfig, HttpSigKey};
pub use issued::{IssuedKeyConfig, KeyPlacement, KeyResponse};
pub use jws::{IdempotencyKey, JwsDetachedConfig, ObVersion};
pub use limits::Limits;
pub use oauth2::{
    ClientAuth, CodeFlow, DpopAlg, FapiFlow, Grant, JwtKey, OAuth2Config, ResponseMode, SigningAlg,
    TokenStoreConfig, REQUEST_OBJECT_LIFETIME, REQUEST_OBJECT_LIFETIME_MAX,
};
pub use secret::{Secret, SecretBytes};
pub use store::{SentinelConfig, StoreConfig};

// Kept at its old path for code that still names it so.
use crate::pki::ca::LocalCa;
use crate::pki::identity::ClientIdentity;
use std::net::IpAddr;
use std::sync::Arc;

/// A fully validated configuration. Only `load`/`parse` can make one.
#[derive(Debug, Clone)]
pub struct Config {
    pub proxy: ProxySettings,
    pub routes: Vec<RouteConfig>,
    pub credentials: BTreeMap<String, CredentialConfig>,
    /// The local CA for HTTPS interception; without it a CONNECT to a routed
    /// host is refused.
    pub intercept: Option<InterceptSettings>,
    /// CONNECT targets no route matches that may be tunnelled opaquely.
    pub tunnel: Vec<(HostPattern, Option<u16>)>,
    pub egress: EgressAllow,
    /// The admin listeners: probes, controls, browsers.
    pub admin: AdminSettings,
    /// Credentials marked `required = true`: readiness waits for them.
    pub required: std::collections::BTreeSet<String>,
    /// Files whose change must trigger a reload: the config itself, every
    /// `${file:}` it references and every `ca_file`.
    pub watched_files: Vec<PathBuf>,
    /// The shared store (`[store]`); `None`: each credential's files.
    pub store: Option<Arc<StoreConfig>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxySettings {
    pub listen: SocketAddr,
    pub unmatched: Unmatched,
    pub max_body: u64,
    pub spool_memory: usize,
    pub spool_dir: PathBuf,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    pub idle_timeout: Duration,
    /// Idle pooled connections kept per upstream, per upstream client.
    pub idle_connections: usize,
    pub client_header_timeout: Duration,
    /// How long shutdown waits for requests in flight.
    pub drain_timeout: Duration,
    pub limits: Limits,
}

#[derive(Debug, Clone)]
pub struct InterceptSettings {
    pub ca: Arc<LocalCa>,
    pub leaf_lifetime: Duration,
}

/// Internal destinations named as allowed for passthrough and tunnels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EgressAllow {
    pub hosts: Vec<HostPattern>,
    /// (network address, prefix length)
    pub networks: Vec<(IpAddr, u8)>,
}

/// What happens to a request that no route matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unmatched {
    /// 403, with a body that says how to add a route.
    Deny,
    /// Forwarded untouched, with no credential of any kind.
    Passthrough,
}

#[derive(Debug, Clone)]
pub struct RouteConfig {
    pub name: String,
    pub hosts: Vec<HostPattern>,
    pub port: Option<u16>,
    pub path_prefix: Option<String>,
    pub methods: Option<Vec<Method>>,
    pub upstream: UpstreamTarget,
    /// Extra trust roots for this route's upstream, from `ca_file`.
    pub ca_roots: Vec<CertificateDer<'static>>,
    /// The credentials applied to each request, in this order (empty: none).
    pub credential: Vec<String>,
    /// Static headers set on every request of this route (values may hold
    /// secrets, so they are marked sensitive).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub listen: Option<SocketAddr>,
    /// Client certificate for mutual TLS with the upstream.
    pub client_identity: Option<ClientIdentity>,
    /// TLS server name to send instead of the upstream's host.
    pub sni: Option<String>,
    /// Which requests are sent again when the upstream closes a reused
    /// connection before answering.
    pub resend_closed: Resend,
    /// Offer h2 by ALPN to an `https` upstream (`http2`, default on); the
    /// upstream's pick decides.
    pub http2: bool,
    /// An appliance whose own endpoints this route's listener answers, so
    /// that apps written for it move over with only a base URL change.
    pub appliance: Option<Appliance>,
}

/// Appliances whose own endpoints a route listener can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Appliance {
    /// GMO Aozora Net Bank's "banking API environment": `POST
    /// /v1/authorization/` with form field `sessionId` starts a session's
    /// authorization.
    GmoAozora,
}

/// Which requests may be sent a second time, on a new connection, when the
/// upstream closed a reused keep-alive connection without a byte of an
/// answer. From there countersign cannot tell an upstream that timed the
/// connection out as the request went out from one that read it and then
/// failed; this says how much that risk is worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Resend {
    /// Any request whose body countersign can produce again.
    #[default]
    Any,
    /// Only idempotent methods (RFC 9110 section 9.2.2), or a request that
    /// carries an `Idempotency-Key` header.
    Idempotent,
    /// None: the app gets 502 `upstream-failed`.
    Never,
}

impl Resend {
    /// Whether a request with this method and headers may be sent again.
    pub fn allows(self, method: &Method, headers: &http::HeaderMap) -> bool {
        match self {
            Resend::Any => true,
            Resend::Never => false,
            Resend::Idempotent => method.is_idempotent() || headers.contains_key("idempotency-key"),
        }
    }
}

/// A host rule: `api.example.com` or `*.example.com` (which matches any name
/// ending in `.example.com`, not `example.com` itself).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostPattern {
    Exact(String),
    Suffix(String),
}

impl HostPattern {
    /// `host` must be lower-case without a trailing dot.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(h) => h == host,
            HostPattern::Suffix(s) => host
                .strip_suffix(s.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// Where a route sends its requests: `https://api.paypay.ne.jp[:port][/base]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamTarget {
    pub scheme: Scheme,
    pub host: String,
    pub port: u16,
    /// Prepended to every request path; empty or starting with `/`, never
    /// ending with one.
    pub base_path: String,
}

impl UpstreamTarget {
    /// `host` or `host:port` when the port is not the scheme's default.
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == self.scheme.default_port() {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// A credential definition, by `type`.
#[derive(Debug, Clone)]
pub enum CredentialConfig {
    PayPayOpa {
        api_key: Secret,
        api_secret: Secret,
        nonce_length: usize,
    },
    Header {
        headers: Vec<(HeaderName, HeaderValue)>,
    },
    OAuth2(Box<OAuth2Config>),
    IssuedKey(Box<IssuedKeyConfig>),
    AwsSigV4(Box<AwsSigV4Config>),
    JwsDetached(Box<JwsDetachedConfig>),
    Hmac(Box<HmacConfig>),
    HttpSignature(Box<HttpSigConfig>),
}

/// One thing wrong with a config, at a TOML key path such as `route[2].upstream`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem found in a config. Also carries the files it referenced so a
/// fix to one of them can trigger the next reload.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid config ({} problem{}): {}", problems.len(), if problems.len() == 1 { "" } else { "s" }, list(problems))]
pub struct ConfigError {
    pub problems: Vec<Problem>,
    pub watched_files: Vec<PathBuf>,
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Reads and validates the config file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = crate::files::read_text(path).map_err(|e| ConfigError {
        problems: vec![Problem {
            path: path.display().to_string(),
            message: format!("cannot read config file: {e}"),
        }],
        watched_files: vec![path.to_path_buf()],
    })?;
    let base_dir = path.parent().unwrap_or(Path::new("."));
    let mut config = parse(&text, base_dir).map_err(|mut e| {
        e.watched_files.insert(0, path.to_path_buf());
        e
    })?;
    config.watched_files.insert(0, path.to_path_buf());
    Ok(config)
}

/// Validates config text; relative `${file:}` and `ca_file` paths are taken
/// from `base_dir`.
pub fn parse(text: &str, base_dir: &Path) -> Result<Config, ConfigError> {
    validate::validate(text, base_dir)
}
