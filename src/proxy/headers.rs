//! Header hygiene: hop-by-hop and `Proxy-*` headers belong to one connection
//! and are never forwarded, in either direction.

use http::header::{HeaderMap, HeaderName, CONNECTION};

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Removes hop-by-hop headers, those named in `Connection`, and every
/// `Proxy-*` header (credentials meant for countersign itself).
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Split on the raw bytes: a value with a non-ASCII byte elsewhere must
    // not keep the headers it names.
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .filter_map(|t| HeaderName::from_bytes(t.trim_ascii()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
    let proxy: Vec<HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().starts_with("proxy-"))
        .cloned()
        .collect();
    for name in proxy {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_value_with_odd_bytes_still_removes_what_it_names() {
        let mut h = HeaderMap::new();
        let odd = http::HeaderValue::from_bytes(b"x-trace, caf\xe9").unwrap();
        h.insert("connection", odd);
        h.insert("x-trace", "1".parse().unwrap());
        strip_hop_by_hop(&mut h);
        assert!(h.is_empty(), "{h:?}");
    }

    #[test]
    fn strips_listed_named_and_proxy_headers() {
        let mut h = HeaderMap::new();
        h.insert("connection", "close, x-trace".parse().unwrap());
        h.insert("x-trace", "1".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert("transfer-encoding", "chunked".parse().unwrap());
        h.insert("proxy-authorization", "Basic abc".parse().unwrap());
        h.insert("proxy-foo", "x".parse().unwrap());
        h.insert("content-type", "application/json".parse().unwrap());
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("content-type"));
    }
}
