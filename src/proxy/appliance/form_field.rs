//! One text field of a small form body, as `curl --form` (multipart/form-data,
//! RFC 7578) or an HTML form (application/x-www-form-urlencoded) sends it.
//! A field named twice is refused rather than guessed; a file part is not a
//! field.

use crate::creds::query;

/// Why the field could not be read. Messages quote no value.
#[derive(Debug, PartialEq, Eq)]
pub enum FormError {
    /// Neither form encoding, or a multipart body without a boundary.
    NotAForm,
    /// A multipart body that does not follow its boundary.
    Broken,
    /// The field is there more than once.
    Twice,
}

impl std::fmt::Display for FormError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FormError::NotAForm => "send a form: multipart/form-data (curl --form) or application/x-www-form-urlencoded",
            FormError::Broken => "the multipart/form-data body does not follow its boundary",
            FormError::Twice => "the field is sent more than once",
        })
    }
}

/// The value of field `name` in `body`, sent with `content_type`.
pub fn field(
    content_type: Option<&str>,
    body: &[u8],
    name: &str,
) -> Result<Option<String>, FormError> {
    let content_type = content_type.ok_or(FormError::NotAForm)?;
    let (media, params) = content_type.split_once(';').unwrap_or((content_type, ""));
    match media.trim().to_ascii_lowercase().as_str() {
        "application/x-www-form-urlencoded" => {
            let text = std::str::from_utf8(body).map_err(|_| FormError::NotAForm)?;
            one(query::values(text, name))
        }
        "multipart/form-data" => {
            let boundary = params
                .split(';')
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
                .map(|(_, v)| v.trim().trim_matches('"'))
                .filter(|b| !b.is_empty() && b.len() <= 70)
                .ok_or(FormError::NotAForm)?;
            one(multipart(body, boundary, name)?)
        }
        _ => Err(FormError::NotAForm),
    }
}

fn one(mut found: Vec<String>) -> Result<Option<String>, FormError> {
    match found.len() {
        0 | 1 => Ok(found.pop()),
        _ => Err(FormError::Twice),
    }
}

/// Every text part named `name` (RFC 7578: parts between `--boundary`
/// lines, each with a `Content-Disposition: form-data; name=...` header).
fn multipart(body: &[u8], boundary: &str, name: &str) -> Result<Vec<String>, FormError> {
    let delimiter = format!("--{boundary}");
    let text = std::str::from_utf8(body).map_err(|_| FormError::Broken)?;
    let mut pieces = text.split(delimiter.as_str());
    // Before the first delimiter: a preamble, ignored.
    pieces.next();
    let mut found = Vec::new();
    let mut closed = false;
    for piece in pieces {
        if piece.starts_with("--") {
            closed = true;
            break;
        }
        let part = piece.strip_prefix("\r\n").ok_or(FormError::Broken)?;
        // The CRLF before the next delimiter belongs to it.
        let part = part.strip_suffix("\r\n").ok_or(FormError::Broken)?;
        let (head, value) = part.split_once("\r\n\r\n").ok_or(FormError::Broken)?;
        let disposition = head
            .split("\r\n")
            .filter_map(|line| line.split_once(':'))
            .find(|(h, _)| h.trim().eq_ignore_ascii_case("content-disposition"))
            .map(|(_, v)| v)
            .ok_or(FormError::Broken)?;
        let mut params = disposition.split(';').map(str::trim);
        if !params
            .next()
            .is_some_and(|kind| kind.eq_ignore_ascii_case("form-data"))
        {
            return Err(FormError::Broken);
        }
        let mut part_name = None;
        let mut file = false;
        for p in params {
            match p.split_once('=') {
                Some((k, v)) if k.trim().eq_ignore_ascii_case("name") => {
                    part_name = Some(v.trim().trim_matches('"'))
                }
                Some((k, _)) if k.trim().eq_ignore_ascii_case("filename") => file = true,
                _ => {}
            }
        }
        if part_name == Some(name) && !file {
            found.push(value.to_string());
        }
    }
    closed.then_some(found).ok_or(FormError::Broken)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CURL: &str = "multipart/form-data; boundary=------------------------1f96e1925aede3bf";

    fn curl_body(parts: &[(&str, &str)]) -> String {
        let mut body = String::new();
        for (name, value) in parts {
            body.push_str(&format!("--------------------------1f96e1925aede3bf\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"));
        }
        body.push_str("--------------------------1f96e1925aede3bf--\r\n");
        body
    }

    #[test]
    fn the_field_curl_form_sends_is_read() {
        // The bytes curl 7.88 sends for --form 'sessionId="alice@x"'.
        let body = curl_body(&[("sessionId", "alice@x")]);
        assert_eq!(
            field(Some(CURL), body.as_bytes(), "sessionId"),
            Ok(Some("alice@x".into()))
        );
        let body = curl_body(&[("other", "1"), ("sessionId", "bob")]);
        assert_eq!(
            field(Some(CURL), body.as_bytes(), "sessionId"),
            Ok(Some("bob".into()))
        );
        assert_eq!(
            field(Some(CURL), curl_body(&[]).as_bytes(), "sessionId"),
            Ok(None)
        );
        let quoted = "multipart/form-data; boundary=\"------------------------1f96e1925aede3bf\"";
        assert_eq!(
            field(
                Some(quoted),
                curl_body(&[("sessionId", "c")]).as_bytes(),
                "sessionId"
            ),
            Ok(Some("c".into()))
        );
    }

    #[test]
    fn an_html_form_is_read_too() {
        let form = Some("application/x-www-form-urlencoded");
        assert_eq!(
            field(form, b"a=1&sessionId=alice%40x", "sessionId"),
            Ok(Some("alice@x".into()))
        );
        assert_eq!(field(form, b"a=1", "sessionId"), Ok(None));
        assert_eq!(
            field(form, b"sessionId=a&session%49d=b", "sessionId"),
            Err(FormError::Twice)
        );
    }

    #[test]
    fn anything_else_is_refused_never_guessed() {
        let twice = curl_body(&[("sessionId", "a"), ("sessionId", "b")]);
        assert_eq!(
            field(Some(CURL), twice.as_bytes(), "sessionId"),
            Err(FormError::Twice)
        );
        for (ct, body) in [
            (None, "sessionId=a"),
            (Some("text/plain"), "sessionId=a"),
            (Some("multipart/form-data"), "x"),
            (Some(CURL), "no delimiter at all"),
            (Some(CURL), "--------------------------1f96e1925aede3bf\r\nContent-Disposition: form-data; name=\"sessionId\"\r\n\r\nunterminated"),
            (Some(CURL), "--------------------------1f96e1925aede3bf\r\nno-disposition: x\r\n\r\nv\r\n--------------------------1f96e1925aede3bf--"),
        ] {
            assert!(field(ct, body.as_bytes(), "sessionId").is_err(), "{ct:?} {body}");
        }
        let file = "--------------------------1f96e1925aede3bf\r\nContent-Disposition: form-data; name=\"sessionId\"; filename=\"x\"\r\n\r\nv\r\n--------------------------1f96e1925aede3bf--\r\n";
        assert_eq!(
            field(Some(CURL), file.as_bytes(), "sessionId"),
            Ok(None),
            "a file is not a field"
        );
    }
}
