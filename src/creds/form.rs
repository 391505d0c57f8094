//! `application/x-www-form-urlencoded` as RFC 6749 Appendix B asks: UTF-8,
//! space as `+`, every byte outside ALPHA / DIGIT / `-._~` as `%XX`. Used
//! for token request bodies and for the id and secret of Basic client auth.

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
