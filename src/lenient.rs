//! How the most lenient server reads percent-encoded text. countersign
//! forwards what the app sent unchanged, so what matters is what the
//! upstream will make of it: Tomcat, Spring, IIS and friends undo encodings
//! the app had no business stacking (`%252e`), take IIS `%uXXXX` escapes,
//! read overlong UTF-8 (`%c0%ae`) and fullwidth forms (`．`) as the ASCII
//! they spell. Path and query checks compare on this reading, so no
//! spelling of `..` or of a parameter name slips past them.

use std::borrow::Cow;

/// Layers of percent-encoding undone before giving up. One is normal, two
/// happen (a literal `%` in data), more is an attack or a bug.
pub const MAX_LAYERS: usize = 3;

/// The text is percent-encoded in more than `MAX_LAYERS` layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooDeep;

/// Whether `+` is a space (query strings) or itself (paths).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plus {
    Space,
    Literal,
}

/// `text` with every layer of encoding undone, as bytes (may not be UTF-8).
/// Each layer decodes `%XX` and `%uXXXX` and folds overlong UTF-8 and
/// fullwidth ASCII to ASCII; it stops when a layer changes nothing. Text
/// with nothing any layer could change (no `%`, no byte past ASCII, and no
/// `+` when it is a space), as every ordinary path is, is read as it is,
/// without a copy.
pub fn read(text: &str, plus: Plus) -> Result<Cow<'_, [u8]>, TooDeep> {
    let unchanged = |b: &u8| *b != b'%' && b.is_ascii() && !(plus == Plus::Space && *b == b'+');
    if text.as_bytes().iter().all(unchanged) {
        return Ok(Cow::Borrowed(text.as_bytes()));
    }
    read_layers(text, plus).map(Cow::Owned)
}

fn read_layers(text: &str, plus: Plus) -> Result<Vec<u8>, TooDeep> {
    let mut bytes = text.as_bytes().to_vec();
    if plus == Plus::Space {
        bytes = plus_to_space(&bytes);
    }
    for _ in 0..=MAX_LAYERS {
        let mut next = fold(&percent_decode(&bytes));
        if plus == Plus::Space {
            next = plus_to_space(&next);
        }
        if next == bytes {
            return Ok(bytes);
        }
        bytes = next;
    }
    Err(TooDeep)
}

fn plus_to_space(bytes: &[u8]) -> Vec<u8> {
    bytes
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect()
}

fn hex(bytes: &[u8]) -> Option<u32> {
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let text = std::str::from_utf8(bytes).ok()?;
    u32::from_str_radix(text, 16).ok()
}

/// One layer of `%XX` and `%uXXXX`; a malformed escape stays as it is.
fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let wide = bytes
                .get(i + 1)
                .is_some_and(|b| b.eq_ignore_ascii_case(&b'u'));
            if wide {
                let unit = bytes
                    .get(i + 2..i + 6)
                    .and_then(hex)
                    .and_then(char::from_u32);
                if let Some(c) = unit {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    i += 6;
                    continue;
                }
            }
            if let Some(b) = bytes.get(i + 1..i + 3).and_then(hex) {
                // Two hex digits are at most 0xff.
                out.push(b as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

fn continuation(b: Option<&u8>) -> Option<u32> {
    b.filter(|b| (0x80..0xc0).contains(*b))
        .map(|b| u32::from(*b & 0x3f))
}

/// Overlong UTF-8 spellings of ASCII (`c0 ae` is `.`) and fullwidth ASCII
/// (U+FF01..U+FF5E, U+3000) become the ASCII byte; everything else stays.
fn fold(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let (len, code) = match b {
            0xc0 | 0xc1 => (
                2,
                continuation(bytes.get(i + 1)).map(|c| (u32::from(b & 0x1f) << 6) | c),
            ),
            0xe0..=0xef => {
                let c1 = continuation(bytes.get(i + 1));
                let c2 = continuation(bytes.get(i + 2));
                (
                    3,
                    c1.zip(c2)
                        .map(|(c1, c2)| (u32::from(b & 0x0f) << 12) | (c1 << 6) | c2),
                )
            }
            0xf0 => {
                let cs: Option<Vec<u32>> = (1..4).map(|k| continuation(bytes.get(i + k))).collect();
                (4, cs.map(|cs| (cs[0] << 12) | (cs[1] << 6) | cs[2]))
            }
            _ => (1, None),
        };
        let ascii = match code {
            Some(c) if c < 0x80 => Some(c),
            Some(c @ 0xff01..=0xff5e) => Some(c - 0xff01 + 0x21),
            Some(0x3000) => Some(0x20),
            _ => None,
        };
        match ascii {
            Some(a) => {
                // `a` is below 0x80 in every arm above.
                out.push(a as u8);
                i += len;
            }
            None => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(text: &str) -> Vec<u8> {
        read(text, Plus::Literal).unwrap().into_owned()
    }

    #[test]
    fn every_spelling_of_a_dot_reads_as_a_dot() {
        for dot in [
            ".",
            "%2e",
            "%2E",
            "%252e",
            "%25252E",
            "%u002e",
            "%U002E",
            "%c0%ae",
            "%e0%80%ae",
            "%f0%80%80%ae",
            "%ef%bc%8e",
            "%25c0%25ae",
        ] {
            assert_eq!(path(dot), b".", "{dot}");
        }
        assert_eq!(path("%2f%5C%3b%00"), b"/\\;\0");
        assert_eq!(path("%ef%bc%8f"), b"/");
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        for text in [
            "/v1/items",
            "a+b",
            "100%",
            "%zz",
            "%u12",
            "caf\u{e9}",
            "日本",
        ] {
            assert_eq!(path(text), text.as_bytes(), "{text}");
        }
        assert_eq!(path("100%2525"), b"100%");
        assert_eq!(&*read("a+b%2B", Plus::Space).unwrap(), b"a b ");
        assert_eq!(&*read("a+b", Plus::Space).unwrap(), b"a b");
        // Nothing to undo: the text itself, not a copy.
        let plain = "/v1/items;v=1";
        assert!(
            matches!(read(plain, Plus::Literal), Ok(Cow::Borrowed(b)) if b == plain.as_bytes())
        );
    }

    proptest::proptest! {
        /// The copy-free reading of text with nothing to undo is the
        /// reading every layer would give.
        #[test]
        fn the_shortcut_reads_as_the_layers_do(text in "[a-z/.;+%2eEuU0-9\u{e9}\u{ff0e}]{0,24}") {
            for plus in [Plus::Literal, Plus::Space] {
                proptest::prop_assert_eq!(read(&text, plus).map(Cow::into_owned), read_layers(&text, plus));
            }
        }
    }

    #[test]
    fn more_than_three_layers_are_too_deep() {
        assert_eq!(path("%25252e"), b".");
        assert_eq!(read("%2525252e", Plus::Literal), Err(TooDeep));
    }
}
