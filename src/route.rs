//! Route lookup: which route, if any, a request's (host, port, path, method)
//! belongs to. Pure and I/O-free; the most specific rule wins, and validation
//! has already refused rules that tie.

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
            && self
                .path_prefix
                .as_deref()
                .is_none_or(|prefix| path_has_prefix(path, prefix))
            && self.methods.as_ref().is_none_or(|ms| ms.contains(method))
    }
}

/// `/v2` matches `/v2` and `/v2/codes` but not `/v20`.
fn path_has_prefix(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || prefix.ends_with('/') || rest.starts_with('/'),
        None => false,
    }
}

/// Whether `path` has a `.` or `..` segment, also when percent-encoded or
/// set off by an encoded slash or a backslash. An upstream that resolves
/// them would serve a path outside the route's `path_prefix` with the
/// route's credential (`/v2/../admin`). Clients remove dot segments before
/// sending (RFC 3986 section 5.2.4), so refusing them costs nothing.
pub fn has_dot_segment(path: &str) -> bool {
    let plain = path
        .to_ascii_lowercase()
        .replace("%2e", ".")
        .replace("%2f", "/")
        .replace("%5c", "/")
        .replace('\\', "/");
    plain.split('/').any(|s| s == "." || s == "..")
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
    #[test]
    fn dot_segments_are_found_in_every_spelling() {
        use super::has_dot_segment;
        for bad in [
            "/v2/../admin",
            "/v2/..",
            "/v2/./x",
            "/v2/%2e%2e/admin",
            "/v2/%2E./admin",
            "/v2%2f..%2fadmin",
            "/v2\\..\\admin",
            "/v2%5c..%5cadmin",
        ] {
            assert!(has_dot_segment(bad), "{bad}");
        }
        for good in ["/v2/codes", "/v2/a..b", "/v2/.well-known/x", "/", "/v2/..."] {
            assert!(!has_dot_segment(good), "{good}");
        }
    }

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
