//! An issued key must never reach the app. An upstream that echoes the
//! request URI back in a response header (a redirect's `Location`,
//! `Content-Location`, `Link`, `Refresh`, or a header of its own such as
//! `X-Request-URL`) would hand the app a key placed in the query. So every
//! response header is searched for the key, as sent and percent-decoded
//! (once or twice): in a URL's query the key's parameter is removed and the
//! rest kept, so a redirect still works (followed through countersign, it
//! gets the current key again); a header that still holds the key after
//! that is dropped.

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::creds::{form, query};

/// Removes `key` from every header of `headers`; `param` is the query
/// parameter the key was sent in, if it went in the query. Returns the
/// names of the headers changed or dropped.
pub fn scrub(headers: &mut HeaderMap, key: &[u8], param: Option<&str>) -> Vec<HeaderName> {
    if key.is_empty() || !headers.values().any(|v| carries(v.as_bytes(), key)) {
        return Vec::new();
    }
    let mut touched = Vec::new();
    let mut kept = HeaderMap::with_capacity(headers.len());
    let mut last: Option<HeaderName> = None;
    for (name, value) in std::mem::take(headers) {
        let name = match name {
            Some(n) => {
                last = Some(n.clone());
                n
            }
            None => match &last {
                Some(n) => n.clone(),
                None => continue,
            },
        };
        if !carries(value.as_bytes(), key) {
            kept.append(name, value);
            continue;
        }
        let rewritten = param
            .and_then(|p| value.to_str().ok().map(|text| without_param(text, p)))
            .filter(|text| !carries(text.as_bytes(), key))
            .and_then(|text| HeaderValue::from_str(&text).ok());
        if let Some(v) = rewritten {
            kept.append(name.clone(), v);
        }
        if !touched.contains(&name) {
            touched.push(name);
        }
    }
    *headers = kept;
    touched
}

/// Whether `text` holds `key` as it is or percent-decoded once or twice.
fn carries(text: &[u8], key: &[u8]) -> bool {
    let contains = |hay: &[u8]| hay.windows(key.len()).any(|w| w == key);
    if contains(text) {
        return true;
    }
    let Ok(text) = std::str::from_utf8(text) else {
        return false;
    };
    let once = form::decode(text);
    contains(&once) || std::str::from_utf8(&once).is_ok_and(|t| contains(&form::decode(t)))
}

/// `text` with every `param` pair taken out of each query in it. A query
/// starts after `?` and ends at `#`, `>`, a quote or white space (the ends
/// of a URL in `Location`, `Link: <...>` and `Refresh: 0; url=...`).
fn without_param(text: &str, param: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(q) = rest.find('?') {
        out.push_str(&rest[..q]);
        let after = &rest[q + 1..];
        let end = after
            .find(|c: char| matches!(c, '#' | '>' | '"' | '\'') || c.is_ascii_whitespace())
            .unwrap_or(after.len());
        let pairs: Vec<&str> = after[..end]
            .split('&')
            .filter(|pair| !query::is_named(pair, param))
            .collect();
        if !pairs.iter().all(|p| p.is_empty()) {
            out.push('?');
            out.push_str(&pairs.join("&"));
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY: &[u8] = b"ak1+Qz/=";

    fn scrubbed(pairs: &[(&str, &str)]) -> (HeaderMap, Vec<HeaderName>) {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        let touched = scrub(&mut h, KEY, Some("authorization"));
        (h, touched)
    }

    #[test]
    fn urls_lose_the_key_parameter_and_keep_the_rest() {
        let (h, touched) = scrubbed(&[
            (
                "location",
                "http://u.test/r?d=1&authorization=ak1%2BQz%2F%3D&u=2#top",
            ),
            ("content-location", "/r?authorization=ak1%2bQz%2f%3d"),
            (
                "link",
                "</r?page=2&authorization=ak1%2BQz%2F%3D>; rel=\"next\", </r?page=1>; rel=\"prev\"",
            ),
            ("refresh", "0; url=/r?authoriz%61tion=ak1%2BQz%2F%3D&x=1"),
            ("content-type", "text/plain"),
        ]);
        assert_eq!(h["location"], "http://u.test/r?d=1&u=2#top");
        assert_eq!(h["content-location"], "/r");
        assert_eq!(
            h["link"],
            "</r?page=2>; rel=\"next\", </r?page=1>; rel=\"prev\""
        );
        assert_eq!(h["refresh"], "0; url=/r?x=1");
        assert_eq!(h["content-type"], "text/plain");
        assert_eq!(touched.len(), 4);
    }

    #[test]
    fn a_header_holding_the_key_elsewhere_is_dropped() {
        let (h, touched) = scrubbed(&[
            ("x-echo", "ak1+Qz/="),
            ("x-path", "/keys/ak1%2BQz%2F%3D/info"),
            ("x-twice", "/r?k=ak1%252BQz%252F%253D"),
            ("x-other", "fine"),
            ("x-other", "also fine"),
        ]);
        assert!(h.get("x-echo").is_none());
        assert!(h.get("x-path").is_none());
        assert!(h.get("x-twice").is_none());
        assert_eq!(h.get_all("x-other").iter().count(), 2);
        assert_eq!(touched.len(), 3);
    }

    #[test]
    fn headers_without_the_key_are_left_exactly_as_they_were() {
        let (h, touched) = scrubbed(&[("location", "/r?authorization=other&b=1")]);
        assert_eq!(h["location"], "/r?authorization=other&b=1");
        assert!(touched.is_empty());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Wherever an upstream puts the key in a URL it echoes, and however
        /// it escapes it, no header the app gets still holds it.
        #[test]
        fn no_header_keeps_the_key(
            before in "[a-z0-9=&%/]{0,12}",
            after in "[a-z0-9=&%#/]{0,12}",
            upper in any::<bool>(),
            twice in any::<bool>(),
        ) {
            let mut encoded = form::encode(std::str::from_utf8(KEY).unwrap());
            if twice {
                encoded = form::encode(&encoded);
            }
            if !upper {
                for (hex, lower) in [("%2B", "%2b"), ("%2F", "%2f"), ("%3D", "%3d")] {
                    encoded = encoded.replace(hex, lower);
                }
            }
            let url = format!("/r?{before}&authorization={encoded}&{after}");
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&url) {
                h.insert("location", v.clone());
                h.insert("x-echo", v);
                scrub(&mut h, KEY, Some("authorization"));
                for v in h.values() {
                    prop_assert!(!carries(v.as_bytes(), KEY), "{v:?}");
                }
            }
        }
    }
}
