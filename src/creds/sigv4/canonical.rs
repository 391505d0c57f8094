//! SigV4's canonical request: the URI path (normalised and encoded once
//! more for every service but S3, decoded and encoded once for S3), the
//! query (each name and value encoded, pairs sorted), the headers
//! (lowercased names, trimmed values with runs of spaces folded, sorted,
//! repeated headers joined by commas), the signed header list and the
//! payload hash.

use std::collections::BTreeMap;

/// Encodes every byte but the unreserved ones (`A-Z a-z 0-9 - . _ ~`), and
/// `/` too unless `keep_slash`; hex digits upper case, as SigV4 wants.
pub fn encode(bytes: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes; a `%` not followed by two hex digits stays as it
/// is. `+` stays `+` (it means a space only in forms).
pub fn decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// The canonical URI of `path` as it goes on the wire. S3 signs each
/// segment decoded and encoded once, unnormalised (`a//b` and `.` are
/// object key characters there); every other service removes `.`, `..`
/// and empty segments and encodes the wire path again (so `%20` becomes
/// `%2520`), as AWS's SDKs do.
pub fn uri(path: &str, s3: bool) -> String {
    if path.is_empty() {
        return "/".into();
    }
    if s3 {
        return path
            .split('/')
            .map(|segment| encode(&decode(segment), false))
            .collect::<Vec<_>>()
            .join("/");
    }
    encode(normalize(path).as_bytes(), true)
}

/// RFC 3986 dot-segment removal, also dropping empty segments.
fn normalize(path: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                kept.pop();
            }
            s => kept.push(s),
        }
    }
    let lead = if path.starts_with('/') { "/" } else { "" };
    let trail = if path.ends_with('/') && !kept.is_empty() {
        "/"
    } else {
        ""
    };
    format!("{lead}{}{trail}", kept.join("/"))
}

/// The canonical query: every name and value decoded and encoded again,
/// the pairs sorted by name, then value.
pub fn query(query: Option<&str>) -> String {
    let mut pairs: Vec<(String, String)> = query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (encode(&decode(k), false), encode(&decode(v), false))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// A header value trimmed, with runs of spaces and tabs folded to one space.
fn fold(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let mut space = false;
    for &b in value {
        if b == b' ' || b == b'\t' || b == b'\r' || b == b'\n' {
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            out.push(b' ');
        }
        space = false;
        out.push(b);
    }
    out
}

/// Canonical headers (each `name:value\n`) and the signed header list, from
/// `(lowercase name, value)` pairs in the order they are sent.
pub fn headers<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> (Vec<u8>, String) {
    let mut by_name: BTreeMap<&str, Vec<Vec<u8>>> = BTreeMap::new();
    for (name, value) in pairs {
        by_name.entry(name).or_default().push(fold(value));
    }
    let mut canonical = Vec::new();
    for (name, values) in &by_name {
        canonical.extend_from_slice(name.as_bytes());
        canonical.push(b':');
        canonical.extend_from_slice(&values.join(&b","[..]));
        canonical.push(b'\n');
    }
    let signed = by_name.keys().copied().collect::<Vec<_>>().join(";");
    (canonical, signed)
}

/// For `countersign sign`: the canonical request and the string to sign,
/// line by line, to lay beside what the service says it computed (AWS's
/// `SignatureDoesNotMatch` answer carries both). The signing key is never
/// shown.
pub fn explain(canonical_request: &[u8], string_to_sign: &str) -> Vec<String> {
    let mut lines = vec!["canonical request:".to_string()];
    lines.extend(
        String::from_utf8_lossy(canonical_request)
            .split('\n')
            .map(|l| format!("  {l}")),
    );
    lines.push("string to sign:".to_string());
    lines.extend(string_to_sign.split('\n').map(|l| format!("  {l}")));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn paths() {
        assert_eq!(uri("", false), "/");
        assert_eq!(uri("//", false), "/");
        assert_eq!(uri("//example//", false), "/example/");
        assert_eq!(uri("/example/..", false), "/");
        assert_eq!(uri("/example1/example2/../..", false), "/");
        assert_eq!(uri("/./", false), "/");
        assert_eq!(uri("/./example", false), "/example");
        assert_eq!(uri("/example space/", false), "/example%20space/");
        assert_eq!(uri("/a%20b", false), "/a%2520b");
        assert_eq!(uri("/a%20b//c/./d", true), "/a%20b//c/./d");
        assert_eq!(uri("/a:b%2Fc+d", true), "/a%3Ab%2Fc%2Bd");
    }

    #[test]
    fn queries() {
        assert_eq!(query(None), "");
        assert_eq!(
            query(Some("Param2=value2&Param1=value1")),
            "Param1=value1&Param2=value2"
        );
        assert_eq!(
            query(Some("Param1=value2&Param1=Value1")),
            "Param1=Value1&Param1=value2"
        );
        assert_eq!(query(Some("Param1&a=%7e%20")), "Param1=&a=~%20");
        assert_eq!(query(Some("k=a/b:c")), "k=a%2Fb%3Ac");
    }

    #[test]
    fn header_values_are_trimmed_and_folded() {
        let (c, s) = headers([
            ("my-header1", &b"  value1   two\tthree "[..]),
            ("host", b"h"),
            ("my-header1", b"x"),
        ]);
        assert_eq!(c, b"host:h\nmy-header1:value1 two three,x\n");
        assert_eq!(s, "host;my-header1");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn decode_undoes_encode(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let e = encode(&bytes, false);
            prop_assert!(e.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
            prop_assert_eq!(decode(&e), bytes);
        }

        #[test]
        fn any_query_canonicalises_to_sorted_encoded_pairs(q in "[a-zA-Z0-9%=&+ ._~:/-]{0,40}") {
            let c = query(Some(&q));
            let pairs: Vec<&str> = c.split('&').filter(|p| !p.is_empty()).collect();
            let mut sorted = pairs.clone();
            sorted.sort_by(|a, b| {
                let (ka, va) = a.split_once('=').unwrap();
                let (kb, vb) = b.split_once('=').unwrap();
                (ka, va).cmp(&(kb, vb))
            });
            prop_assert_eq!(pairs, sorted);
            prop_assert_eq!(query(Some(&c)), c);
        }
    }
}
