//! POSTing a form to an endpoint the operator named (an OAuth2 token
//! endpoint, a key issuer; or a GET, for AWS's container credentials) and reading its small answer within a deadline.
//! The endpoint is named in the config, so internal addresses are fine
//! (`Trust::Named`); countersign's own listeners still are not.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Limited};
use rustls_pki_types::CertificateDer;

use crate::body;
use crate::egress::{EgressPolicy, Trust};
use crate::pki::identity::ClientIdentity;
use crate::upstream::{ClientSpec, UpstreamClient, UpstreamError, UpstreamSettings};

/// Answers of token endpoints and issuers are small; anything bigger is
/// not one.
pub const MAX_ANSWER: usize = 64 * 1024;

/// Why no answer was read; callers turn it into their own error, which
/// says which endpoint it was.
#[derive(Debug)]
pub enum PostError {
    Timeout(Duration),
    Transport(UpstreamError),
    /// Reading failed, or the answer is larger than `MAX_ANSWER`.
    Body,
}

#[derive(Debug)]
pub struct FormEndpoint {
    client: UpstreamClient,
    url: Uri,
    host: HeaderValue,
    deadline: Duration,
}

/// How an endpoint is reached: its URL (and the config key naming it, for
/// errors), extra trust roots and an optional client certificate.
pub struct Reach<'a> {
    pub url: &'a Uri,
    pub url_key: &'a str,
    pub roots: &'a [CertificateDer<'static>],
    pub identity: Option<&'a ClientIdentity>,
}

impl FormEndpoint {
    pub fn new(
        reach: Reach<'_>,
        settings: UpstreamSettings,
        egress: Arc<EgressPolicy>,
    ) -> Result<FormEndpoint, String> {
        let spec = ClientSpec {
            extra_roots: reach.roots.to_vec(),
            identity: reach.identity.cloned(),
            trust: Some(Trust::Named),
            ..ClientSpec::default()
        };
        let client = UpstreamClient::new(&spec, egress, settings)?;
        let authority = reach.url.authority().map_or("", |a| a.as_str());
        let host = HeaderValue::from_str(authority)
            .map_err(|_| format!("the {} host is not a valid Host header", reach.url_key))?;
        Ok(FormEndpoint {
            client,
            url: reach.url.clone(),
            host,
            deadline: settings.response_timeout,
        })
    }

    /// POSTs `form` (already encoded) with `headers` added, and reads the
    /// whole answer, all within the upstream response timeout.
    pub async fn post(
        &self,
        headers: HeaderMap,
        form: String,
    ) -> Result<(StatusCode, Bytes), PostError> {
        let (status, _, body) = self.post_answer(headers, form).await?;
        Ok((status, body))
    }

    /// `post`, also returning the answer's headers (a DPoP nonce).
    pub async fn post_answer(
        &self,
        headers: HeaderMap,
        form: String,
    ) -> Result<(StatusCode, HeaderMap, Bytes), PostError> {
        self.post_to(&self.url, self.host.clone(), headers, form)
            .await
    }

    /// `post`, to `url` instead (an endpoint an OpenID Provider's discovery
    /// document named), through the same client.
    pub async fn post_at(
        &self,
        url: &Uri,
        headers: HeaderMap,
        form: String,
    ) -> Result<(StatusCode, Bytes), PostError> {
        let (status, _, body) = self.post_answer_at(url, headers, form).await?;
        Ok((status, body))
    }

    /// `post_answer`, to `url` instead.
    pub async fn post_answer_at(
        &self,
        url: &Uri,
        headers: HeaderMap,
        form: String,
    ) -> Result<(StatusCode, HeaderMap, Bytes), PostError> {
        self.post_to(url, host_of(url)?, headers, form).await
    }

    /// `get`, from `url` instead.
    pub async fn get_at(
        &self,
        url: &Uri,
        headers: HeaderMap,
    ) -> Result<(StatusCode, Bytes), PostError> {
        let mut req = Request::new(body::empty());
        *req.uri_mut() = url.clone();
        *req.headers_mut() = headers;
        req.headers_mut().insert(HOST, host_of(url)?);
        let (status, _, body) = self.exchange(req).await?;
        Ok((status, body))
    }

    async fn post_to(
        &self,
        url: &Uri,
        host: HeaderValue,
        headers: HeaderMap,
        form: String,
    ) -> Result<(StatusCode, HeaderMap, Bytes), PostError> {
        let mut req = Request::new(());
        *req.method_mut() = Method::POST;
        *req.uri_mut() = url.clone();
        *req.headers_mut() = headers;
        let h = req.headers_mut();
        h.insert(HOST, host);
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        h.insert(CONTENT_LENGTH, HeaderValue::from(form.len()));
        self.exchange(req.map(|()| body::full(form))).await
    }

    /// The URL every request goes to.
    pub fn url(&self) -> &Uri {
        &self.url
    }

    /// GETs the endpoint with `headers` added (the AWS container
    /// credentials endpoint), reading the answer as `post` does.
    pub async fn get(&self, headers: HeaderMap) -> Result<(StatusCode, Bytes), PostError> {
        let mut req = Request::new(body::empty());
        *req.uri_mut() = self.url.clone();
        *req.headers_mut() = headers;
        req.headers_mut().insert(HOST, self.host.clone());
        let (status, _, body) = self.exchange(req).await?;
        Ok((status, body))
    }

    async fn exchange(
        &self,
        req: Request<body::ProxyBody>,
    ) -> Result<(StatusCode, HeaderMap, Bytes), PostError> {
        let exchange = async {
            let resp = self.client.send(req).await.map_err(PostError::Transport)?;
            let status = resp.status();
            let headers = resp.headers().clone();
            let bytes = Limited::new(resp.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|_| PostError::Body)?
                .to_bytes();
            Ok((status, headers, bytes))
        };
        tokio::time::timeout(self.deadline, exchange)
            .await
            .unwrap_or(Err(PostError::Timeout(self.deadline)))
    }
}

/// The Host header of an absolute URL. Callers pass URLs already checked
/// to have an authority (a discovery document's are), so the error is
/// not expected; it reads as an unreadable answer.
fn host_of(url: &Uri) -> Result<HeaderValue, PostError> {
    url.authority()
        .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        .ok_or(PostError::Body)
}
