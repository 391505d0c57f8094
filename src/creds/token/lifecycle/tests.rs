//! Expiry, renewal, backoff, single-flight and the 401 throttle on tokio's
//! paused clock, with a scripted token source instead of a network.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Semaphore;

use super::*;
use crate::creds::token::source::Fetch;

/// What the scripted endpoint answers, in order; `Fail` once it runs out.
#[derive(Clone, Copy)]
enum Answer {
    Token(&'static str, u64),
    Fail,
}

struct Script {
    state: Arc<State>,
}

struct State {
    answers: Mutex<VecDeque<Answer>>,
    calls: AtomicUsize,
    /// When set, each fetch waits for a permit (a slow endpoint).
    gate: Option<Semaphore>,
}

impl TokenSource for Script {
    fn fetch<'a>(&'a self, _label: &'a str) -> Fetch<'a> {
        Box::pin(self.next())
    }

    fn noun(&self) -> &'static str {
        "scripted token"
    }
}

impl Script {
    async fn next(&self) -> Result<NewToken, SourceError> {
        self.state.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(gate) = &self.state.gate {
            gate.acquire()
                .await
                .map_err(|_| SourceError::new("gate closed"))?
                .forget();
        }
        let answer = self.state.answers.lock().unwrap().pop_front();
        match answer.unwrap_or(Answer::Fail) {
            Answer::Token(t, secs) => {
                let mut bearer = HeaderValue::from_str(&format!("Bearer {t}")).unwrap();
                bearer.set_sensitive(true);
                Ok(NewToken {
                    value: bearer,
                    lifetime: Duration::from_secs(secs),
                })
            }
            Answer::Fail => Err(SourceError::new("scripted endpoint answered 500")),
        }
    }
}

fn manager(answers: &[Answer], gated: bool) -> (TokenManager, Arc<State>) {
    let state = Arc::new(State {
        answers: Mutex::new(answers.iter().copied().collect()),
        calls: AtomicUsize::new(0),
        gate: gated.then(|| Semaphore::new(0)),
    });
    let script = Script {
        state: Arc::clone(&state),
    };
    let m = TokenManager::start("test", Box::new(script), 0.8, Duration::from_secs(5), None);
    (m, state)
}

fn calls(state: &State) -> usize {
    state.calls.load(Ordering::SeqCst)
}

async fn token(m: &TokenManager) -> String {
    let v = m.current().await.expect("a token");
    v.to_str()
        .unwrap()
        .trim_start_matches("Bearer ")
        .to_string()
}

#[tokio::test(start_paused = true)]
async fn the_token_is_renewed_in_the_background_before_it_expires() {
    let (m, state) = manager(&[Answer::Token("a", 100), Answer::Token("b", 100)], false);
    assert_eq!(token(&m).await, "a");
    assert_eq!(calls(&state), 1);
    // Renewal falls between 72s and 80s (0.8 of 100s, minus up to 10% jitter).
    tokio::time::sleep(Duration::from_secs(71)).await;
    assert_eq!(calls(&state), 1);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(calls(&state), 2);
    assert_eq!(token(&m).await, "b");
}

#[tokio::test(start_paused = true)]
async fn during_an_outage_a_valid_token_is_kept_and_an_expired_one_never_used() {
    let (m, state) = manager(&[Answer::Token("a", 10)], false);
    assert_eq!(token(&m).await, "a");
    // Renewal starts at ~8s and fails from then on; the token is still good.
    tokio::time::sleep(Duration::from_millis(9_900)).await;
    assert!(calls(&state) >= 2);
    assert_eq!(token(&m).await, "a");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let e = m.current().await.unwrap_err();
    assert!(e.retry_after >= Duration::from_secs(1));
    assert!(e.cause.unwrap().contains("500"));
}

#[tokio::test(start_paused = true)]
async fn failures_back_off_exponentially() {
    let (m, state) = manager(&[], false);
    // Attempts at 0, then ~0.25, 0.5, 1, 2, 4, 8, 16, 30, 30 s apart (each
    // scaled by 0.5..1): ten attempts need well over 30s, and never more.
    tokio::time::sleep(Duration::from_secs(30)).await;
    let early = calls(&state);
    assert!((5..=11).contains(&early), "{early} attempts in 30s");
    tokio::time::sleep(Duration::from_secs(300)).await;
    let later = calls(&state) - early;
    assert!(
        (10..=21).contains(&later),
        "{later} attempts in the next 300s"
    );
    drop(m);
}

#[tokio::test(start_paused = true)]
async fn many_waiting_requests_share_one_fetch() {
    let (m, state) = manager(&[Answer::Token("a", 100)], true);
    let m = Arc::new(m);
    let waiters: Vec<_> = (0..1000)
        .map(|_| {
            let m = Arc::clone(&m);
            tokio::spawn(async move { token(&m).await })
        })
        .collect();
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    state.gate.as_ref().unwrap().add_permits(1);
    for w in waiters {
        assert_eq!(w.await.unwrap(), "a");
    }
    assert_eq!(calls(&state), 1);
}

#[tokio::test(start_paused = true)]
async fn a_401_renews_once_and_then_is_throttled() {
    let answers = [
        Answer::Token("a", 100),
        Answer::Token("b", 100),
        Answer::Token("c", 100),
    ];
    let (m, state) = manager(&answers, false);
    assert_eq!(token(&m).await, "a");
    let a = m.current().await.unwrap();
    assert!(m.unauthorized(|v| v == a));
    assert_eq!(token(&m).await, "b");
    assert_eq!(calls(&state), 2);
    // A late 401 for the old token: replay with the new one, renew nothing.
    assert!(m.unauthorized(|v| v == a));
    let b = m.current().await.unwrap();
    // The new token is refused too, within the gap: no second renewal.
    assert!(!m.unauthorized(|v| v == b));
    assert_eq!(token(&m).await, "b");
    assert_eq!(calls(&state), 2);
    tokio::time::sleep(FORCED_RENEWAL_GAP).await;
    assert!(m.unauthorized(|v| v == b));
    assert_eq!(token(&m).await, "c");
    assert_eq!(calls(&state), 3);
}

#[tokio::test(start_paused = true)]
async fn a_request_with_no_token_waits_then_gives_up() {
    let (m, _state) = manager(&[], false);
    let started = Instant::now();
    let e = m.current().await.unwrap_err();
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    assert_eq!(e.waited, Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn stopping_waits_for_a_fetch_under_way_and_starts_no_other() {
    let (m, state) = manager(&[Answer::Token("a", 1)], true);
    let m = Arc::new(m);
    tokio::task::yield_now().await;
    assert_eq!(calls(&state), 1, "the first fetch is under way, held");
    m.stop();
    let waiter = tokio::spawn({
        let m = Arc::clone(&m);
        async move { m.stopped().await }
    });
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(!waiter.is_finished(), "stopped() waits for the fetch");
    state.gate.as_ref().unwrap().add_permits(100);
    waiter.await.unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(calls(&state), 1, "no renewal after stop");
}
