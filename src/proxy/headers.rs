//! Header hygiene: hop-by-hop and `Proxy-*` headers belong to one connection
//! and are never forwarded, in either direction.

use http::header::{HeaderMap, HeaderName, CONNECTION, TE, TRAILER, TRANSFER_ENCODING, UPGRADE};

/// Whether `name` is hop-by-hop by itself: the fixed list, or `Proxy-*`
/// (credentials meant for countersign itself).
fn always_stripped(name: &HeaderName) -> bool {
    name == CONNECTION
        || name == TE
        || name == TRAILER
        || name == TRANSFER_ENCODING
        || name == UPGRADE
        || name.as_str() == "keep-alive"
        || name.as_str().starts_with("proxy-")
}

/// Removes hop-by-hop headers, those named in `Connection`, and every
/// `Proxy-*` header (credentials meant for countersign itself). One pass
/// over the names and no allocation when there is nothing to remove, the
/// common case.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if !headers.keys().any(always_stripped) {
        return;
    }
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
    let listed: Vec<HeaderName> = headers
        .keys()
        .filter(|k| always_stripped(k))
        .cloned()
        .collect();
    for name in listed {
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

    mod props {
        use super::super::*;
        use http::HeaderValue;
        use proptest::prelude::*;

        /// A name in random case, with the separators and whitespace a
        /// sender may put around it.
        fn spelled(name: &str, upper: &[bool]) -> String {
            name.chars()
                .zip(upper.iter().cycle())
                .map(|(c, u)| if *u { c.to_ascii_uppercase() } else { c })
                .collect()
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn no_header_named_in_connection_survives(
                names in prop::collection::btree_set("x-[a-z0-9-]{1,10}", 1..6),
                upper in prop::collection::vec(any::<bool>(), 1..8),
                seps in prop::collection::vec(
                    prop::sample::select(&[",", ", ", " ,", ",,", "\t,", " , ", ",\t", ", ,"][..]),
                    6,
                ),
                pads in prop::collection::vec(prop::sample::select(&["", " ", "\t", " \t "][..]), 2),
                split_at in 0usize..6,
            ) {
                let names: Vec<String> = names.into_iter().collect();
                let tokens: Vec<String> = names.iter().map(|n| spelled(n, &upper)).collect();
                // Some of the names in one Connection header, the rest in another.
                let cut = split_at.min(tokens.len());
                let mut h = HeaderMap::new();
                for group in [&tokens[..cut], &tokens[cut..]] {
                    if group.is_empty() {
                        continue;
                    }
                    let mut value = pads[0].to_string();
                    for (i, t) in group.iter().enumerate() {
                        if i > 0 {
                            value.push_str(seps[i % seps.len()]);
                        }
                        value.push_str(t);
                    }
                    value.push_str(pads[1]);
                    h.append(CONNECTION, HeaderValue::from_str(&value).unwrap());
                }
                for n in &names {
                    h.append(HeaderName::from_bytes(n.as_bytes()).unwrap(), HeaderValue::from_static("v"));
                }
                h.insert("x-unnamed-kept", HeaderValue::from_static("kept"));
                strip_hop_by_hop(&mut h);
                for n in &names {
                    prop_assert!(!h.contains_key(n.as_str()), "{} survived", n);
                }
                prop_assert!(!h.contains_key(CONNECTION));
                prop_assert_eq!(h.len(), 1, "{:?}", h);
            }
        }
    }
}
