//! What the lifecycle asks of a kind of credential: a new token now and
//! then (`fetch`), a last chance to keep state durably at shutdown
//! (`flush`), and the word for what it hands out in log lines (`noun`).
//! Failures come back as `SourceError`, which says only what the lifecycle
//! acts on: a message safe to show, and whether the credential itself was
//! refused (a person must act).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use http::HeaderValue;

/// A fetch under way.
pub type Fetch<'a> = Pin<Box<dyn Future<Output = Result<NewToken, SourceError>> + Send + 'a>>;
/// A flush under way.
pub type Flush<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// A token a source obtained.
pub struct NewToken {
    /// What requests carry, marked sensitive (OAuth2: the whole `Bearer`
    /// header value; issued keys: the raw key, placed by the credential).
    pub value: HeaderValue,
    /// How long it may be used, counted from when it was asked for.
    pub lifetime: Duration,
}

/// Where a token manager's tokens come from. Only the manager's background
/// task calls `fetch`, one call at a time (single-flight by construction);
/// whatever state renewing needs (a refresh token, a store) is the
/// source's own. `label` names the credential in log lines.
pub trait TokenSource: Send + Sync + 'static {
    fn fetch<'a>(&'a self, label: &'a str) -> Fetch<'a>;

    /// At shutdown, after the last fetch: store what could not be stored.
    fn flush<'a>(&'a self, label: &'a str) -> Flush<'a> {
        let _ = label;
        Box::pin(std::future::ready(()))
    }

    /// A token the source learned of without fetching (one another replica
    /// obtained and published): returns when there is one. The manager
    /// serves it at once, without waiting for its own renewal time. By
    /// default there never is one.
    fn announced(&self) -> Fetch<'_> {
        Box::pin(std::future::pending())
    }

    /// What the source hands out, for log lines ("OAuth2 token").
    fn noun(&self) -> &'static str;
}

/// Why a source obtained no token. The message is free of secrets (it is
/// logged, shown in `/status` and in 503 answers); the lifecycle retries
/// every failure with backoff.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SourceError {
    message: String,
    /// Set when the issuer refused the credential itself (a revoked
    /// refresh token): what a person must do, for the log.
    refused: Option<&'static str>,
}

impl SourceError {
    /// A failure that may pass (an outage, a bad answer).
    pub fn new(message: impl Into<String>) -> SourceError {
        SourceError {
            message: message.into(),
            refused: None,
        }
    }

    /// The issuer refused the credential itself; `advice` says what a person
    /// must do. Still retried, in case the cause is fixed elsewhere.
    pub fn refused(message: impl Into<String>, advice: &'static str) -> SourceError {
        SourceError {
            message: message.into(),
            refused: Some(advice),
        }
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// What a person must do, when the credential itself was refused.
    pub fn refused_advice(&self) -> Option<&'static str> {
        self.refused
    }
}
