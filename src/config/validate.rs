//! Raw TOML -> validated `Config`. Every check runs, and every problem is
//! reported with its key path, so one `countersign check` shows all of them.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use http::{HeaderName, HeaderValue, Method, Uri};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use super::raw::{RawBasic, RawHeaderCredential, RawPayPayOpa, RawProxy, RawRoute, RawSize};
use super::secret::SecretResolver;
use super::units::{parse_duration, parse_size};
use super::{
    Config, ConfigError, CredentialConfig, HostPattern, Problem, ProxySettings, RouteConfig,
    Scheme, Unmatched, UpstreamTarget,
};

const CREDENTIAL_TYPES: &str = "\"paypay-opa\" or \"header\"";

/// Headers a route or credential may not set: they belong to the connection
/// or to the body framing, which countersign manages itself.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
];

struct Checker<'a> {
    problems: Vec<Problem>,
    secrets: SecretResolver<'a>,
    base_dir: &'a Path,
    other_files: Vec<PathBuf>,
}

pub fn validate(text: &str, base_dir: &Path) -> Result<Config, ConfigError> {
    let table: toml::Table = match text.parse() {
        Ok(table) => table,
        Err(e) => return Err(syntax_error(text, &e)),
    };
    let mut c = Checker {
        problems: Vec::new(),
        secrets: SecretResolver::new(base_dir),
        base_dir,
        other_files: Vec::new(),
    };

    let mut raw_proxy = RawProxy::default();
    let mut raw_routes: Vec<Option<RawRoute>> = Vec::new();
    let mut raw_creds: Vec<(String, toml::Value)> = Vec::new();
    for (key, value) in table {
        match key.as_str() {
            "proxy" => match value.try_into() {
                Ok(p) => raw_proxy = p,
                Err(e) => c.problem("proxy", e.message()),
            },
            "route" => raw_routes = c.shape_routes(value),
            "credential" => match value {
                toml::Value::Table(t) => raw_creds = t.into_iter().collect(),
                _ => c.problem("credential", "must be tables: [credential.NAME]"),
            },
            other => c.problem(
                other,
                "unknown section; expected [proxy], [[route]] or [credential.NAME]",
            ),
        }
    }

    let proxy = c.proxy(raw_proxy);
    let defined: BTreeSet<String> = raw_creds.iter().map(|(n, _)| n.clone()).collect();
    let mut credentials = BTreeMap::new();
    for (name, value) in raw_creds {
        if let Some(cred) = c.credential(&name, value) {
            credentials.insert(name, cred);
        }
    }
    let mut routes = Vec::new();
    for (i, raw) in raw_routes.into_iter().enumerate() {
        if let Some(route) = raw.and_then(|r| c.route(i, r, &defined)) {
            routes.push((i, route));
        }
    }
    c.unique_names(&routes);
    c.no_ties(&routes);
    c.distinct_listeners(proxy.as_ref(), &routes);

    let mut watched_files = c.secrets.into_files();
    watched_files.extend(c.other_files);
    match proxy {
        Some(proxy) if c.problems.is_empty() => Ok(Config {
            proxy,
            routes: routes.into_iter().map(|(_, r)| r).collect(),
            credentials,
            watched_files,
        }),
        _ => Err(ConfigError {
            problems: c.problems,
            watched_files,
        }),
    }
}

/// A TOML syntax error, located by line and column. The offending line is not
/// quoted: it could hold a secret.
fn syntax_error(text: &str, e: &toml::de::Error) -> ConfigError {
    let path = match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}")
        }
        None => "config".to_string(),
    };
    ConfigError {
        problems: vec![Problem {
            path,
            message: format!("TOML syntax error: {}", e.message().trim()),
        }],
        watched_files: Vec::new(),
    }
}

impl Checker<'_> {
    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    fn shape_routes(&mut self, value: toml::Value) -> Vec<Option<RawRoute>> {
        let toml::Value::Array(items) = value else {
            self.problem("route", "must be an array of tables: [[route]]");
            return Vec::new();
        };
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item.try_into::<RawRoute>() {
                Ok(r) => Some(r),
                Err(e) => {
                    self.problem(format!("route[{i}]"), e.message());
                    None
                }
            })
            .collect()
    }

    fn size(&mut self, path: &str, raw: Option<RawSize>, default: u64) -> u64 {
        match raw {
            None => default,
            Some(RawSize::Bytes(n)) if n >= 0 => n as u64,
            Some(RawSize::Bytes(_)) => {
                self.problem(path, "must not be negative");
                default
            }
            Some(RawSize::Text(t)) => parse_size(&t).unwrap_or_else(|e| {
                self.problem(path, e);
                default
            }),
        }
    }

    fn duration(&mut self, path: &str, raw: Option<String>, default: Duration) -> Duration {
        match raw.map(|t| parse_duration(&t)) {
            None => default,
            Some(Ok(d)) if !d.is_zero() => d,
            Some(Ok(_)) => {
                self.problem(path, "must be longer than zero");
                default
            }
            Some(Err(e)) => {
                self.problem(path, e);
                default
            }
        }
    }

    fn socket_addr(&mut self, path: &str, text: &str) -> Option<SocketAddr> {
        text.parse()
            .map_err(|_| {
                self.problem(
                    path,
                    format!("`{text}` is not an address; write IP:PORT, e.g. \"127.0.0.1:3128\""),
                )
            })
            .ok()
    }

    fn proxy(&mut self, raw: RawProxy) -> Option<ProxySettings> {
        let listen = self.socket_addr(
            "proxy.listen",
            raw.listen.as_deref().unwrap_or("127.0.0.1:3128"),
        );
        let unmatched = match raw.unmatched.as_deref() {
            None | Some("deny") => Unmatched::Deny,
            Some("passthrough") => Unmatched::Passthrough,
            Some(other) => {
                self.problem(
                    "proxy.unmatched",
                    format!("`{other}` is not a policy; use \"deny\" or \"passthrough\""),
                );
                Unmatched::Deny
            }
        };
        let max_body = self.size("proxy.max_body", raw.max_body, 64 << 20);
        let spool_memory = self.size("proxy.spool_memory", raw.spool_memory, 1 << 20);
        if max_body == 0 {
            self.problem("proxy.max_body", "must be larger than zero");
        }
        let spool_dir = raw
            .spool_dir
            .map(|d| self.base_dir.join(d))
            .unwrap_or_else(std::env::temp_dir);
        if !spool_dir.is_dir() {
            self.problem(
                "proxy.spool_dir",
                format!("`{}` is not a directory", spool_dir.display()),
            );
        }
        let settings = ProxySettings {
            listen: listen?,
            unmatched,
            max_body,
            spool_memory: usize::try_from(spool_memory).unwrap_or(usize::MAX),
            spool_dir,
            connect_timeout: self.duration(
                "proxy.connect_timeout",
                raw.connect_timeout,
                Duration::from_secs(10),
            ),
            response_timeout: self.duration(
                "proxy.response_timeout",
                raw.response_timeout,
                Duration::from_secs(60),
            ),
            idle_timeout: self.duration(
                "proxy.idle_timeout",
                raw.idle_timeout,
                Duration::from_secs(90),
            ),
            client_header_timeout: self.duration(
                "proxy.client_header_timeout",
                raw.client_header_timeout,
                Duration::from_secs(30),
            ),
        };
        Some(settings)
    }

    fn credential(&mut self, name: &str, value: toml::Value) -> Option<CredentialConfig> {
        let path = format!("credential.{name}");
        let toml::Value::Table(mut table) = value else {
            self.problem(path, "must be a table");
            return None;
        };
        let kind = match table.remove("type") {
            Some(toml::Value::String(kind)) => kind,
            Some(_) => {
                self.problem(format!("{path}.type"), "must be a string");
                return None;
            }
            None => {
                self.problem(
                    format!("{path}.type"),
                    format!("missing; use {CREDENTIAL_TYPES}"),
                );
                return None;
            }
        };
        match kind.as_str() {
            "paypay-opa" => match table.try_into::<RawPayPayOpa>() {
                Ok(raw) => self.paypay(&path, raw),
                Err(e) => {
                    self.problem(path, e.message());
                    None
                }
            },
            "header" => match table.try_into::<RawHeaderCredential>() {
                Ok(raw) => self.header_credential(&path, raw),
                Err(e) => {
                    self.problem(path, e.message());
                    None
                }
            },
            other => {
                self.problem(
                    format!("{path}.type"),
                    format!("unknown credential type `{other}`; use {CREDENTIAL_TYPES}"),
                );
                None
            }
        }
    }

    fn secret(&mut self, path: &str, text: &str) -> Option<super::Secret> {
        match self.secrets.resolve(text) {
            Ok(s) if s.expose().is_empty() => {
                self.problem(path, "is empty");
                None
            }
            Ok(s) => Some(s),
            Err(e) => {
                self.problem(path, e);
                None
            }
        }
    }

    fn paypay(&mut self, path: &str, raw: RawPayPayOpa) -> Option<CredentialConfig> {
        let api_key = self.secret(&format!("{path}.api_key"), &raw.api_key);
        let api_secret = self.secret(&format!("{path}.api_secret"), &raw.api_secret);
        let nonce_length = match raw.nonce_length {
            None => 8,
            Some(n @ 8..=64) => n as usize,
            Some(_) => {
                self.problem(format!("{path}.nonce_length"), "must be between 8 and 64");
                8
            }
        };
        if let Some(key) = &api_key {
            if key.expose().contains(':') {
                self.problem(
                    format!("{path}.api_key"),
                    "must not contain `:` (it separates the fields of the OPA-Auth header)",
                );
            }
        }
        Some(CredentialConfig::PayPayOpa {
            api_key: api_key?,
            api_secret: api_secret?,
            nonce_length,
        })
    }

    fn header_credential(
        &mut self,
        path: &str,
        raw: RawHeaderCredential,
    ) -> Option<CredentialConfig> {
        let mut headers = self.header_map(&format!("{path}.headers"), &raw.headers);
        let mut authorization = Vec::new();
        if let Some(token) = &raw.bearer {
            let p = format!("{path}.bearer");
            if let Some(t) = self.secret(&p, token) {
                authorization.push((p, format!("Bearer {}", t.expose())));
            }
        }
        if let Some(RawBasic { username, password }) = &raw.basic {
            let user = self.secret(&format!("{path}.basic.username"), username);
            let pass = self.secret(&format!("{path}.basic.password"), password);
            if let (Some(u), Some(p)) = (user, pass) {
                let pair = format!("{}:{}", u.expose(), p.expose());
                let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
                authorization.push((format!("{path}.basic"), format!("Basic {encoded}")));
            }
        }
        let explicit = headers
            .iter()
            .any(|(n, _)| n == http::header::AUTHORIZATION);
        if authorization.len() + usize::from(explicit) > 1 {
            self.problem(
                path,
                "sets Authorization more than once; use only one of `bearer`, `basic` or an Authorization entry in `headers`",
            );
        }
        for (p, value) in authorization {
            if let Some(v) = self.header_value(&p, &value) {
                headers.push((http::header::AUTHORIZATION, v));
            }
        }
        if headers.is_empty() && self.problems.iter().all(|p| !p.path.starts_with(path)) {
            self.problem(path, "adds no header; set `headers`, `bearer` or `basic`");
        }
        Some(CredentialConfig::Header { headers })
    }

    fn header_value(&mut self, path: &str, value: &str) -> Option<HeaderValue> {
        match HeaderValue::from_str(value) {
            Ok(mut v) => {
                v.set_sensitive(true);
                Some(v)
            }
            Err(_) => {
                self.problem(
                    path,
                    "is not a valid header value (control characters or line breaks)",
                );
                None
            }
        }
    }

    fn header_map(
        &mut self,
        path: &str,
        raw: &BTreeMap<String, String>,
    ) -> Vec<(HeaderName, HeaderValue)> {
        let mut out = Vec::new();
        for (name, value) in raw {
            let p = format!("{path}.{name}");
            let Ok(header) = HeaderName::from_bytes(name.as_bytes()) else {
                self.problem(p, "is not a valid header name");
                continue;
            };
            if RESERVED_HEADERS.contains(&header.as_str()) || header.as_str().starts_with("proxy-")
            {
                self.problem(p, "is managed by countersign and cannot be set");
                continue;
            }
            let Some(secret) = self.secret(&p, value) else {
                continue;
            };
            if let Some(v) = self.header_value(&p, secret.expose()) {
                out.push((header, v));
            }
        }
        out
    }

    fn route(
        &mut self,
        i: usize,
        raw: RawRoute,
        credentials: &BTreeSet<String>,
    ) -> Option<RouteConfig> {
        let path = format!("route[{i}]");
        let name = match raw.name {
            Some(n) if valid_name(&n) => Some(n),
            Some(_) => {
                self.problem(
                    format!("{path}.name"),
                    "use letters, digits, `-`, `_` and `.` only",
                );
                None
            }
            None => {
                self.problem(format!("{path}.name"), "missing; every route needs a name");
                None
            }
        };
        let hosts: Vec<HostPattern> = raw
            .hosts
            .iter()
            .enumerate()
            .filter_map(|(j, h)| self.host_pattern(&format!("{path}.hosts[{j}]"), h))
            .collect();
        let listen = raw
            .listen
            .as_deref()
            .and_then(|l| self.socket_addr(&format!("{path}.listen"), l));
        if raw.hosts.is_empty() && raw.listen.is_none() {
            self.problem(
                format!("{path}.hosts"),
                "missing; a route needs `hosts` to match proxied requests, `listen` for its own listener, or both",
            );
        }
        let port = match raw.port {
            None => None,
            Some(p @ 1..=65535) => Some(p as u16),
            Some(_) => {
                self.problem(format!("{path}.port"), "must be between 1 and 65535");
                None
            }
        };
        let path_prefix = match raw.path_prefix {
            Some(p) if p.starts_with('/') && !p.contains(['?', '#']) => Some(p),
            Some(_) => {
                self.problem(
                    format!("{path}.path_prefix"),
                    "must start with `/` and hold no `?` or `#`",
                );
                None
            }
            None => None,
        };
        let methods = raw.methods.map(|ms| {
            ms.iter()
                .filter_map(|m| {
                    Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                        .map_err(|_| {
                            self.problem(
                                format!("{path}.methods"),
                                format!("`{m}` is not an HTTP method"),
                            )
                        })
                        .ok()
                })
                .collect::<Vec<_>>()
        });
        let upstream = match raw.upstream.as_deref() {
            Some(u) => self.upstream(&format!("{path}.upstream"), u),
            None => {
                self.problem(
                    format!("{path}.upstream"),
                    "missing; name where requests go, e.g. \"https://api.example.com\"",
                );
                None
            }
        };
        let ca_roots = match raw.ca_file.as_deref() {
            Some(f) => self.ca_file(&format!("{path}.ca_file"), f),
            None => Vec::new(),
        };
        if let Some(c) = &raw.credential {
            if !credentials.contains(c) {
                self.problem(
                    format!("{path}.credential"),
                    format!("no credential named `{c}`; define it as [credential.{c}]"),
                );
            }
        }
        let headers = self.header_map(&format!("{path}.headers"), &raw.headers);
        Some(RouteConfig {
            name: name?,
            hosts,
            port,
            path_prefix,
            methods,
            upstream: upstream?,
            ca_roots,
            credential: raw.credential,
            headers,
            listen,
        })
    }

    fn host_pattern(&mut self, path: &str, text: &str) -> Option<HostPattern> {
        let host = text.trim_end_matches('.').to_ascii_lowercase();
        let (suffix, name) = match host.strip_prefix("*.") {
            Some(rest) => (true, rest.to_string()),
            None => (false, host),
        };
        let valid_name = !name.is_empty()
            && name
                .split('.')
                .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        let ip = name
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .ok();
        match (suffix, ip) {
            (false, Some(ip)) => Some(HostPattern::Exact(ip.to_string())),
            (false, None) if valid_name => Some(HostPattern::Exact(name)),
            (true, None) if valid_name => Some(HostPattern::Suffix(name)),
            _ => {
                self.problem(
                    path,
                    format!("`{text}` is not a host name; write `api.example.com` or `*.example.com`, without a port"),
                );
                None
            }
        }
    }

    fn upstream(&mut self, path: &str, text: &str) -> Option<UpstreamTarget> {
        let uri: Uri = match text.parse() {
            Ok(u) => u,
            Err(e) => {
                self.problem(path, format!("`{text}` is not a URL: {e}"));
                return None;
            }
        };
        let scheme = match uri.scheme_str() {
            Some("https") => Scheme::Https,
            Some("http") => Scheme::Http,
            _ => {
                self.problem(
                    path,
                    format!("`{text}` must start with https:// or http://"),
                );
                return None;
            }
        };
        let Some(authority) = uri.authority() else {
            self.problem(path, format!("`{text}` has no host"));
            return None;
        };
        if authority.as_str().contains('@') {
            self.problem(path, "must not hold user info; use a credential instead");
            return None;
        }
        if uri.query().is_some() {
            self.problem(path, "must not hold a query string");
            return None;
        }
        let base_path = uri.path().trim_end_matches('/').to_string();
        Some(UpstreamTarget {
            scheme,
            host: authority
                .host()
                .trim_matches(['[', ']'])
                .to_ascii_lowercase(),
            port: authority.port_u16().unwrap_or(scheme.default_port()),
            base_path,
        })
    }

    fn ca_file(&mut self, path: &str, file: &str) -> Vec<CertificateDer<'static>> {
        let full = self.base_dir.join(file);
        self.other_files.push(full.clone());
        let pem = match std::fs::read(&full) {
            Ok(pem) => pem,
            Err(e) => {
                self.problem(path, format!("cannot read `{}`: {e}", full.display()));
                return Vec::new();
            }
        };
        let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(&pem).collect();
        match certs {
            Ok(certs) if !certs.is_empty() => certs,
            Ok(_) => {
                self.problem(
                    path,
                    format!("`{}` holds no PEM certificate", full.display()),
                );
                Vec::new()
            }
            Err(e) => {
                self.problem(path, format!("`{}` is not valid PEM: {e}", full.display()));
                Vec::new()
            }
        }
    }

    fn unique_names(&mut self, routes: &[(usize, RouteConfig)]) {
        let mut seen = BTreeMap::new();
        for (i, r) in routes {
            if let Some(first) = seen.insert(r.name.clone(), *i) {
                self.problem(
                    format!("route[{i}].name"),
                    format!("`{}` is already the name of route[{first}]", r.name),
                );
            }
        }
    }

    /// Two routes that match the same request with the same specificity
    /// would make the winner depend on file order: refuse them.
    fn no_ties(&mut self, routes: &[(usize, RouteConfig)]) {
        for (a, (i, ra)) in routes.iter().enumerate() {
            for (j, rb) in routes.iter().skip(a + 1) {
                let shared = ra.hosts.iter().find(|h| rb.hosts.contains(h));
                let methods_overlap = match (&ra.methods, &rb.methods) {
                    (None, None) => true,
                    (Some(x), Some(y)) => x.iter().any(|m| y.contains(m)),
                    _ => false,
                };
                if let Some(host) = shared {
                    if ra.port == rb.port && ra.path_prefix == rb.path_prefix && methods_overlap {
                        let host = match host {
                            HostPattern::Exact(h) => h.clone(),
                            HostPattern::Suffix(s) => format!("*.{s}"),
                        };
                        self.problem(
                            format!("route[{j}]"),
                            format!(
                                "matches the same requests as route[{i}] (`{}`) for host `{host}` with equal precedence; make one more specific (port, path_prefix or methods)",
                                ra.name
                            ),
                        );
                    }
                }
            }
        }
    }

    fn distinct_listeners(
        &mut self,
        proxy: Option<&ProxySettings>,
        routes: &[(usize, RouteConfig)],
    ) {
        let mut seen: BTreeMap<SocketAddr, String> = BTreeMap::new();
        if let Some(p) = proxy {
            seen.insert(p.listen, "proxy.listen".into());
        }
        for (i, r) in routes {
            let Some(addr) = r.listen else { continue };
            if addr.port() == 0 {
                continue;
            }
            let path = format!("route[{i}].listen");
            if let Some(other) = seen.insert(addr, path.clone()) {
                self.problem(path, format!("`{addr}` is already used by {other}"));
            }
        }
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}
