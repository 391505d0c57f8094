//! The life of one credential's token (an OAuth2 access token, or a key
//! from an issuer: whatever its `TokenSource` fetches). One background task
//! per credential is the only caller of the source (single-flight by
//! construction): it fetches at start, renews at `refresh_at` of the
//! lifetime (with jitter), retries failures with exponential backoff, and
//! renews at once when a 401 discards the current token. Requests only read
//! the current token, or wait (bounded by `wait_for_token`) for one to
//! appear.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::HeaderValue;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use super::backoff::{backoff, random_unit};
use super::registry::{Renewing, Stopped};
use super::source::{NewToken, SourceError, TokenSource};

/// A 401 forces at most one renewal per this interval, so a storm of 401s
/// (a misconfigured scope, say) does not hammer the token endpoint.
pub const FORCED_RENEWAL_GAP: Duration = Duration::from_secs(5);

/// A token in use. `value` is what the source made of it (OAuth2: the
/// whole `Bearer` header value; issued keys: the raw key), marked sensitive.
pub struct Token {
    pub value: HeaderValue,
    pub expires_at: Instant,
    renew_at: Instant,
    issued_at: Instant,
}

/// What operators see of a token manager (metrics, status): counts and
/// times, never a token.
#[derive(Debug, Clone, Default)]
pub struct TokenStats {
    pub fetches_ok: u64,
    pub fetches_failed: u64,
    /// Total time spent in token requests.
    pub fetch_seconds: f64,
    pub age: Option<Duration>,
    pub expires_in: Option<Duration>,
    pub last_error: Option<String>,
}

impl Token {
    fn valid_at(&self, now: Instant) -> bool {
        now < self.expires_at
    }
}

/// No valid token within `wait_for_token`.
#[derive(Debug, Clone)]
pub struct Unavailable {
    pub waited: Duration,
    pub retry_after: Duration,
    /// The last fetch failure, when there is one (safe to show).
    pub cause: Option<String>,
}

/// What the background task and the requests share.
struct Shared {
    label: String,
    source: Box<dyn TokenSource>,
    refresh_at: f64,
    wait_for_token: Duration,
    current: watch::Sender<Option<Arc<Token>>>,
    wake: Notify,
    status: Mutex<Status>,
    /// Held by a fetch from before it starts until it ends (store included).
    busy: Arc<tokio::sync::Mutex<()>>,
}

#[derive(Default)]
struct Status {
    /// While failing: when the next attempt is due.
    retry_at: Option<Instant>,
    last_error: Option<String>,
    last_forced: Option<Instant>,
    fetches_ok: u64,
    fetches_failed: u64,
    fetch_seconds: f64,
    /// The last failure was the source refusing the credential itself.
    refused: bool,
}

pub struct TokenManager {
    shared: Arc<Shared>,
    task: tokio::task::AbortHandle,
}

impl std::fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenManager")
            .field("credential", &self.shared.label)
            .finish_non_exhaustive()
    }
}

impl Drop for TokenManager {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TokenManager {
    /// Whether `sent` is the current token.
    pub fn holds(&self, sent: &HeaderValue) -> bool {
        self.shared
            .current
            .borrow()
            .as_ref()
            .is_some_and(|t| t.value == sent)
    }

    /// Whether the source refused the credential itself on the last attempt
    /// (OAuth2: a revoked, expired or reused refresh token): a person must
    /// act.
    pub fn refused(&self) -> bool {
        self.shared.lock_status().refused
    }

    /// A manager for credential `label` whose tokens come from `source`;
    /// renews at `refresh_at` of each token's lifetime, lets requests wait up
    /// to `wait_for_token`. Starts fetching the first token at once,
    /// publishing `initial` (a token and when it was asked for) first when
    /// given.
    pub fn start(
        label: &str,
        source: Box<dyn TokenSource>,
        refresh_at: f64,
        wait_for_token: Duration,
        initial: Option<(NewToken, Instant)>,
    ) -> TokenManager {
        let shared = Arc::new(Shared {
            label: label.to_string(),
            source,
            refresh_at,
            wait_for_token,
            current: watch::Sender::new(None),
            wake: Notify::new(),
            status: Mutex::default(),
            busy: Arc::default(),
        });
        if let Some((issued, sent_at)) = initial {
            shared.publish(issued, sent_at);
        }
        let task = tokio::spawn(run(Arc::clone(&shared))).abort_handle();
        TokenManager { shared, task }
    }

    /// Whether a fetch is under way.
    pub fn is_fetching(&self) -> bool {
        self.shared.busy.try_lock().is_err()
    }

    /// Whether a token valid right now is held.
    pub fn has_valid_token(&self) -> bool {
        self.shared
            .current
            .borrow()
            .as_ref()
            .is_some_and(|t| t.valid_at(Instant::now()))
    }

    pub fn stats(&self) -> TokenStats {
        let now = Instant::now();
        let (age, expires_in) = match &*self.shared.current.borrow() {
            Some(t) => (
                Some(now.saturating_duration_since(t.issued_at)),
                Some(t.expires_at.saturating_duration_since(now)),
            ),
            None => (None, None),
        };
        let status = self.shared.lock_status();
        TokenStats {
            fetches_ok: status.fetches_ok,
            fetches_failed: status.fetches_failed,
            fetch_seconds: status.fetch_seconds,
            age,
            expires_in,
            last_error: status.last_error.clone(),
        }
    }

    /// Stops renewing. A fetch already under way still finishes (and stores
    /// a rotated refresh token), so nothing is lost; `stopped` waits for it.
    pub fn stop(&self) {
        self.task.abort();
    }

    /// Returns once no fetch is under way and a rotated refresh token the
    /// store refused has had a last try at being stored (call after `stop`).
    pub async fn stopped(&self) {
        let _idle = self.shared.busy.lock().await;
        self.shared.source.flush(&self.shared.label).await;
    }

    /// The current token's value, waiting up to `wait_for_token` when there
    /// is no valid one.
    pub async fn current(&self) -> Result<HeaderValue, Unavailable> {
        let usable =
            |t: &Option<Arc<Token>>| t.as_ref().is_some_and(|t| t.valid_at(Instant::now()));
        let mut rx = self.shared.current.subscribe();
        let wait = self.shared.wait_for_token;
        let found = match tokio::time::timeout(wait, rx.wait_for(usable)).await {
            Ok(Ok(current)) => current.as_ref().map(|t| t.value.clone()),
            _ => None,
        };
        found.ok_or_else(|| self.unavailable())
    }

    /// The current token's value if one is valid now, without waiting.
    pub fn peek(&self) -> Option<HeaderValue> {
        let current = self.shared.current.borrow();
        let token = current.as_ref()?;
        token.valid_at(Instant::now()).then(|| token.value.clone())
    }

    fn unavailable(&self) -> Unavailable {
        let status = self.shared.lock_status();
        let retry_after = status
            .retry_at
            .map(|at| at.saturating_duration_since(Instant::now()))
            .unwrap_or_default()
            .max(Duration::from_secs(1));
        Unavailable {
            waited: self.shared.wait_for_token,
            retry_after,
            cause: status.last_error.clone(),
        }
    }

    /// The upstream answered 401 to a request that carried the token for
    /// which `was_sent` holds (given a token's value). Discards that token
    /// if it is still the current one and asks for a new one. Returns
    /// whether the request is worth replaying: false when the token was
    /// renewed by a 401 less than `FORCED_RENEWAL_GAP` ago.
    pub fn unauthorized(&self, was_sent: impl Fn(&HeaderValue) -> bool) -> bool {
        let is_sent = |t: &Option<Arc<Token>>| t.as_ref().is_some_and(|t| was_sent(&t.value));
        if !is_sent(&self.shared.current.borrow()) {
            // Already replaced (or being replaced): the replay uses the new one.
            return true;
        }
        let now = Instant::now();
        {
            let mut status = self.shared.lock_status();
            if status
                .last_forced
                .is_some_and(|at| now.duration_since(at) < FORCED_RENEWAL_GAP)
            {
                tracing::warn!(credential = %self.shared.label, "upstream refused a fresh token again (401); not renewing more than once per {FORCED_RENEWAL_GAP:?}");
                return false;
            }
            status.last_forced = Some(now);
        }
        let discarded = self.shared.current.send_if_modified(|t| {
            let hit = is_sent(t);
            if hit {
                *t = None;
            }
            hit
        });
        if discarded {
            tracing::info!(credential = %self.shared.label, "upstream refused the token (401); renewing it");
            self.shared.wake.notify_one();
        }
        true
    }
}

impl Shared {
    fn lock_status(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// When the next fetch is due: now without a token, at its renewal time
    /// with one, and never before the backoff of a failure has passed.
    fn due(&self) -> Instant {
        let token_due = match &*self.current.borrow() {
            Some(t) => t.renew_at,
            None => Instant::now(),
        };
        match self.lock_status().retry_at {
            Some(retry) => retry.max(token_due),
            None => token_due,
        }
    }

    async fn fetch(self: Arc<Self>) -> Result<NewToken, SourceError> {
        self.source.fetch(&self.label).await
    }

    fn publish(&self, issued: NewToken, sent_at: Instant) {
        let jitter = 0.9 + 0.1 * random_unit();
        let token = Token {
            value: issued.value,
            expires_at: sent_at + issued.lifetime,
            renew_at: sent_at + issued.lifetime.mul_f64(self.refresh_at * jitter),
            issued_at: sent_at,
        };
        {
            let mut status = self.lock_status();
            status.retry_at = None;
            status.last_error = None;
            status.refused = false;
        }
        tracing::info!(credential = %self.label, lifetime_s = issued.lifetime.as_secs(), "{} obtained", self.source.noun());
        self.current.send_replace(Some(Arc::new(token)));
    }

    fn failed(&self, error: &SourceError, failures: u32) {
        let delay = backoff(failures);
        let message = error.message();
        {
            let mut status = self.lock_status();
            status.retry_at = Some(Instant::now() + delay);
            status.last_error = Some(message.to_string());
            status.refused = error.refused_advice().is_some();
        }
        let still_valid = self
            .current
            .borrow()
            .as_ref()
            .is_some_and(|t| t.valid_at(Instant::now()));
        if let Some(advice) = error.refused_advice() {
            tracing::error!(credential = %self.label, error = %message, "{advice}");
        } else {
            tracing::warn!(credential = %self.label, error = %message, retry_in_ms = delay.as_millis() as u64, still_valid, "{} fetch failed", self.source.noun());
        }
    }
}

/// The loop of the one task that asks the source for tokens.
async fn run(shared: Arc<Shared>) {
    let mut failures: u32 = 0;
    loop {
        let due = shared.due();
        tokio::select! {
            () = tokio::time::sleep_until(due) => {}
            () = shared.wake.notified() => continue,
            announced = shared.source.announced() => {
                if let Ok(issued) = announced {
                    failures = 0;
                    shared.publish(issued, Instant::now());
                }
                continue;
            }
        }
        let sent_at = Instant::now();
        // Its own task: stopping the manager must not cut a refresh between
        // the server rotating the refresh token and the store saving it. The
        // busy guard is taken before the task exists, so `stopped` cannot
        // miss a fetch that is about to start.
        let busy = Arc::clone(&shared.busy).lock_owned().await;
        let fetch = Arc::clone(&shared).fetch();
        let result = match tokio::spawn(async move {
            let _busy = busy;
            fetch.await
        })
        .await
        {
            // A token that expired on the way (a slow endpoint, a tiny
            // expires_in) counts as a failure, or renewals would loop.
            Ok(Ok(issued)) if sent_at + issued.lifetime <= Instant::now() => Err(SourceError::new(
                "token response has an unusable expires_in",
            )),
            Ok(result) => result,
            Err(_) => Err(SourceError::new("the token fetch was interrupted")),
        };
        {
            let mut status = shared.lock_status();
            status.fetch_seconds += sent_at.elapsed().as_secs_f64();
            match result {
                Ok(_) => status.fetches_ok += 1,
                Err(_) => status.fetches_failed += 1,
            }
        }
        match result {
            Ok(issued) => {
                failures = 0;
                shared.publish(issued, sent_at);
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                shared.failed(&e, failures);
            }
        }
    }
}

impl Renewing for TokenManager {
    fn stop(&self) {
        TokenManager::stop(self);
    }

    fn stopped(&self) -> Stopped<'_> {
        Box::pin(TokenManager::stopped(self))
    }
}

#[cfg(test)]
mod tests;
