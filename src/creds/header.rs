//! The `header` credential: static headers (API key, Bearer token, Basic auth
//! built from a user and password), set on every matched request.

use http::request::Parts;
use http::{HeaderName, HeaderValue};

/// Values are marked sensitive at load, so `Debug` never shows them.
#[derive(Debug)]
pub struct StaticHeaders {
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl StaticHeaders {
    pub fn new(headers: Vec<(HeaderName, HeaderValue)>) -> Self {
        StaticHeaders { headers }
    }

    pub fn names(&self) -> Vec<HeaderName> {
        self.headers.iter().map(|(n, _)| n.clone()).collect()
    }

    pub fn apply(&self, parts: &mut Parts) {
        for (name, value) in &self.headers {
            parts.headers.insert(name.clone(), value.clone());
        }
    }
}
