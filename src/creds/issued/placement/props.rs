//! Property: whatever query the app sends, the upstream sees one key
//! parameter, countersign's, however leniently it parses. Two lenient
//! parsers are modelled here on their own (not with countersign's code):
//! one splits on `&` and `;` and then decodes names until nothing changes,
//! the other decodes the whole query until nothing changes and then splits.
//! Both end a name at NUL, trim it, and compare it ignoring case the way
//! Java's `equalsIgnoreCase` does.

use http::HeaderValue;
use proptest::prelude::*;

use super::Placement;

const NAME: &str = "authorization";

fn decode_once(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let escaped = bytes
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match (bytes[i], escaped) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

fn decode_fully(text: &[u8]) -> Vec<u8> {
    let mut bytes = text.to_vec();
    loop {
        let next = decode_once(&bytes);
        if next == bytes {
            return bytes;
        }
        bytes = next;
    }
}

fn java_equals_ignore_case(a: &str, b: &str) -> bool {
    let up = |c: char| c.to_uppercase().next().unwrap_or(c);
    let low = |c: char| c.to_lowercase().next().unwrap_or(c);
    a.chars().count() == b.chars().count()
        && a.chars()
            .zip(b.chars())
            .all(|(x, y)| x == y || up(x) == up(y) || low(up(x)) == low(up(y)) || low(x) == low(y))
}

fn is_key_name(raw_name: &[u8]) -> bool {
    let end = raw_name
        .iter()
        .position(|b| *b == 0)
        .unwrap_or(raw_name.len());
    let name = String::from_utf8_lossy(&raw_name[..end]);
    java_equals_ignore_case(name.trim(), NAME)
}

fn pieces(query: &[u8]) -> Vec<&[u8]> {
    query.split(|b| *b == b'&' || *b == b';').collect()
}

fn name_of(piece: &[u8]) -> &[u8] {
    piece.split(|b| *b == b'=').next().unwrap_or(&[])
}

/// Values of the key parameter as a server that splits, then decodes, sees.
fn split_then_decode(query: &str) -> Vec<Vec<u8>> {
    pieces(query.as_bytes())
        .into_iter()
        .filter(|p| is_key_name(&decode_fully(name_of(p))))
        .map(|p| {
            let value = p.splitn(2, |b| *b == b'=').nth(1).unwrap_or(&[]);
            decode_once(value)
        })
        .collect()
}

/// How many key parameters a server that decodes, then splits, sees.
fn decode_then_split(query: &str) -> usize {
    let decoded = decode_fully(query.as_bytes());
    pieces(&decoded)
        .into_iter()
        .filter(|p| is_key_name(name_of(p)))
        .count()
}

const TOKENS: &[&str] = &[
    "authorization",
    "Authorization",
    "AUTHORIZATION",
    "authoriz%61tion",
    "%2561uthorization",
    "author%C4%B1zation",
    "author%C4%B0zation",
    "%61",
    "a",
    "x",
    "1",
    "=",
    "&",
    ";",
    "%26",
    "%3B",
    "%3d",
    "%2526",
    "%253D",
    "%00",
    "+",
    "%20",
    "%",
    "%zz",
    "%25",
    "%2B",
];

fn query() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..12).prop_map(|t| t.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_app_cannot_add_or_override_the_key_parameter(
        q in query(),
        key in "[A-Za-z0-9+/=._~-]{1,16}",
    ) {
        let placement = Placement::Query { name: NAME.into() };
        let Ok(uri) = format!("http://u.test/r?{q}").parse::<http::Uri>() else {
            return Ok(());
        };
        let (mut parts, ()) = http::Request::get(uri).body(()).unwrap().into_parts();
        let key_value = HeaderValue::from_str(&key).unwrap();
        if placement.put(&mut parts, &key_value).is_err() {
            return Ok(());
        }
        let sent = parts.uri.query().unwrap_or("");
        prop_assert_eq!(split_then_decode(sent), vec![key.as_bytes().to_vec()], "{} -> {}", q, sent);
        prop_assert_eq!(decode_then_split(sent), 1, "{} -> {}", q, sent);
        // Everything else is the app's own pairs, unchanged and in order.
        let (rest, _) = sent.rsplit_once('&').unwrap_or(("", sent));
        let mut app_pairs = q.split('&');
        for pair in rest.split('&').filter(|_| !rest.is_empty()) {
            prop_assert!(app_pairs.any(|p| p == pair), "{} is not the app's: {}", pair, q);
        }
    }

    #[test]
    fn a_query_without_the_name_is_kept_whole(
        pairs in prop::collection::vec(("[a-z]{1,6}", "[A-Za-z0-9%+.]{0,8}"), 0..6),
    ) {
        // Names too short, values too short to spell the name or to be
        // encoded in more than three layers.
        let q: Vec<String> = pairs.iter().map(|(n, v)| format!("{n}={v}")).collect();
        let q = q.join("&");
        let placement = Placement::Query { name: NAME.into() };
        let Ok(uri) = format!("http://u.test/r?{q}").parse::<http::Uri>() else {
            return Ok(());
        };
        let (mut parts, ()) = http::Request::get(uri).body(()).unwrap().into_parts();
        placement.put(&mut parts, &HeaderValue::from_static("k")).unwrap();
        let want = if q.is_empty() { "authorization=k".to_string() } else { format!("{q}&authorization=k") };
        prop_assert_eq!(parts.uri.query(), Some(want.as_str()));
    }
}
