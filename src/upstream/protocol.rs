//! Which HTTP version an upstream connection speaks, and what HTTP/2 changes
//! for the request path:
//!
//! - ALPN: a client made for a route with `http2` on offers `h2` then
//!   `http/1.1` over TLS; the upstream picks. hyper-util's pool then keeps
//!   ONE shared h2 connection per pool key (scheme and authority) of the
//!   client, and every request to that upstream rides it as a stream. Each
//!   `UpstreamClient` has a pool of its own (its trust roots, client
//!   identity and SNI), so an identity never rides another's connection.
//!   Plain-text upstreams stay HTTP/1.1 (no h2c).
//! - Which failures of an h2 exchange mean the upstream did not process the
//!   request (RFC 9113 section 8.7): its stream refused (`REFUSED_STREAM`),
//!   or a GOAWAY whose last stream id is below the request's. Such a request
//!   may be sent again whatever its method; a stream reset any other way
//!   may have been acted on.
//! - `Host`: on h2 the authority travels as `:authority` (hyper takes it
//!   from the URI), and a `Host` header beside it is refused by some
//!   servers (nginx 1.22 answers 400, "duplicate host"), so a client that
//!   may speak h2 leaves `Host` to the connection: `leave_host_to_connection`.
//! - Counts of the connections opened, by protocol, for `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

/// The HTTP version a connection speaks, as ALPN named it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http1,
    H2,
}

impl Protocol {
    /// Its ALPN name: the `protocol` label and log field.
    pub fn label(self) -> &'static str {
        match self {
            Protocol::Http1 => "http/1.1",
            Protocol::H2 => "h2",
        }
    }

    /// What a TLS handshake agreed on (none: HTTP/1.1).
    pub fn from_alpn(alpn: Option<&[u8]>) -> Protocol {
        match alpn {
            Some(b"h2") => Protocol::H2,
            _ => Protocol::Http1,
        }
    }
}

/// The ALPN protocols offered in the TLS handshake, most wanted first.
pub fn alpn(http2: bool) -> Vec<Vec<u8>> {
    if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    }
}

/// Takes `Host` off a request to an `https` upstream, for the connection
/// to write: h2 sends the URI's authority as `:authority` and no `Host`;
/// on HTTP/1.1 hyper-util writes `Host` from the URI, host then `:port`
/// unless the port is the scheme's default. A route's URI authority and
/// the `Host` its credentials signed are the same text, written the same
/// way (`RouteTarget`), so either way the upstream reads exactly the
/// authority that was signed. Plain-text upstreams never speak h2 and keep
/// their `Host`.
pub fn leave_host_to_connection<B>(req: &mut http::Request<B>) {
    if req.uri().scheme() == Some(&http::uri::Scheme::HTTPS) {
        req.headers_mut().remove(http::header::HOST);
    }
}

/// Upstream connections opened, by protocol. One is shared by every client
/// `Kept` makes, so the counts outlive reloads.
#[derive(Debug, Default)]
pub struct Opened {
    http1: AtomicU64,
    h2: AtomicU64,
}

impl Opened {
    pub(super) fn count(&self, protocol: Protocol) {
        let n = match protocol {
            Protocol::Http1 => &self.http1,
            Protocol::H2 => &self.h2,
        };
        n.fetch_add(1, Ordering::Relaxed);
    }

    /// How many connections of `protocol` were opened so far.
    pub fn get(&self, protocol: Protocol) -> u64 {
        match protocol {
            Protocol::Http1 => self.http1.load(Ordering::Relaxed),
            Protocol::H2 => self.h2.load(Ordering::Relaxed),
        }
    }
}

/// Whether `e` (a failed exchange, with its causes) is an HTTP/2 stream the
/// upstream said it never processed: reset by the upstream with
/// `REFUSED_STREAM`, or above the last stream id of the upstream's GOAWAY
/// (h2 fails those streams, and any opened after the GOAWAY, with the
/// remote GOAWAY; the streams at or below it run on, and fail with a
/// broken pipe if the connection then ends under them).
pub fn unprocessed(e: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(e), |c| c.source())
        .filter_map(|c| c.downcast_ref::<h2::Error>())
        .any(|h2| {
            h2.is_remote() && (h2.is_go_away() || h2.reason() == Some(h2::Reason::REFUSED_STREAM))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn h2_is_offered_first_only_when_asked() {
        assert_eq!(alpn(true), vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
        assert_eq!(alpn(false), vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn no_alpn_is_http1() {
        assert_eq!(Protocol::from_alpn(None), Protocol::Http1);
        assert_eq!(Protocol::from_alpn(Some(b"http/1.1")), Protocol::Http1);
        assert_eq!(Protocol::from_alpn(Some(b"h2")), Protocol::H2);
    }

    #[test]
    fn host_is_left_to_the_connection_only_over_tls() {
        let mut tls = http::Request::get("https://api.test:8443/x")
            .header("host", "api.test:8443")
            .body(())
            .unwrap();
        leave_host_to_connection(&mut tls);
        assert!(tls.headers().get("host").is_none());
        let mut plain = http::Request::get("http://api.test/x")
            .header("host", "api.test")
            .body(())
            .unwrap();
        leave_host_to_connection(&mut plain);
        assert_eq!(plain.headers()["host"], "api.test");
    }

    #[test]
    fn a_stream_error_of_our_own_is_not_the_upstreams_word() {
        // h2 makes remote errors only from frames it receives; one it made
        // itself (a reason alone) says nothing about the upstream.
        let local = h2::Error::from(h2::Reason::REFUSED_STREAM);
        assert!(!unprocessed(&local));
        let io = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "closed");
        assert!(!unprocessed(&io));
    }
}
