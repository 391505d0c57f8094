//! Where an issued key goes in a matched request: a header (after an
//! optional prefix), or a query parameter of the upstream URI. Either way
//! what the app sent there is replaced, and everything else is kept.

use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Uri};

use super::echo;
use crate::config::KeyPlacement;
use crate::creds::CredError;
use crate::creds::{form, query};

#[derive(Debug)]
pub enum Placement {
    Header { name: HeaderName, prefix: String },
    Query { name: String },
}

impl Placement {
    pub fn new(config: &KeyPlacement) -> Placement {
        match config {
            KeyPlacement::Header { name, prefix } => Placement::Header {
                name: name.clone(),
                prefix: prefix.clone(),
            },
            KeyPlacement::Query { name } => Placement::Query { name: name.clone() },
        }
    }

    pub fn header_name(&self) -> Option<HeaderName> {
        match self {
            Placement::Header { name, .. } => Some(name.clone()),
            Placement::Query { .. } => None,
        }
    }

    /// What a request carries for `key`, marked sensitive: the whole header
    /// value, or the query parameter's form-encoded value.
    pub fn render(&self, key: &HeaderValue) -> Option<HeaderValue> {
        let bytes = match self {
            Placement::Header { prefix, .. } => [prefix.as_bytes(), key.as_bytes()].concat(),
            Placement::Query { .. } => {
                form::encode(&String::from_utf8_lossy(key.as_bytes())).into_bytes()
            }
        };
        let mut value = HeaderValue::from_bytes(&bytes).ok()?;
        value.set_sensitive(true);
        Some(value)
    }

    /// Puts `key` in the request (whose URI is the upstream's by now).
    pub fn put(&self, parts: &mut Parts, key: &HeaderValue) -> Result<(), CredError> {
        let value = self.render(key).ok_or_else(unplaceable)?;
        match self {
            Placement::Header { name, .. } => {
                parts.headers.insert(name.clone(), value);
            }
            Placement::Query { name } => {
                // `render` made it of URL-safe characters only.
                let value = value.to_str().map_err(|_| unplaceable())?;
                parts.uri = query::set(&parts.uri, name, value).map_err(|e| {
                    CredError::Request(format!(
                        "the issued key goes in the `{name}` query parameter, but {e}"
                    ))
                })?;
            }
        }
        Ok(())
    }

    /// Removes the key that `sent` carried (see `presented`) from response
    /// headers the upstream may have echoed it in; returns the names of
    /// the headers changed or dropped.
    pub fn scrub(&self, sent: &HeaderValue, headers: &mut HeaderMap) -> Vec<HeaderName> {
        match self {
            Placement::Header { prefix, .. } => {
                let key = sent.as_bytes();
                let key = key.strip_prefix(prefix.as_bytes()).unwrap_or(key);
                echo::scrub(headers, key, None)
            }
            Placement::Query { name } => {
                let key = String::from_utf8_lossy(sent.as_bytes()).into_owned();
                echo::scrub(headers, &form::decode(&key), Some(name))
            }
        }
    }

    /// What a signed request carries where the key goes, as `render` makes
    /// it, so that a 401 can name the key it refused.
    pub fn presented(&self, headers: &HeaderMap, uri: &Uri) -> Option<HeaderValue> {
        match self {
            Placement::Header { name, .. } => headers.get(name).cloned(),
            Placement::Query { name } => {
                let mut value = HeaderValue::from_str(query::raw(uri, name)?).ok()?;
                value.set_sensitive(true);
                Some(value)
            }
        }
    }
}

fn unplaceable() -> CredError {
    CredError::Request("the issued key cannot be placed in the request".into())
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str) -> Placement {
        Placement::Query { name: name.into() }
    }

    fn key(k: &str) -> HeaderValue {
        HeaderValue::from_str(k).unwrap()
    }

    fn placed(p: &Placement, uri: &str, k: &str) -> Parts {
        let (mut parts, ()) = http::Request::get(uri).body(()).unwrap().into_parts();
        p.put(&mut parts, &key(k)).unwrap();
        parts
    }

    #[test]
    fn the_query_parameter_is_set_and_replaces_the_apps_keeping_the_others() {
        let p = query("authorization");
        let cases = [
            ("http://u.test/recognize", "/recognize?authorization=k%2B1"),
            ("http://u.test/r?", "/r?authorization=k%2B1"),
            (
                "http://u.test/r?d=grammar&authorization=guess&u=1",
                "/r?d=grammar&u=1&authorization=k%2B1",
            ),
            (
                "http://u.test/r?authoriz%61tion=a&a=1&&b=%20&authorization",
                "/r?a=1&&b=%20&authorization=k%2B1",
            ),
            (
                "http://u.test/r?Authorization=x&authorization2=y",
                "/r?authorization2=y&authorization=k%2B1",
            ),
        ];
        for (uri, want) in cases {
            let parts = placed(&p, uri, "k+1");
            assert_eq!(parts.uri.path_and_query().unwrap().as_str(), want, "{uri}");
            assert_eq!(parts.uri.authority().unwrap().as_str(), "u.test");
        }
    }

    #[test]
    fn the_header_gets_the_prefix_and_replaces_the_apps() {
        let p = Placement::new(&KeyPlacement::Header {
            name: HeaderName::from_static("authorization"),
            prefix: "Bearer ".into(),
        });
        let (mut parts, ()) = http::Request::get("http://u.test/x?a=1")
            .header("authorization", "Bearer guess")
            .body(())
            .unwrap()
            .into_parts();
        p.put(&mut parts, &key("k-1")).unwrap();
        assert_eq!(parts.headers.get_all("authorization").iter().count(), 1);
        assert_eq!(parts.headers["authorization"], "Bearer k-1");
        assert!(parts.headers["authorization"].is_sensitive());
        assert_eq!(parts.uri, "http://u.test/x?a=1");
        assert_eq!(p.header_name().unwrap(), "authorization");
    }

    #[test]
    fn what_was_presented_matches_the_rendered_key() {
        for p in [
            query("authorization"),
            Placement::Header {
                name: HeaderName::from_static("x-key"),
                prefix: "K ".into(),
            },
        ] {
            let parts = placed(&p, "http://u.test/x?a=1", "k/1=");
            let sent = p.presented(&parts.headers, &parts.uri).unwrap();
            assert!(sent.is_sensitive());
            assert_eq!(Some(sent.clone()), p.render(&key("k/1=")), "{p:?}");
            assert_ne!(Some(sent), p.render(&key("k/2=")), "{p:?}");
        }
        let none = query("authorization");
        assert!(none
            .presented(&HeaderMap::new(), &"http://u.test/x?a=1".parse().unwrap())
            .is_none());
    }
}
