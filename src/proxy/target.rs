//! Where a request is headed: the destination an absolute-form request names,
//! and the URI a route sends it to.

use std::borrow::Cow;

use http::uri::{PathAndQuery, Uri};

use crate::config::{Scheme, UpstreamTarget};
use crate::error::ProxyError;
use crate::snapshot::RouteTarget;

/// The (scheme, host, port) an absolute-form request names. `host` is
/// lower-case, without brackets or a trailing dot: borrowed from the URI
/// when it is written so already, as clients write it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination<'u> {
    pub scheme: Scheme,
    pub host: Cow<'u, str>,
    pub port: u16,
}

pub fn absolute(uri: &Uri) -> Result<Destination<'_>, ProxyError> {
    let scheme = match uri.scheme_str() {
        Some("http") => Scheme::Http,
        Some("https") => Scheme::Https,
        Some(other) => {
            return Err(ProxyError::BadRequest(format!(
                "unsupported scheme `{other}`; only http:// and https:// URLs can be proxied"
            )))
        }
        None => {
            return Err(ProxyError::BadRequest(
                "the proxy listener takes absolute-form requests (`GET http://host/path`), as clients send them through HTTP_PROXY; to call a route by its base URL, give the route a `listen` address".into(),
            ))
        }
    };
    let authority = uri
        .authority()
        .ok_or_else(|| ProxyError::BadRequest("the request URL has no host".into()))?;
    if authority.as_str().contains('@') {
        return Err(ProxyError::BadRequest(
            "user info in the request URL is not forwarded; remove `user@` from the URL".into(),
        ));
    }
    let host = authority
        .host()
        .trim_matches(['[', ']'])
        .trim_end_matches('.');
    let host = match host.bytes().any(|b| b.is_ascii_uppercase()) {
        true => Cow::Owned(host.to_ascii_lowercase()),
        false => Cow::Borrowed(host),
    };
    if host.is_empty() {
        return Err(ProxyError::BadRequest(
            "the request URL has an empty host".into(),
        ));
    }
    Ok(Destination {
        scheme,
        host,
        port: authority.port_u16().unwrap_or(scheme.default_port()),
    })
}

/// The absolute `https` URI of an origin-form request read inside an
/// intercepted tunnel to `host:port`.
pub fn inside_tunnel(host: &str, port: u16, request: &Uri) -> Result<Uri, ProxyError> {
    let up = UpstreamTarget {
        scheme: Scheme::Https,
        host: host.to_string(),
        port,
        base_path: String::new(),
    };
    upstream_uri(&up, request)
}

/// A route's upstream + its base path + the request's path and query, from
/// the parts made when the snapshot was built.
pub fn route_uri(target: &RouteTarget, request: &Uri) -> Result<Uri, ProxyError> {
    let root = PathAndQuery::from_static("/");
    let pq = request.path_and_query().unwrap_or(&root);
    if !pq.as_str().starts_with('/') {
        return Err(ProxyError::BadRequest(format!(
            "request target `{pq}` is not a path"
        )));
    }
    target
        .uri(pq)
        .map_err(|e| ProxyError::BadRequest(format!("cannot build the upstream URL: {e}")))
}

/// `upstream` + its base path + the request's path and query.
pub fn upstream_uri(upstream: &UpstreamTarget, request: &Uri) -> Result<Uri, ProxyError> {
    let pq = request
        .path_and_query()
        .map(PathAndQuery::as_str)
        .unwrap_or("/");
    if !pq.starts_with('/') {
        return Err(ProxyError::BadRequest(format!(
            "request target `{pq}` is not a path"
        )));
    }
    let text = format!(
        "{}://{}{}{}",
        upstream.scheme.as_str(),
        upstream.authority(),
        upstream.base_path,
        pq
    );
    text.parse()
        .map_err(|e| ProxyError::BadRequest(format!("cannot build the upstream URL: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_form_is_parsed_and_normalised() {
        let uri = "http://API.Example.com./v2?x=1".parse().unwrap();
        let d = absolute(&uri).unwrap();
        assert_eq!(
            d,
            Destination {
                scheme: Scheme::Http,
                host: "api.example.com".into(),
                port: 80
            }
        );
        let uri = "https://[::1]:8443/".parse().unwrap();
        let d = absolute(&uri).unwrap();
        assert_eq!((&*d.host, d.port), ("::1", 8443));
        let uri = "http://api.example.com/v2".parse().unwrap();
        let d = absolute(&uri).unwrap();
        assert!(matches!(d.host, Cow::Borrowed("api.example.com")));
        assert!(matches!(
            absolute(&"/v2".parse().unwrap()),
            Err(ProxyError::BadRequest(_))
        ));
    }

    #[test]
    fn upstream_uri_keeps_path_and_query_under_the_base() {
        let up = UpstreamTarget {
            scheme: Scheme::Https,
            host: "h".into(),
            port: 8443,
            base_path: "/base".into(),
        };
        let u = upstream_uri(&up, &"http://x/v2/codes?a=b".parse().unwrap()).unwrap();
        assert_eq!(u.to_string(), "https://h:8443/base/v2/codes?a=b");
        let up = UpstreamTarget {
            scheme: Scheme::Https,
            host: "h".into(),
            port: 443,
            base_path: String::new(),
        };
        let u = upstream_uri(&up, &"/p".parse().unwrap()).unwrap();
        assert_eq!(u.to_string(), "https://h/p");
    }
}
