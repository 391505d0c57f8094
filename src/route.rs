//! Route lookup: which route, if any, a request's (host, port, path, method)
//! belongs to. Pure and I/O-free; the most specific rule wins, and validation
//! has already refused rules that tie. Paths are checked first, on every
//! listener, by `crate::paths`.

#[cfg(test)]
mod props;

use http::Method;

use crate::config::{HostPattern, RouteConfig};

/// The compiled rules of one snapshot.
#[derive(Debug, Default)]
pub struct Router {
    /// One entry per (route, host pattern), most specific first.
    entries: Vec<Entry>,
}

#[derive(Debug)]
struct Entry {
    route: usize,
    host: HostPattern,
    port: Option<u16>,
    path_prefix: Option<String>,
    methods: Option<Vec<Method>>,
}

impl Entry {
    /// Exact host beats wildcard, a longer wildcard beats a shorter one, then
    /// an explicit port, a longer path prefix, and an explicit method list.
    fn specificity(&self) -> (bool, usize, bool, usize, bool) {
        let (exact, host_len) = match &self.host {
            HostPattern::Exact(h) => (true, h.len()),
            HostPattern::Suffix(s) => (false, s.len()),
        };
        (
            exact,
            host_len,
            self.port.is_some(),
            self.path_prefix.as_ref().map_or(0, String::len),
            self.methods.is_some(),
        )
    }

    fn matches(&self, host: &str, port: u16, path: &str, method: &Method) -> bool {
        self.host.matches(host)
            && self.port.is_none_or(|p| p == port)
            && rule_takes(
                self.path_prefix.as_deref(),
                self.methods.as_deref(),
                path,
                method,
            )
    }
}

/// `/v2` matches `/v2` and `/v2/codes` but not `/v20`. Byte for byte: the
/// path is forwarded as it is, so `/V2`, `//v2` and `/v2%2Fx` do not match.
fn path_has_prefix(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || prefix.ends_with('/') || rest.starts_with('/'),
        None => false,
    }
}

/// Whether `route` takes a request for `path` and `method` by its
/// `path_prefix` and `methods` (its hosts and port aside). Host lookup and
/// a route's own listener both decide by this.
pub fn takes(route: &RouteConfig, path: &str, method: &Method) -> bool {
    rule_takes(
        route.path_prefix.as_deref(),
        route.methods.as_deref(),
        path,
        method,
    )
}

fn rule_takes(
    prefix: Option<&str>,
    methods: Option<&[Method]>,
    path: &str,
    method: &Method,
) -> bool {
    prefix.is_none_or(|p| path_has_prefix(path, p)) && methods.is_none_or(|ms| ms.contains(method))
}

impl Router {
    pub fn new(routes: &[RouteConfig]) -> Router {
        let mut entries: Vec<Entry> = routes
            .iter()
            .enumerate()
            .flat_map(|(i, r)| {
                r.hosts.iter().map(move |h| Entry {
                    route: i,
                    host: h.clone(),
                    port: r.port,
                    path_prefix: r.path_prefix.clone(),
                    methods: r.methods.clone(),
                })
            })
            .collect();
        entries.sort_by_key(|e| std::cmp::Reverse(e.specificity()));
        Router { entries }
    }

    /// Whether any route takes requests for `host:port`, whatever their path
    /// or method: such CONNECT tunnels are intercepted.
    pub fn routes_host(&self, host: &str, port: u16) -> bool {
        self.entries
            .iter()
            .any(|e| e.port.is_none_or(|p| p == port) && e.host.matches(host))
    }

    /// The index (into the routes it was built from) of the best match.
    /// `host` must already be lower-case without a trailing dot.
    pub fn lookup(&self, host: &str, port: u16, path: &str, method: &Method) -> Option<usize> {
        self.entries
            .iter()
            .find(|e| e.matches(host, port, path, method))
            .map(|e| e.route)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    fn router(toml: &str) -> (Router, Vec<String>) {
        let dir = std::env::temp_dir();
        let cfg = config::parse(toml, &dir).expect("valid config");
        let names = cfg.routes.iter().map(|r| r.name.clone()).collect();
        (Router::new(&cfg.routes), names)
    }

    fn pick(
        r: &(Router, Vec<String>),
        host: &str,
        port: u16,
        path: &str,
        m: Method,
    ) -> Option<String> {
        r.0.lookup(host, port, path, &m).map(|i| r.1[i].clone())
    }

    const RULES: &str = r#"
        [[route]]
        name = "wild"
        hosts = ["*.example.com"]
        upstream = "https://wild.example.com"
        [[route]]
        name = "deeper-wild"
        hosts = ["*.api.example.com"]
        upstream = "https://api.example.com"
        [[route]]
        name = "exact"
        hosts = ["api.example.com"]
        upstream = "https://api.example.com"
        [[route]]
        name = "exact-v2"
        hosts = ["api.example.com"]
        path_prefix = "/v2"
        upstream = "https://api.example.com"
        [[route]]
        name = "exact-v2-post"
        hosts = ["api.example.com"]
        path_prefix = "/v2"
        methods = ["post"]
        upstream = "https://api.example.com"
        [[route]]
        name = "exact-8443"
        hosts = ["api.example.com"]
        port = 8443
        upstream = "https://api.example.com"
    "#;

    #[test]
    fn most_specific_rule_wins() {
        let r = router(RULES);
        assert_eq!(
            pick(&r, "api.example.com", 80, "/v1/x", Method::GET).as_deref(),
            Some("exact")
        );
        assert_eq!(
            pick(&r, "api.example.com", 80, "/v2/x", Method::GET).as_deref(),
            Some("exact-v2")
        );
        assert_eq!(
            pick(&r, "api.example.com", 80, "/v2", Method::POST).as_deref(),
            Some("exact-v2-post")
        );
        assert_eq!(
            pick(&r, "api.example.com", 8443, "/v2/x", Method::POST).as_deref(),
            Some("exact-8443")
        );
        assert_eq!(
            pick(&r, "x.api.example.com", 80, "/", Method::GET).as_deref(),
            Some("deeper-wild")
        );
        assert_eq!(
            pick(&r, "www.example.com", 80, "/", Method::GET).as_deref(),
            Some("wild")
        );
    }

    #[test]
    fn wildcards_and_prefixes_respect_boundaries() {
        let r = router(RULES);
        assert_eq!(pick(&r, "example.com", 80, "/", Method::GET), None);
        assert_eq!(pick(&r, "badexample.com", 80, "/", Method::GET), None);
        assert_eq!(
            pick(&r, "api.example.com", 80, "/v20", Method::GET).as_deref(),
            Some("exact")
        );
        assert!(path_has_prefix("/v2/", "/v2/"));
        assert!(path_has_prefix("/v2/a", "/v2/"));
    }
}
