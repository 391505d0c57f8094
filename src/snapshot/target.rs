//! A route's upstream as every request needs it: scheme, authority and the
//! `Host` value, made once when the snapshot is built instead of formatted
//! (and parsed again) per request.

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme, Uri};
use http::HeaderValue;

use crate::config::{self, UpstreamTarget};

#[derive(Debug, Clone)]
pub struct RouteTarget {
    scheme: Scheme,
    authority: Authority,
    host: HeaderValue,
    base_path: String,
}

impl RouteTarget {
    /// Fails only for an upstream validation would have refused; the
    /// message names the authority.
    pub fn new(upstream: &UpstreamTarget) -> Result<Self, String> {
        let text = upstream.authority();
        let authority = Authority::from_maybe_shared(Bytes::from(text.clone()))
            .map_err(|e| format!("upstream authority `{text}` is not valid: {e}"))?;
        let host = HeaderValue::from_str(&text)
            .map_err(|_| format!("upstream authority `{text}` is not a valid Host"))?;
        let scheme = match upstream.scheme {
            config::Scheme::Http => Scheme::HTTP,
            config::Scheme::Https => Scheme::HTTPS,
        };
        Ok(RouteTarget {
            scheme,
            authority,
            host,
            base_path: upstream.base_path.clone(),
        })
    }

    /// `host` or `host:port`, as the `Host` header and the logs give it.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// The `Host` header value for the upstream.
    pub fn host(&self) -> &HeaderValue {
        &self.host
    }

    /// The upstream URI for a request's path and query (which starts with
    /// `/`): the base path, if any, then the request's.
    pub fn uri(&self, pq: &PathAndQuery) -> Result<Uri, http::Error> {
        let pq = if self.base_path.is_empty() {
            pq.clone()
        } else {
            let mut joined = String::with_capacity(self.base_path.len() + pq.as_str().len());
            joined.push_str(&self.base_path);
            joined.push_str(pq.as_str());
            PathAndQuery::from_maybe_shared(Bytes::from(joined))?
        };
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(pq)
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(scheme: config::Scheme, host: &str, port: u16, base: &str) -> RouteTarget {
        RouteTarget::new(&UpstreamTarget {
            scheme,
            host: host.into(),
            port,
            base_path: base.into(),
        })
        .unwrap()
    }

    #[test]
    fn the_uri_and_host_are_the_upstreams_with_the_base_path() {
        let t = target(config::Scheme::Https, "h", 8443, "/base");
        let pq = PathAndQuery::from_static("/v2/codes?a=b");
        assert_eq!(
            t.uri(&pq).unwrap().to_string(),
            "https://h:8443/base/v2/codes?a=b"
        );
        assert_eq!(t.host(), "h:8443");
        let t = target(config::Scheme::Http, "::1", 80, "");
        assert_eq!(
            t.uri(&PathAndQuery::from_static("/p")).unwrap().to_string(),
            "http://[::1]/p"
        );
        assert_eq!(t.authority().as_str(), "[::1]");
    }
}
