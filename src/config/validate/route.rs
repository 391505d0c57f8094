//! Rules for `[[route]]` tables, and the checks across routes (unique names,
//! no precedence ties, distinct listeners).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use http::{Method, Uri};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use super::super::raw::{RawCredentialNames, RawRoute};
use super::super::{
    AdminSettings, Appliance, HostPattern, ProxySettings, Resend, RouteConfig, Scheme,
    UpstreamTarget,
};
use super::Checker;
use crate::pki::identity::ClientIdentity;

impl Checker<'_> {
    pub(super) fn shape_routes(&mut self, value: toml::Value) -> Vec<Option<RawRoute>> {
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
                    self.shape_problem(&format!("route[{i}]"), &e);
                    None
                }
            })
            .collect()
    }

    pub(super) fn route(
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
        let path_prefix = raw
            .path_prefix
            .filter(|p| match crate::paths::prefix_problem(p) {
                Some(problem) => {
                    self.problem(format!("{path}.path_prefix"), problem);
                    false
                }
                None => true,
            });
        if raw.methods.as_ref().is_some_and(Vec::is_empty) {
            self.problem(
                format!("{path}.methods"),
                "is empty, so the route would take no request; list methods or leave `methods` out",
            );
        }
        if raw.port.is_some() && raw.hosts.is_empty() {
            self.problem(
                format!("{path}.port"),
                "only narrows `hosts` (the port the app asked for), and this route has none; remove it",
            );
        }
        let methods = raw.methods.map(|ms| {
            ms.iter()
                .enumerate()
                .filter_map(|(j, m)| {
                    Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                        .map_err(|_| {
                            self.problem(
                                format!("{path}.methods"),
                                format!("entry {j} is not an HTTP method"),
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
        let credential = match raw.credential {
            None => Vec::new(),
            Some(RawCredentialNames::One(name)) => vec![name],
            Some(RawCredentialNames::Many(names)) => {
                if names.is_empty() {
                    self.problem(
                        format!("{path}.credential"),
                        "is an empty list; name at least one credential, or remove the key",
                    );
                }
                names
            }
        };
        for c in &credential {
            if !credentials.contains(c) {
                let message = if credential.len() == 1 {
                    "names no credential defined here; define it as [credential.NAME]".to_string()
                } else {
                    format!("`{c}` names no credential defined here; define it as [credential.{c}]")
                };
                self.problem(format!("{path}.credential"), message);
            }
        }
        let headers = self.header_map(&format!("{path}.headers"), &raw.headers);
        let client_identity = self.client_identity(&path, raw.client_cert, raw.client_key);
        let sni =
            raw.sni.and_then(
                |name| match rustls_pki_types::ServerName::try_from(name.as_str()) {
                    Ok(_) => Some(name),
                    Err(_) => {
                        self.problem(format!("{path}.sni"), "is not a TLS server name");
                        None
                    }
                },
            );
        let resend_closed = match raw.resend_closed.as_deref() {
            None | Some("any") => Resend::Any,
            Some("idempotent") => Resend::Idempotent,
            Some("never") => Resend::Never,
            Some(_) => {
                self.problem(
                    format!("{path}.resend_closed"),
                    "must be \"any\", \"idempotent\" or \"never\"",
                );
                Resend::Any
            }
        };
        let appliance = match raw.appliance.as_deref() {
            None => None,
            Some("gmo-aozora") if listen.is_some() => Some(Appliance::GmoAozora),
            Some("gmo-aozora") => {
                self.problem(
                    format!("{path}.appliance"),
                    "needs `listen`: the appliance's endpoints are answered on the route's own listener (the app's base URL)",
                );
                None
            }
            Some(_) => {
                self.problem(format!("{path}.appliance"), "must be \"gmo-aozora\"");
                None
            }
        };
        if upstream.as_ref().is_some_and(|u| u.scheme == Scheme::Http)
            && (client_identity.is_some() || sni.is_some())
        {
            self.problem(
                format!("{path}.upstream"),
                "is http://, but client_cert/sni need TLS; use https://",
            );
        }
        if raw.http2 == Some(true) && upstream.as_ref().is_some_and(|u| u.scheme == Scheme::Http) {
            self.problem(
                format!("{path}.http2"),
                "needs an https:// upstream: h2 is offered by ALPN in the TLS handshake, and a plain-text upstream gets HTTP/1.1; remove the key",
            );
        }
        Some(RouteConfig {
            name: name?,
            hosts,
            port,
            path_prefix,
            methods,
            upstream: upstream?,
            ca_roots,
            credential,
            headers,
            listen,
            client_identity,
            sni,
            resend_closed,
            http2: raw.http2.unwrap_or(true),
            appliance,
        })
    }

    /// `client_cert` and `client_key` go together; both files are watched, and
    /// a mismatched, expired or unreadable pair is refused, naming the file.
    pub(super) fn client_identity(
        &mut self,
        path: &str,
        cert: Option<String>,
        key: Option<String>,
    ) -> Option<ClientIdentity> {
        let (cert, key) = match (cert, key) {
            (None, None) => return None,
            (Some(c), Some(k)) => (self.base_dir.join(c), self.base_dir.join(k)),
            (Some(_), None) => {
                self.problem(
                    format!("{path}.client_key"),
                    "missing; client_cert needs its key",
                );
                return None;
            }
            (None, Some(_)) => {
                self.problem(
                    format!("{path}.client_cert"),
                    "missing; client_key needs its certificate",
                );
                return None;
            }
        };
        self.other_files.push(cert.clone());
        self.other_files.push(key.clone());
        ClientIdentity::load(&cert, &key)
            .map_err(|e| self.problem(format!("{path}.client_cert"), e))
            .ok()
    }

    pub(super) fn host_pattern(&mut self, path: &str, text: &str) -> Option<HostPattern> {
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
                    "is not a host name; write `api.example.com` or `*.example.com`, without a port",
                );
                None
            }
        }
    }

    fn upstream(&mut self, path: &str, text: &str) -> Option<UpstreamTarget> {
        let uri: Uri = match text.parse() {
            Ok(u) => u,
            Err(e) => {
                self.problem(path, format!("is not a URL: {e}"));
                return None;
            }
        };
        let scheme = match uri.scheme_str() {
            Some("https") => Scheme::Https,
            Some("http") => Scheme::Http,
            _ => {
                self.problem(path, "must start with https:// or http://");
                return None;
            }
        };
        let Some(authority) = uri.authority() else {
            self.problem(path, "has no host");
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

    pub(super) fn ca_file(&mut self, path: &str, file: &str) -> Vec<CertificateDer<'static>> {
        let full = self.base_dir.join(file);
        self.other_files.push(full.clone());
        let pem = match crate::files::read(&full) {
            Ok(pem) => pem,
            Err(e) => {
                self.problem(path, crate::files::cannot_read("the CA file", &full, &e));
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

    pub(super) fn unique_names(&mut self, routes: &[(usize, RouteConfig)]) {
        let mut seen = BTreeMap::new();
        for (i, r) in routes {
            if let Some(first) = seen.insert(r.name.clone(), *i) {
                self.problem(
                    format!("route[{i}].name"),
                    format!("is already the name of route[{first}]"),
                );
            }
        }
    }

    /// Two routes that match the same request with the same specificity
    /// would make the winner depend on file order: refuse them.
    pub(super) fn no_ties(&mut self, routes: &[(usize, RouteConfig)]) {
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
                        let k = rb.hosts.iter().position(|h| h == host).unwrap_or(0);
                        self.problem(
                            format!("route[{j}]"),
                            format!(
                                "matches the same requests as route[{i}] for route[{j}].hosts[{k}] with equal precedence; make one more specific (port, path_prefix or methods)",
                            ),
                        );
                    }
                }
            }
        }
    }

    pub(super) fn distinct_listeners(
        &mut self,
        proxy: Option<&ProxySettings>,
        admin: Option<&AdminSettings>,
        routes: &[(usize, RouteConfig)],
    ) {
        let mut seen: BTreeMap<SocketAddr, String> = BTreeMap::new();
        if let Some(p) = proxy {
            seen.insert(p.listen, "proxy.listen".into());
        }
        let admin = admin.map_or(Vec::new(), |a| {
            [
                ("admin.listen", Some(a.listen)),
                ("admin.control_listen", Some(a.control_listen)),
                ("admin.browser_listen", a.browser_listen.own()),
            ]
            .into_iter()
            .filter_map(|(key, addr)| Some((key, addr?)))
            .collect()
        });
        for (key, addr) in admin {
            if addr.port() == 0 {
                continue;
            }
            if let Some(other) = seen.insert(addr, key.into()) {
                let share = if key == "admin.browser_listen" && other == "admin.control_listen" {
                    "; to serve the browser endpoints on the control listener, write browser_listen = \"control\""
                } else {
                    ""
                };
                self.problem(key, format!("is already used by {other}{share}"));
            }
        }
        for (i, r) in routes {
            let Some(addr) = r.listen else { continue };
            if addr.port() == 0 {
                continue;
            }
            let path = format!("route[{i}].listen");
            if let Some(other) = seen.insert(addr, path.clone()) {
                self.problem(path, format!("is already used by {other}"));
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
