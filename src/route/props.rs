//! Property: no path countersign accepts for a route with `path_prefix` P
//! names anything outside P at a lenient upstream. The upstream is modelled
//! here on its own, the way such servers behave, not by countersign's code:
//! it decodes percent-escapes until nothing changes, ends the path at a
//! decoded `?`, `#` or NUL, reads `\` as `/`, drops `;params` from each
//! segment, merges empty segments, resolves `.` and `..`, and compares
//! without regard to case.

use http::Method;
use proptest::prelude::*;

use super::{takes, Router};
use crate::config::{self, RouteConfig};
use crate::paths::{check as check_path, prefix_problem};

/// One layer of `%XX`; a malformed escape stays.
fn decode_once(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let pair = bytes.get(i + 1..i + 3).and_then(|h| {
            let h = std::str::from_utf8(h).ok()?;
            u8::from_str_radix(h, 16)
                .ok()
                .filter(|_| h.bytes().all(|b| b.is_ascii_hexdigit()))
        });
        match (bytes[i], pair) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// The segments a lenient upstream serves for `path`, lower-cased.
fn upstream_view(path: &str) -> Vec<String> {
    let mut bytes = path.as_bytes().to_vec();
    loop {
        let next = decode_once(&bytes);
        if next == bytes {
            break;
        }
        bytes = next;
    }
    let end = bytes
        .iter()
        .position(|b| matches!(b, b'?' | b'#' | 0))
        .unwrap_or(bytes.len());
    let text = String::from_utf8_lossy(&bytes[..end])
        .replace('\\', "/")
        .to_lowercase();
    let mut stack: Vec<String> = Vec::new();
    for segment in text.split('/') {
        let segment = segment.split(';').next().unwrap_or("");
        match segment {
            "" | "." => {}
            ".." => {
                stack.pop();
            }
            s => stack.push(s.to_string()),
        }
    }
    stack
}

fn under(path: &str, prefix: &str) -> bool {
    let view = upstream_view(path);
    let want: Vec<String> = prefix
        .to_lowercase()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    view.starts_with(&want)
}

const PREFIXES: &[&str] = &["/", "/v1", "/v1/", "/v1/x"];

/// The same prefixes, as routed by host and as a route's own listener.
fn routes() -> Vec<RouteConfig> {
    let toml: String = PREFIXES
        .iter()
        .enumerate()
        .map(|(i, p)| {
            format!("[[route]]\nname = \"r{i}\"\nhosts = [\"h{i}.test\"]\npath_prefix = \"{p}\"\nupstream = \"https://u.test\"\n")
        })
        .collect();
    let dir = std::env::temp_dir();
    config::parse(&toml, &dir).expect("valid config").routes
}

const TOKENS: &[&str] = &[
    "v1", "V1", "x", "admin", "a..b", "/", "//", "\\", ".", "..", "%2e", "%2E", "%252e", "%25",
    "%2f", "%2F", "%252f", "%5c", "%5C", "%3b", "%3B", ";", ";x=1", "%00", "%3f", "%23", "%",
    "%u002e", "%c0%ae", " ", "%20",
];

fn path() -> impl Strategy<Value = String> {
    (
        prop::sample::select(&["/", "/v1", "/v1/", "/v1/x"][..]),
        prop::collection::vec(prop::sample::select(TOKENS), 0..10),
    )
        .prop_map(|(start, tokens)| format!("{start}{}", tokens.concat()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn an_accepted_path_stays_under_its_prefix_upstream(path in path()) {
        let routes = routes();
        let router = Router::new(&routes);
        let accepted = check_path(&path).is_ok();
        for (i, route) in routes.iter().enumerate() {
            let prefix = route.path_prefix.as_deref().unwrap_or("/");
            let by_host = router.lookup(&format!("h{i}.test"), 443, &path, &Method::GET) == Some(i);
            let by_listener = takes(route, &path, &Method::GET);
            prop_assert_eq!(by_host, by_listener, "{}", path);
            if accepted && by_listener {
                prop_assert!(under(&path, prefix), "{} escapes {} upstream: {:?}", path, prefix, upstream_view(&path));
            }
        }
    }

    #[test]
    fn any_text_is_checked_without_panicking(path in any::<String>()) {
        let _ = check_path(&path);
        let _ = prefix_problem(&path);
    }
}

#[test]
fn the_model_resolves_what_tomcat_and_iis_resolve() {
    assert_eq!(upstream_view("/v1/..;/admin"), ["admin"]);
    assert_eq!(upstream_view("/v1/%252e%252e/Admin"), ["admin"]);
    assert_eq!(upstream_view("/v1\\..\\admin"), ["admin"]);
    assert_eq!(upstream_view("/v1/..%3f/x"), Vec::<String>::new());
    assert!(under("/v1/a..b", "/v1"));
    assert!(check_path("/v1/a..b").is_ok());
}
