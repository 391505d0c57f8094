//! One exchange with the issuing endpoint: POST the form (credentials in the
//! body, never the URL; a master key as `Authorization: Bearer`), read the
//! key from the answer (the whole body, or a JSON field) and work out how
//! long it may be used. Errors are safe to log: a status or a field name,
//! never a body or a value.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::Value;

use crate::config::{IssuedKeyConfig, KeyResponse, Secret};
use crate::creds::form::Form;
use crate::creds::form_post::{FormEndpoint, PostError, Reach, MAX_ANSWER};
use crate::egress::EgressPolicy;
use crate::upstream::{UpstreamError, UpstreamSettings};

/// Longer keys are refused: a key this size is an error page, not a key.
const MAX_KEY: usize = 8 * 1024;
/// Longer lifetimes are cut to this, so deadlines stay representable.
const MAX_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);
/// The default margin: at most this, and at most a tenth of the lifetime.
const DEFAULT_MARGIN: Duration = Duration::from_secs(5);

/// A key the issuer handed out.
pub struct NewKey {
    /// The key as issued, marked sensitive.
    pub key: HeaderValue,
    /// How long it may be used, counted from when it was asked for: its
    /// lifetime minus the margin.
    pub usable: Duration,
}

/// Why no key was obtained. Every message is free of secrets.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("issuing endpoint answered {0}")]
    Status(StatusCode),
    #[error("issuing endpoint did not answer within {0:?}")]
    Timeout(Duration),
    #[error("key request failed")]
    Transport(#[source] UpstreamError),
    #[error(
        "reading the issuing endpoint's answer failed (or it is larger than {MAX_ANSWER} bytes)"
    )]
    Body,
    #[error("the issuing endpoint answered with an empty body")]
    Empty,
    #[error("the issuing endpoint's answer is not a JSON object")]
    NotJson,
    #[error("the issuing endpoint's JSON answer has no non-empty string field `{0}`")]
    NoKeyField(String),
    #[error("the issuing endpoint's JSON answer has no usable `{0}` (seconds), and no lifetime is configured")]
    Lifetime(String),
    #[error("the issued key is longer than {MAX_KEY} bytes or holds characters other than visible ASCII")]
    BadKey,
    #[error("the issued key lasts {lifetime:?}, which is not longer than its margin {margin:?}")]
    TooShort {
        lifetime: Duration,
        margin: Duration,
    },
}

impl From<PostError> for IssueError {
    fn from(e: PostError) -> IssueError {
        match e {
            PostError::Timeout(d) => IssueError::Timeout(d),
            PostError::Transport(e) => IssueError::Transport(e),
            PostError::Body => IssueError::Body,
        }
    }
}

#[derive(Debug)]
pub struct Issuer {
    post: FormEndpoint,
    /// The form-encoded request body, built once.
    body: Secret,
    /// `Bearer <master key>`, marked sensitive.
    bearer: Option<HeaderValue>,
    response: KeyResponse,
    lifetime: Option<Duration>,
    margin: Option<Duration>,
}

impl Issuer {
    pub fn new(
        config: &IssuedKeyConfig,
        settings: UpstreamSettings,
        egress: Arc<EgressPolicy>,
    ) -> Result<Issuer, String> {
        let reach = Reach {
            url: &config.issue_url,
            url_key: "issue_url",
            roots: &config.ca_roots,
            identity: config.client_identity.as_ref(),
        };
        let mut form = Form::default();
        for (name, value) in &config.form {
            form.push(name, value.expose());
        }
        let bearer = match &config.bearer {
            Some(key) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {}", key.expose()))
                    .map_err(|_| "the bearer master key is not a valid header value".to_string())?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        Ok(Issuer {
            post: FormEndpoint::new(reach, settings, egress)?,
            body: Secret::new(form.into_string()),
            bearer,
            response: config.response.clone(),
            lifetime: config.lifetime,
            margin: config.margin,
        })
    }

    /// Asks for a new key.
    pub async fn issue(&self) -> Result<NewKey, IssueError> {
        let mut headers = HeaderMap::new();
        if matches!(self.response, KeyResponse::Json { .. }) {
            headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        }
        if let Some(bearer) = &self.bearer {
            headers.insert(AUTHORIZATION, bearer.clone());
        }
        let body = self.body.expose().to_string();
        let (status, answer) = self.post.post(headers, body).await?;
        self.parse(status, &answer)
    }

    fn parse(&self, status: StatusCode, body: &Bytes) -> Result<NewKey, IssueError> {
        if !status.is_success() {
            return Err(IssueError::Status(status));
        }
        let (key, lifetime) = match &self.response {
            KeyResponse::Text => (text_key(body)?, self.lifetime),
            KeyResponse::Json {
                key_field,
                expires_in_field,
            } => json_key(body, key_field, expires_in_field.as_deref(), self.lifetime)?,
        };
        let lifetime = lifetime.ok_or_else(|| {
            let field = match &self.response {
                KeyResponse::Json {
                    expires_in_field: Some(f),
                    ..
                } => f.clone(),
                _ => "expires_in".to_string(),
            };
            IssueError::Lifetime(field)
        })?;
        Ok(NewKey {
            key,
            usable: usable(lifetime, self.margin)?,
        })
    }
}

/// The whole body, trimmed.
fn text_key(body: &Bytes) -> Result<HeaderValue, IssueError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| IssueError::BadKey)?
        .trim();
    if text.is_empty() {
        return Err(IssueError::Empty);
    }
    key_value(text)
}

/// The key from `key_field`, and the lifetime from `expires_in_field` when
/// the answer has it (else the configured one).
fn json_key(
    body: &Bytes,
    key_field: &str,
    expires_in_field: Option<&str>,
    configured: Option<Duration>,
) -> Result<(HeaderValue, Option<Duration>), IssueError> {
    if body.is_empty() {
        return Err(IssueError::Empty);
    }
    let json: Value = serde_json::from_slice(body).map_err(|_| IssueError::NotJson)?;
    let json = json.as_object().ok_or(IssueError::NotJson)?;
    let key = json
        .get(key_field)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| IssueError::NoKeyField(key_field.to_string()))?;
    let lifetime = match expires_in_field.and_then(|f| Some((f, json.get(f)?))) {
        None | Some((_, Value::Null)) => configured,
        Some((field, v)) => Some(seconds(v).ok_or_else(|| IssueError::Lifetime(field.into()))?),
    };
    Ok((key_value(key)?, lifetime))
}

fn seconds(v: &Value) -> Option<Duration> {
    let secs = v
        .as_f64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        .filter(|s: &f64| s.is_finite() && *s > 0.0)?;
    Some(Duration::from_secs_f64(
        secs.min(MAX_LIFETIME.as_secs_f64()),
    ))
}

/// A key goes in a header or a URL as it is: visible ASCII only.
fn key_value(key: &str) -> Result<HeaderValue, IssueError> {
    let printable = key.len() <= MAX_KEY && key.bytes().all(|b| b.is_ascii_graphic());
    let mut value = printable
        .then(|| HeaderValue::from_str(key).ok())
        .flatten()
        .ok_or(IssueError::BadKey)?;
    value.set_sensitive(true);
    Ok(value)
}

/// The lifetime minus the margin (by default the smaller of 5s and a tenth
/// of the lifetime).
pub fn usable(lifetime: Duration, margin: Option<Duration>) -> Result<Duration, IssueError> {
    let margin = margin.unwrap_or_else(|| DEFAULT_MARGIN.min(lifetime / 10));
    lifetime
        .checked_sub(margin)
        .filter(|d| !d.is_zero())
        .ok_or(IssueError::TooShort { lifetime, margin })
}

#[cfg(test)]
mod tests;
