//! The signature base of RFC 9421 section 2.5, and the RFC 8941 structured
//! field text that goes around it: the component values of a request
//! (section 2.2 for the derived ones, 2.1 for header fields), the
//! `@signature-params` line, and the `Signature-Input`, `Signature` and
//! `Content-Digest` values.

use base64::Engine as _;
use http::request::Parts;

use crate::config::Component;

#[cfg(test)]
mod tests;

/// The parameters of one signature, in the order they are serialised.
#[derive(Debug, Default, Clone)]
pub struct Params<'a> {
    pub created: Option<u64>,
    pub expires: Option<u64>,
    pub keyid: Option<&'a str>,
    pub nonce: Option<&'a str>,
    pub alg: Option<&'a str>,
    pub tag: Option<&'a str>,
}

/// A component the request does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing(pub String);

/// An RFC 8941 string: `"` + the text with `\` and `"` escaped + `"`.
/// The text is printable ASCII (`check` and the nonce make sure of it).
pub fn sf_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// An RFC 8941 byte sequence: `:` + base64 + `:`.
pub fn sf_bytes(bytes: &[u8]) -> String {
    format!(
        ":{}:",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// The inner list of component names with the parameters, as both the
/// `@signature-params` line and the `Signature-Input` member carry it.
pub fn signature_params(components: &[Component], params: &Params<'_>) -> String {
    let names: Vec<String> = components.iter().map(Component::identifier).collect();
    let mut out = format!("({})", names.join(" "));
    let ints = [("created", params.created), ("expires", params.expires)];
    for (key, value) in ints {
        if let Some(v) = value {
            out.push_str(&format!(";{key}={v}"));
        }
    }
    let strings = [
        ("keyid", params.keyid),
        ("nonce", params.nonce),
        ("alg", params.alg),
        ("tag", params.tag),
    ];
    for (key, value) in strings {
        if let Some(v) = value {
            out.push_str(&format!(";{key}={}", sf_string(v)));
        }
    }
    out
}

/// The signature base: one `"name": value` line per component, in order,
/// then `"@signature-params": ...` with no newline after it.
pub fn signature_base(
    components: &[Component],
    parts: &Parts,
    signature_params: &str,
) -> Result<Vec<u8>, Missing> {
    let mut base = Vec::new();
    for c in components {
        base.extend_from_slice(c.identifier().as_bytes());
        base.extend_from_slice(b": ");
        base.extend_from_slice(&value(c, parts)?);
        base.push(b'\n');
    }
    base.extend_from_slice(b"\"@signature-params\": ");
    base.extend_from_slice(signature_params.as_bytes());
    Ok(base)
}

/// The value of one component of the request.
pub fn value(component: &Component, parts: &Parts) -> Result<Vec<u8>, Missing> {
    let uri = &parts.uri;
    let path = || match uri.path() {
        "" => "/",
        p => p,
    };
    let text = match component {
        Component::Method => parts.method.as_str().to_string(),
        Component::Authority => authority(parts)?,
        Component::Scheme => scheme(parts)?,
        Component::TargetUri => {
            let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
            format!(
                "{}://{}{}{query}",
                scheme(parts)?,
                authority(parts)?,
                path()
            )
        }
        Component::Path => path().to_string(),
        Component::Query => format!("?{}", uri.query().unwrap_or_default()),
        Component::RequestTarget => match uri.query() {
            Some(q) => format!("{}?{q}", path()),
            None => path().to_string(),
        },
        Component::QueryParam(name) => query_param(uri.query().unwrap_or_default(), name)?,
        Component::Header(name) => return header(parts, name),
    };
    Ok(text.into_bytes())
}

/// Every field line of `name`, each trimmed of surrounding whitespace,
/// joined with `, ` (RFC 9421 section 2.1).
fn header(parts: &Parts, name: &str) -> Result<Vec<u8>, Missing> {
    let mut lines = parts.headers.get_all(name).iter().peekable();
    if lines.peek().is_none() {
        return Err(Missing(format!("header `{name}`")));
    }
    let mut out = Vec::new();
    for (i, line) in lines.enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(line.as_bytes().trim_ascii());
    }
    Ok(out)
}

/// The value of the one query parameter called `name` (RFC 9421 section
/// 2.2.8): the query parsed as `application/x-www-form-urlencoded` (`+`
/// is a space), names compared decoded, the value decoded and encoded
/// again with that percent-encode set, a space as `%20`. A name that is
/// absent or repeated cannot be signed this way.
pub fn query_param(query: &str, name: &str) -> Result<String, Missing> {
    let wanted = form_decode(name);
    let mut found = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .filter(|(n, _)| form_decode(n) == wanted)
        .map(|(_, v)| v);
    match (found.next(), found.next()) {
        (Some(value), None) => Ok(form_encode(&form_decode(value))),
        (None, _) => Err(Missing(format!("query parameter `{name}`"))),
        (Some(_), Some(_)) => Err(Missing(format!(
            "single query parameter `{name}` (it is repeated; cover @query instead)"
        ))),
    }
}

/// Percent-decodes form text, `+` as a space; bytes that are not UTF-8
/// stay as they are.
fn form_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// The form-urlencoded percent-encode set: everything but ASCII letters,
/// digits and `*-._` is `%XX` (upper-case hex), a space too.
fn form_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'*' | b'-' | b'.' | b'_') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn scheme(parts: &Parts) -> Result<String, Missing> {
    parts
        .uri
        .scheme_str()
        .map(str::to_ascii_lowercase)
        .ok_or_else(|| Missing("scheme (@scheme)".into()))
}

/// The target URI's authority, normalised as HTTP section 4.2.3 says: the
/// host in lowercase, the port left out when it is the scheme's default.
/// From the URI, else from `Host`.
fn authority(parts: &Parts) -> Result<String, Missing> {
    let text = match parts.uri.authority() {
        Some(a) => a.as_str().to_string(),
        None => parts
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| Missing("authority (@authority)".into()))?,
    };
    let text = text.to_ascii_lowercase();
    let Ok(parsed) = text.parse::<http::uri::Authority>() else {
        return Ok(text);
    };
    let default = match parts.uri.scheme_str() {
        Some("https") => Some(443),
        Some("http") => Some(80),
        _ => None,
    };
    Ok(match parsed.port_u16() {
        Some(port) if Some(port) != default => format!("{}:{port}", parsed.host()),
        _ => parsed.host().to_string(),
    })
}
