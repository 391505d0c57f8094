//! `application/x-www-form-urlencoded` as RFC 6749 Appendix B asks: UTF-8,
//! space as `+`, every byte outside ALPHA / DIGIT / `-._~` as `%XX`. Used
//! for token and key-issuing request bodies, the id and secret of Basic
//! client auth, and a key placed in a request's query.

/// A request body being built. Holds secrets, so no `Debug` of content.
#[derive(Default)]
pub struct Form(String);

impl std::fmt::Debug for Form {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Form(<redacted>)")
    }
}

impl Form {
    pub fn push(&mut self, name: &str, value: &str) {
        if !self.0.is_empty() {
            self.0.push('&');
        }
        self.0.push_str(&encode(name));
        self.0.push('=');
        self.0.push_str(&encode(value));
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Undoes `encode` (and any other valid form encoding) for comparison:
/// `+` is a space, `%XX` a byte; a malformed escape is kept as it is.
pub fn decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(b)) => {
                out.push(b);
                i += 2;
            }
            (b, _) => out.push(b),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_undoes_encode_and_keeps_malformed_escapes() {
        for text in [" %&+£€", "authorization", "a=b&c"] {
            assert_eq!(decode(&encode(text)), text.as_bytes());
        }
        assert_eq!(decode("authoriz%61tion"), b"authorization");
        assert_eq!(decode("100%"), b"100%");
        assert_eq!(decode("%zz%4"), b"%zz%4");
        assert_eq!(decode("%+1"), b"% 1");
    }

    #[test]
    fn rfc6749_appendix_b_example() {
        assert_eq!(encode(" %&+£€"), "+%25%26%2B%C2%A3%E2%82%AC");
    }

    #[test]
    fn pairs_are_joined_with_ampersands() {
        let mut f = Form::default();
        f.push("grant_type", "client_credentials");
        f.push("scope", "a b:c");
        assert_eq!(
            f.into_string(),
            "grant_type=client_credentials&scope=a+b%3Ac"
        );
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn decode_never_panics(text in any::<String>(), junk in "[%+0-9a-fA-FuU]{0,12}") {
                let _ = decode(&text);
                let _ = decode(&junk);
            }

            #[test]
            fn encode_is_url_safe_and_decode_undoes_it(text in any::<String>()) {
                let encoded = encode(&text);
                prop_assert!(encoded
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~+%".contains(&b)));
                prop_assert_eq!(decode(&encoded), text.as_bytes());
                prop_assert_eq!(encode(&String::from_utf8(decode(&encoded)).unwrap()), encoded);
            }

            #[test]
            fn a_form_reads_back_as_the_pairs_pushed(
                pairs in prop::collection::vec((any::<String>(), any::<String>()), 0..6),
            ) {
                let mut form = Form::default();
                for (name, value) in &pairs {
                    form.push(name, value);
                }
                let body = form.into_string();
                let read: Vec<(Vec<u8>, Vec<u8>)> = body
                    .split('&')
                    .filter(|_| !body.is_empty())
                    .map(|pair| {
                        let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
                        (decode(n), decode(v))
                    })
                    .collect();
                let want: Vec<(Vec<u8>, Vec<u8>)> = pairs
                    .iter()
                    .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
                    .collect();
                prop_assert_eq!(read, want);
            }
        }
    }
}
