//! The one error type of the request path, tagged with who is at fault, and
//! the one place it becomes a response. Responses made by countersign carry
//! `x-countersign-error`, so an app can tell them from the upstream's own.

use http::{HeaderValue, Response, StatusCode};

use crate::body::{self, BodyTimeout, ProxyBody, SpoolError};
use crate::creds::{CredError, MemorySpent};
use crate::upstream::{ConnectErrorKind, UpstreamError};

/// The response header naming why countersign answered itself.
pub const ERROR_HEADER: &str = "x-countersign-error";

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("malformed request: {0}")]
    BadRequest(String),
    #[error("no route matches {host}:{port}{path}; add a [[route]] whose `hosts` lists `{host}` to proxy.toml, or set proxy.unmatched = \"passthrough\" to forward unmatched requests without credentials")]
    NoRoute {
        host: String,
        port: u16,
        path: String,
    },
    #[error("route `{route}` does not take {method} {path}: {rule}; its listener sends nothing else upstream")]
    OutsideRoute {
        route: String,
        method: String,
        path: String,
        rule: String,
    },
    #[error("CONNECT to {host}:{port} refused: no route matches it and [connect] tunnel does not list it; add a route (its HTTPS is then intercepted and signed) or list the host in [connect] tunnel to pass it through unseen")]
    ConnectDenied { host: String, port: u16 },
    #[error("CONNECT to {host}:{port} matches a route, but HTTPS interception has no CA; set [intercept] ca_cert and ca_key (create them with `countersign ca init`)")]
    InterceptUnavailable { host: String, port: u16 },
    #[error("cannot intercept {host}: {detail}")]
    Intercept { host: String, detail: String },
    #[error("cannot open a tunnel to {authority}")]
    Tunnel {
        authority: String,
        #[source]
        source: crate::upstream::ConnectError,
    },
    #[error("request body could not be signed")]
    Body(#[from] SpoolError),
    /// The memory budget had no room for the body a credential signs
    /// whole; the app may try again when other requests are done.
    #[error(transparent)]
    MemorySpent(MemorySpent),
    /// The app stalled while its body streamed upstream.
    #[error(transparent)]
    BodyTimeout(BodyTimeout),
    #[error("request cannot be signed")]
    Credential(#[from] CredError),
    #[error(transparent)]
    Upstream(UpstreamError),
    /// The request handler panicked; the details are in countersign's log.
    #[error(
        "internal error: countersign failed while handling this request; its log has the details"
    )]
    Internal,
}

/// An exchange that broke because the app's streamed body stalled is the
/// app's timeout, not an upstream failure.
impl From<UpstreamError> for ProxyError {
    fn from(e: UpstreamError) -> Self {
        if let UpstreamError::Exchange { source, .. } = &e {
            if let Some(t) = BodyTimeout::find(source) {
                return ProxyError::BodyTimeout(t);
            }
        }
        ProxyError::Upstream(e)
    }
}

impl ProxyError {
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ProxyError::NoRoute { .. } | ProxyError::OutsideRoute { .. } => StatusCode::FORBIDDEN,
            ProxyError::ConnectDenied { .. } | ProxyError::InterceptUnavailable { .. } => {
                StatusCode::FORBIDDEN
            }
            ProxyError::Intercept { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            ProxyError::Tunnel { source, .. } => connect_status(source.kind),
            ProxyError::Body(SpoolError::TooLarge { .. } | SpoolError::TooLargeToSign { .. }) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ProxyError::Body(SpoolError::Client(_)) => StatusCode::BAD_REQUEST,
            ProxyError::Body(SpoolError::Timeout(_)) | ProxyError::BodyTimeout(_) => {
                StatusCode::REQUEST_TIMEOUT
            }
            ProxyError::Body(SpoolError::Disk { .. }) => StatusCode::INTERNAL_SERVER_ERROR,
            ProxyError::MemorySpent(_) => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::Credential(CredError::Request(_)) => StatusCode::BAD_REQUEST,
            ProxyError::Credential(CredError::Session(_)) => StatusCode::FORBIDDEN,
            ProxyError::Credential(CredError::Random(_)) => StatusCode::INTERNAL_SERVER_ERROR,
            ProxyError::Credential(CredError::TokenUnavailable { .. }) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ProxyError::Upstream(UpstreamError::Timeout { .. }) => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Upstream(UpstreamError::Connect { source, .. }) => {
                connect_status(source.kind)
            }
            ProxyError::Upstream(UpstreamError::ClientBody { .. }) => StatusCode::BAD_REQUEST,
            ProxyError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ProxyError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable, short reason for the response header, logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            ProxyError::BadRequest(_) => "bad-request",
            ProxyError::NoRoute { .. } | ProxyError::OutsideRoute { .. } => "no-route",
            ProxyError::ConnectDenied { .. } => "connect-denied",
            ProxyError::InterceptUnavailable { .. } => "intercept-unavailable",
            ProxyError::Intercept { .. } => "intercept-failed",
            ProxyError::Tunnel { source, .. } => connect_reason(source.kind),
            ProxyError::Body(SpoolError::TooLarge { .. } | SpoolError::TooLargeToSign { .. }) => {
                "body-too-large"
            }
            ProxyError::Body(SpoolError::Client(_)) => "client-body",
            ProxyError::Body(SpoolError::Timeout(_)) | ProxyError::BodyTimeout(_) => "body-timeout",
            ProxyError::Body(SpoolError::Disk { .. }) => "spool-failed",
            ProxyError::MemorySpent(_) => "spool-memory-spent",
            ProxyError::Credential(CredError::Request(_)) => "unsignable-request",
            ProxyError::Credential(CredError::Session(_)) => "session-unauthorized",
            ProxyError::Credential(CredError::Random(_)) => "internal",
            ProxyError::Credential(CredError::TokenUnavailable { .. }) => "token-unavailable",
            ProxyError::Upstream(UpstreamError::Timeout { .. }) => "upstream-timeout",
            ProxyError::Upstream(UpstreamError::Connect { source, .. }) => {
                connect_reason(source.kind)
            }
            ProxyError::Upstream(UpstreamError::ClientBody { .. }) => "client-body",
            ProxyError::Upstream(
                UpstreamError::Exchange { .. }
                | UpstreamError::Closed { .. }
                | UpstreamError::Unprocessed { .. },
            ) => "upstream-failed",
            ProxyError::Internal => "internal",
        }
    }

    /// The global bound that refused the request, if one did: the label of
    /// `countersign_limit_rejections_total`. (`MemorySpent` is counted
    /// under `spool_memory` by the budget itself, with the spills.)
    pub fn limit(&self) -> Option<&'static str> {
        match self {
            ProxyError::Body(SpoolError::TooLarge { .. } | SpoolError::TooLargeToSign { .. }) => {
                Some("max_body")
            }
            ProxyError::Body(SpoolError::Timeout(t)) | ProxyError::BodyTimeout(t) => {
                Some(t.limit())
            }
            _ => None,
        }
    }

    /// When an app may retry a request refused for a passing reason.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            ProxyError::Credential(c) => c.retry_after(),
            // Memory comes back as soon as any request in flight ends.
            ProxyError::MemorySpent(_) => Some(std::time::Duration::from_secs(1)),
            _ => None,
        }
    }

    /// This error and its causes, outermost first, joined for humans.
    pub fn chain(&self) -> String {
        crate::causes::chain(self)
    }

    pub fn into_response(self) -> Response<ProxyBody> {
        let mut resp = Response::new(body::full(format!("countersign: {}\n", self.chain())));
        *resp.status_mut() = self.status();
        let headers = resp.headers_mut();
        headers.insert(ERROR_HEADER, HeaderValue::from_static(self.reason()));
        if let Some(after) = self.retry_after() {
            // Whole seconds, rounded up: "retry now" would only fail again.
            let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            headers.insert(http::header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        resp
    }
}

fn connect_status(kind: ConnectErrorKind) -> StatusCode {
    match kind {
        ConnectErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ConnectErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ConnectErrorKind::Resolve | ConnectErrorKind::Refused | ConnectErrorKind::Tls => {
            StatusCode::BAD_GATEWAY
        }
    }
}

fn connect_reason(kind: ConnectErrorKind) -> &'static str {
    match kind {
        ConnectErrorKind::Tls => "upstream-tls",
        ConnectErrorKind::Timeout => "upstream-timeout",
        ConnectErrorKind::Resolve | ConnectErrorKind::Refused => "upstream-unreachable",
        ConnectErrorKind::Forbidden => "egress-denied",
    }
}

#[cfg(test)]
mod tests;
