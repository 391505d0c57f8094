//! Raw TOML -> validated `Config`. Every check runs, and every problem is
//! reported with its key path, so one `countersign check` shows all of them.
//! Shared checks live here; `credential` and `route` hold their sections' rules.

mod admin;
mod appliance;
mod aws;
mod connect;
mod credential;
mod hmac;
mod http_sig;
mod issued;
mod jws;
mod limits;
mod oauth2;
mod proxy;
mod route;
mod shape;
mod stack;
mod store;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::{HeaderName, HeaderValue};

use super::raw::{
    RawAdmin, RawConnect, RawEgress, RawIntercept, RawProxy, RawRoute, RawSize, RawStore,
};
use super::secret::{Env, ProcessEnv, SecretResolver};
use super::units::{parse_duration, parse_size};
use super::StoreConfig;
use super::{Config, ConfigError, CredentialConfig, Grant, Problem};
use std::sync::Arc;

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
    /// `[store]`, once checked: credentials keep their state there.
    shared_store: Option<Arc<StoreConfig>>,
}

pub fn validate(text: &str, base_dir: &Path) -> Result<Config, ConfigError> {
    validate_with_env(text, base_dir, &ProcessEnv)
}

/// `validate`, with `${env:NAME}` read from `env`.
pub(crate) fn validate_with_env(
    text: &str,
    base_dir: &Path,
    env: &dyn Env,
) -> Result<Config, ConfigError> {
    let table: toml::Table = match text.parse() {
        Ok(table) => table,
        Err(e) => return Err(syntax_error(text, &e)),
    };
    let mut c = Checker {
        problems: Vec::new(),
        secrets: SecretResolver::new(base_dir, env),
        base_dir,
        other_files: Vec::new(),
        shared_store: None,
    };

    let mut raw_proxy = RawProxy::default();
    let mut raw_intercept: Option<RawIntercept> = None;
    let mut raw_connect = RawConnect::default();
    let mut raw_egress = RawEgress::default();
    let mut raw_admin = RawAdmin::default();
    let mut raw_store: Option<RawStore> = None;
    let mut raw_routes: Vec<Option<RawRoute>> = Vec::new();
    let mut raw_creds: Vec<(String, toml::Value)> = Vec::new();
    for (key, value) in table {
        match key.as_str() {
            "proxy" => raw_proxy = c.section(&key, value),
            "intercept" => raw_intercept = Some(c.section(&key, value)),
            "connect" => raw_connect = c.section(&key, value),
            "egress" => raw_egress = c.section(&key, value),
            "admin" => raw_admin = c.section(&key, value),
            "store" => raw_store = Some(c.section(&key, value)),
            "route" => raw_routes = c.shape_routes(value),
            "credential" => match value {
                toml::Value::Table(t) => raw_creds = t.into_iter().collect(),
                _ => c.problem("credential", "must be tables: [credential.NAME]"),
            },
            other => c.problem(
                other,
                "unknown section; expected [proxy], [admin], [store], [intercept], [connect], [egress], [[route]] or [credential.NAME]",
            ),
        }
    }

    let proxy = c.proxy(raw_proxy);
    // Before the credentials: with a shared store they need no files.
    c.shared_store = raw_store.and_then(|r| c.store(r)).map(Arc::new);
    let intercept = raw_intercept.and_then(|r| c.intercept(r));
    let tunnel = c.tunnel(raw_connect);
    let egress = c.egress(raw_egress);
    let defined: BTreeSet<String> = raw_creds.iter().map(|(n, _)| n.clone()).collect();
    let mut credentials = BTreeMap::new();
    let mut required = BTreeSet::new();
    for (name, mut value) in raw_creds {
        if c.take_required(&name, &mut value) {
            required.insert(name.clone());
        }
        if let Some(cred) = c.credential(&name, value) {
            credentials.insert(name, cred);
        }
    }
    let sessions = credentials.values().any(|c| match c {
        CredentialConfig::OAuth2(o) => matches!(o.grant, Grant::AuthorizationCode(_)),
        _ => false,
    });
    let admin = c.admin(raw_admin, sessions);
    c.distinct_token_stores(&credentials);
    c.jws_within_budget(proxy.as_ref(), &credentials);
    let mut routes = Vec::new();
    for (i, raw) in raw_routes.into_iter().enumerate() {
        if let Some(route) = raw.and_then(|r| c.route(i, r, &defined)) {
            routes.push((i, route));
        }
    }
    c.unique_names(&routes);
    c.stacks(&routes, &credentials);
    c.bound_certificates(&routes, &credentials);
    c.appliances(&routes, &credentials);
    c.no_ties(&routes);
    c.distinct_listeners(proxy.as_ref(), admin.as_ref(), &routes);

    let mut watched_files = c.secrets.into_files();
    watched_files.extend(c.other_files);
    match (proxy, admin) {
        (Some(proxy), Some(admin)) if c.problems.is_empty() => Ok(Config {
            proxy,
            routes: routes.into_iter().map(|(_, r)| r).collect(),
            credentials,
            intercept,
            tunnel,
            egress,
            admin,
            required,
            watched_files,
            store: c.shared_store,
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
            message: format!("TOML syntax error: {}", shape::describe(e.message())),
        }],
        watched_files: Vec::new(),
    }
}

impl Checker<'_> {
    /// Removes the `required` flag every credential type accepts.
    fn take_required(&mut self, name: &str, value: &mut toml::Value) -> bool {
        let Some(table) = value.as_table_mut() else {
            return false;
        };
        match table.remove("required") {
            None => false,
            Some(toml::Value::Boolean(b)) => b,
            Some(_) => {
                self.problem(
                    format!("credential.{name}.required"),
                    "must be true or false",
                );
                false
            }
        }
    }

    /// A whole section's shape; a shape error leaves the defaults in place.
    fn section<T: serde::de::DeserializeOwned + Default>(
        &mut self,
        key: &str,
        value: toml::Value,
    ) -> T {
        value.try_into().unwrap_or_else(|e: toml::de::Error| {
            self.shape_problem(key, &e);
            T::default()
        })
    }

    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.into(),
            message: message.into(),
        });
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
                    "is not an address; write IP:PORT, e.g. \"127.0.0.1:3128\"",
                )
            })
            .ok()
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

    /// The URL of an endpoint countersign POSTs to (a token endpoint, a key
    /// issuer), at `path`: present, http(s), with a host, and no user info
    /// (`credentials` says where those belong instead).
    fn endpoint_url(
        &mut self,
        path: &str,
        value: Option<&str>,
        example: &str,
        credentials: &str,
    ) -> Option<http::Uri> {
        let Some(text) = value else {
            self.problem(path, format!("missing; the endpoint, e.g. \"{example}\""));
            return None;
        };
        let uri: http::Uri = match text.parse() {
            Ok(u) => u,
            Err(e) => {
                self.problem(path, format!("is not a URL: {e}"));
                return None;
            }
        };
        let problem = match (uri.scheme_str(), uri.authority()) {
            (Some("http" | "https"), Some(a)) if a.as_str().contains('@') => {
                format!("must not hold user info; use {credentials}")
            }
            (Some("http" | "https"), Some(_)) => return Some(uri),
            (Some("http" | "https"), None) => "has no host".to_string(),
            _ => "must start with https:// or http://".to_string(),
        };
        self.problem(path, problem);
        None
    }

    /// A table of named values that may be references (`${env:}`, `${file:}`),
    /// each at `{path}.{name}`. `refuse` names what is wrong with a name, if
    /// anything. `None` after reporting every problem.
    fn secret_table<'a>(
        &mut self,
        path: &str,
        table: impl IntoIterator<Item = (&'a String, &'a String)>,
        refuse: impl Fn(&str) -> Option<&'static str>,
    ) -> Option<Vec<(String, super::Secret)>> {
        let mut fields = Vec::new();
        let mut ok = true;
        for (name, value) in table {
            let p = format!("{path}.{name}");
            if let Some(problem) = refuse(name) {
                self.problem(p, problem);
                ok = false;
                continue;
            }
            match self.secret(&p, value) {
                Some(s) => fields.push((name.clone(), s)),
                None => ok = false,
            }
        }
        ok.then_some(fields)
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
}

#[cfg(test)]
mod props;
#[cfg(test)]
mod recipes;
#[cfg(test)]
mod tests;
