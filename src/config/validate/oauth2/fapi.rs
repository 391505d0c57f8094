//! Rules for the OpenID Connect and FAPI keys of an `oauth2` credential:
//! `issuer` (discovery).

use super::super::Checker;

impl Checker<'_> {
    /// The issuer identifier: an absolute URL without query or fragment
    /// (OpenID Connect Discovery 1.0 section 4.3), compared byte for byte
    /// with the document's `issuer`. `Some(None)` when not set.
    pub(super) fn issuer(&mut self, path: &str, value: Option<&str>) -> Option<Option<String>> {
        let Some(text) = value else {
            return Some(None);
        };
        let key = format!("{path}.issuer");
        let uri = self.endpoint_url(
            &key,
            Some(text),
            "https://auth.example.com",
            "client authentication",
        )?;
        if uri.query().is_some() || text.contains('#') {
            self.problem(
                key,
                "must not have a query or fragment (OpenID Connect Discovery section 4.3)",
            );
            return None;
        }
        Some(Some(text.to_string()))
    }
}

#[cfg(test)]
mod tests;
