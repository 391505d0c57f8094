//! Which request paths countersign refuses before routing, on every
//! listener. It forwards a path as the app sent it, and a route's
//! `path_prefix` is matched on those exact bytes; what it must rule out is
//! a path that matches the prefix here but names something outside it at
//! an upstream that resolves it more leniently: `/v1/..;/admin` is
//! `/admin` to Tomcat, `/v1/%252e%252e/admin` to a server that decodes
//! twice, `/v1\..\admin` to IIS.
//!
//! The path is read the way the most lenient upstream would (see
//! `crate::lenient`): every layer of percent-encoding undone, `\` as `/`,
//! and in each segment whatever follows `;` (path parameters,
//! `..;jsessionid=x`), `?` or `#` (a server that re-parses the decoded
//! path) dropped, surrounding whitespace trimmed. On that reading it is
//! refused if a segment is made only of dots (`.`, `..`, `...`), if it
//! holds a NUL byte (C servers stop there), or if it takes more than
//! `MAX_LAYERS` layers of decoding. Clients remove dot segments before
//! sending (RFC 3986 section 5.2.4) and never encode in layers, so these
//! cost an honest app nothing. Encoded slashes alone (`a%2Fb`, as GitLab's
//! API takes project ids) are allowed: they cannot climb out of a prefix.

use crate::lenient::{self, Plus, MAX_LAYERS};

/// Why a path is refused; the text says so to the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathProblem {
    DotSegment,
    Nul,
    TooDeep,
}

impl std::fmt::Display for PathProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PathProblem::DotSegment => f.write_str(
                "the path has a `.` or `..` segment (perhaps percent-encoded, with `;` parameters, or set off by `\\` or an encoded slash), which an upstream may resolve outside the route's path_prefix; send it with dot segments removed (RFC 3986 section 5.2.4)",
            ),
            PathProblem::Nul => f.write_str(
                "the path holds a NUL byte (`%00`), where some servers end the path",
            ),
            PathProblem::TooDeep => write!(
                f,
                "the path is percent-encoded in more than {MAX_LAYERS} layers (`%2525...`); encode it once"
            ),
        }
    }
}

/// `Ok` if `path` may be forwarded (see the module doc).
pub fn check(path: &str) -> Result<(), PathProblem> {
    let read = lenient::read(path, Plus::Literal).map_err(|_| PathProblem::TooDeep)?;
    if read.contains(&0) {
        return Err(PathProblem::Nul);
    }
    let dotted = read
        .split(|b| *b == b'/' || *b == b'\\')
        .map(|segment| {
            let end = segment
                .iter()
                .position(|b| matches!(b, b';' | b'?' | b'#'))
                .unwrap_or(segment.len());
            segment[..end].trim_ascii()
        })
        .any(|s| !s.is_empty() && s.iter().all(|b| *b == b'.'));
    if dotted {
        return Err(PathProblem::DotSegment);
    }
    Ok(())
}

/// What is wrong with a `path_prefix`, if anything. A prefix is matched on
/// the path's exact bytes, so it must be written the one way the app's
/// request will spell it: no encoding, no `;`, `\`, dot or empty segments.
pub fn prefix_problem(prefix: &str) -> Option<&'static str> {
    if !prefix.starts_with('/') || prefix.contains(['?', '#']) {
        return Some("must start with `/` and hold no `?` or `#`");
    }
    let plain = |c: char| c.is_ascii_alphanumeric() || "/-._~!$&'()*+,=:@".contains(c);
    if !prefix.chars().all(plain) {
        return Some("must be written plainly: letters, digits and `/-._~!$&'()*+,=:@` only, no `%` escapes, `;`, `\\`, spaces or other characters (it is matched byte for byte)");
    }
    let inner = prefix.strip_suffix('/').unwrap_or(prefix);
    if inner.len() > 1 && inner[1..].split('/').any(|s| s.is_empty()) {
        return Some("has an empty segment (`//`); write each `/` once");
    }
    if check(prefix).is_err() {
        return Some("has a `.` or `..` segment; write the path it stands for");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_are_found_in_every_spelling() {
        for bad in [
            "/v2/../admin",
            "/v2/..",
            "/v2/./x",
            "/v2/%2e%2e/admin",
            "/v2/%2E./admin",
            "/v2%2f..%2fadmin",
            "/v2\\..\\admin",
            "/v2%5c..%5cadmin",
            "/v1/..;/admin",
            "/v1/.;/admin",
            "/v1/%2e%2e;/admin",
            "/v1/..%3b/admin",
            "/v1/..%3B/admin",
            "/v1/..;jsessionid=x/admin",
            "/v1/%252e%252e/admin",
            "/v1/%u002e%u002e/admin",
            "/v1/%c0%ae%c0%ae/admin",
            "/v1/%ef%bc%8e%ef%bc%8e/admin",
            "/v1/..%20/admin",
            "/v1/..%3f/admin",
            "/v1/..%23x",
            "/v1/...",
            "/v1/x/..",
        ] {
            assert_eq!(check(bad), Err(PathProblem::DotSegment), "{bad}");
        }
        for good in [
            "/v2/codes",
            "/v2/a..b",
            "/v2/.well-known/x",
            "/",
            "",
            "/v2/..x",
            "/projects/group%2Fproject",
            "/v1;a=b/x",
            "/files/100%25",
            "/v1//x",
        ] {
            assert_eq!(check(good), Ok(()), "{good}");
        }
    }

    #[test]
    fn nul_and_deep_encodings_are_refused() {
        assert_eq!(check("/v1/x%00.json"), Err(PathProblem::Nul));
        assert_eq!(check("/v1/x%2500"), Err(PathProblem::Nul));
        assert_eq!(check("/v1/%2525252e"), Err(PathProblem::TooDeep));
        assert!(PathProblem::DotSegment
            .to_string()
            .contains("dot segments removed"));
    }

    #[test]
    fn prefixes_must_be_plain() {
        for good in ["/", "/v1", "/v1/", "/api/v2.1", "/a..b"] {
            assert_eq!(prefix_problem(good), None, "{good}");
        }
        for bad in [
            "v1",
            "/v1?x",
            "/v%31",
            "/caf\u{e9}",
            "/a b",
            "/v1;x",
            "/v1\\x",
            "//v1",
            "/v1//x",
            "/v1/..",
            "/./v1",
        ] {
            assert!(prefix_problem(bad).is_some(), "{bad}");
        }
    }
}
