//! Header templates: literal text with `{field}` placeholders (`{{` and
//! `}}` for braces). The secret and the raw body never go into a header.

use super::super::super::{Field, Piece, Template};

/// The template, or why it cannot work.
pub fn parse(text: &str) -> Result<Template, String> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(['{', '}']) {
        literal.push_str(&rest[..i]);
        let (brace, after) = (&rest[i..i + 1], &rest[i + 1..]);
        if after.starts_with(brace) {
            literal.push_str(brace);
            rest = &after[1..];
            continue;
        }
        if brace == "}" {
            return Err("has a `}` that closes nothing; write `}}` for a literal brace".into());
        }
        let Some(end) = after.find('}') else {
            return Err("has a `{` that is never closed; write `{{` for a literal brace".into());
        };
        let name = &after[..end];
        let field = match Field::named(name) {
            Some(Field::Secret) => {
                return Err("must not hold {secret}: the secret never leaves countersign".into())
            }
            Some(Field::Body) => return Err("cannot hold {body}; use {body_digest}".into()),
            Some(f) => f,
            // Not quoted: it could be a secret pasted in the wrong place.
            None => {
                return Err(format!(
                    "has an unknown placeholder; use {}",
                    placeholder_names()
                ))
            }
        };
        if !literal.is_empty() {
            pieces.push(Piece::Text(std::mem::take(&mut literal)));
        }
        pieces.push(Piece::Field(field));
        rest = &after[end + 1..];
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        if http::HeaderValue::from_str(&literal).is_err() {
            return Err("is not a valid header value (control characters or line breaks)".into());
        }
        pieces.push(Piece::Text(literal));
    }
    if pieces
        .iter()
        .any(|p| matches!(p, Piece::Text(t) if http::HeaderValue::from_str(t).is_err()))
    {
        return Err("is not a valid header value (control characters or line breaks)".into());
    }
    Ok(Template(pieces))
}

fn placeholder_names() -> String {
    Field::ALL
        .iter()
        .filter(|(_, f)| !matches!(f, Field::Secret | Field::Body))
        .map(|(n, _)| format!("{{{n}}}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_literal_text_and_escaped_braces() {
        let t = parse("hmac OPA-Auth:{api_key}:{signature} {{x}}").unwrap();
        assert_eq!(
            t.0,
            [
                Piece::Text("hmac OPA-Auth:".into()),
                Piece::Field(Field::ApiKey),
                Piece::Text(":".into()),
                Piece::Field(Field::Signature),
                Piece::Text(" {x}".into()),
            ]
        );
        assert_eq!(parse("{nonce}").unwrap().0, [Piece::Field(Field::Nonce)]);
        assert!(parse("{}").is_err());
        assert!(parse("a}b").is_err());
    }
}
