//! Deadlines for reading a request body from the app: an idle gap between
//! body bytes, and a total time spent waiting for them. Only time spent
//! waiting on the app counts: while the consumer (the spool, or an upstream
//! applying backpressure) is not asking for bytes, the clock is stopped.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::BoxError;

/// Which deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyWait {
    /// No body bytes for `body_idle_timeout`.
    Idle,
    /// Waited `body_timeout` in all for the body.
    Total,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", match .which {
    BodyWait::Idle => format!("the app sent no request body bytes for {:?} (proxy.body_idle_timeout)", .after),
    BodyWait::Total => format!("the app took longer than {:?} to send the request body (proxy.body_timeout)", .after),
})]
pub struct BodyTimeout {
    pub which: BodyWait,
    pub after: Duration,
}

impl BodyTimeout {
    /// The label of `countersign_limit_rejections_total`.
    pub fn limit(&self) -> &'static str {
        match self.which {
            BodyWait::Idle => "body_idle",
            BodyWait::Total => "body_total",
        }
    }

    /// The timeout somewhere in `e`'s chain of causes, if any.
    pub fn find(e: &(dyn std::error::Error + 'static)) -> Option<BodyTimeout> {
        let mut source = Some(e);
        while let Some(s) = source {
            if let Some(t) = s.downcast_ref::<BodyTimeout>() {
                return Some(t.clone());
            }
            source = s.source();
        }
        None
    }
}

/// A request body that fails with `BodyTimeout` when the app stalls.
pub struct DeadlineBody<B> {
    inner: B,
    idle: Duration,
    total: Duration,
    /// Time spent waiting on the app in earlier waits.
    waited: Duration,
    /// The wait under way: when it started and which deadline ends it.
    waiting: Option<(Instant, BodyWait)>,
    sleep: Option<Pin<Box<Sleep>>>,
    done: bool,
}

impl<B> DeadlineBody<B> {
    pub fn new(inner: B, idle: Duration, total: Duration) -> Self {
        DeadlineBody {
            inner,
            idle,
            total,
            waited: Duration::ZERO,
            waiting: None,
            sleep: None,
            done: false,
        }
    }

    /// Starts the clock for the next wait, unless it is running.
    fn start_wait(&mut self) {
        if self.waiting.is_some() {
            return;
        }
        let now = Instant::now();
        let left = self.total.saturating_sub(self.waited);
        let (after, which) = if self.idle < left {
            (self.idle, BodyWait::Idle)
        } else {
            (left, BodyWait::Total)
        };
        match self.sleep.as_mut() {
            Some(s) => s.as_mut().reset(now + after),
            None => self.sleep = Some(Box::pin(tokio::time::sleep_until(now + after))),
        }
        self.waiting = Some((now, which));
    }

    fn end_wait(&mut self) {
        if let Some((started, _)) = self.waiting.take() {
            self.waited += started.elapsed();
        }
    }
}

impl<B> Body for DeadlineBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        this.start_wait();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.end_wait();
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let (Some(sleep), Some((_, which))) = (this.sleep.as_mut(), this.waiting) else {
            return Poll::Pending;
        };
        if sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        this.done = true;
        let after = match which {
            BodyWait::Idle => this.idle,
            BodyWait::Total => this.total,
        };
        Poll::Ready(Some(Err(Box::new(BodyTimeout { which, after }))))
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use tokio::sync::mpsc;

    /// The app's side of a body: chunks arrive when the test sends them.
    struct AppBody(mpsc::Receiver<Bytes>);

    impl Body for AppBody {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            self.0.poll_recv(cx).map(|c| c.map(|c| Ok(Frame::data(c))))
        }
    }

    /// An app that sends `n` one-byte chunks, `gap` apart.
    fn trickle(gap: Duration, n: usize) -> AppBody {
        let (tx, rx) = mpsc::channel(1);
        tokio::spawn(async move {
            for _ in 0..n {
                tokio::time::sleep(gap).await;
                if tx.send(Bytes::from_static(b"x")).await.is_err() {
                    return;
                }
            }
        });
        AppBody(rx)
    }

    /// Reads `body` to its end, pausing `pause` before asking for each frame
    /// (a consumer applying backpressure). Returns the bytes read, and the
    /// timeout that ended it early, if any.
    async fn read_all<B>(mut body: B, pause: Duration) -> (usize, Option<BodyTimeout>)
    where
        B: Body<Data = Bytes, Error = BoxError> + Unpin,
    {
        let mut n = 0;
        loop {
            tokio::time::sleep(pause).await;
            match body.frame().await {
                None => return (n, None),
                Some(Ok(f)) => n += f.into_data().map_or(0, |d| d.len()),
                Some(Err(e)) => return (n, Some(BodyTimeout::find(&*e).expect("a body timeout"))),
            }
        }
    }

    const IDLE: Duration = Duration::from_secs(30);
    const TOTAL: Duration = Duration::from_secs(90);

    #[tokio::test(start_paused = true)]
    async fn a_body_that_never_comes_fails_at_the_idle_deadline() {
        let (_app, rx) = mpsc::channel(1);
        let started = Instant::now();
        let (n, e) = read_all(DeadlineBody::new(AppBody(rx), IDLE, TOTAL), Duration::ZERO).await;
        let e = e.expect("timed out");
        assert_eq!((n, e.which, e.limit()), (0, BodyWait::Idle, "body_idle"));
        assert_eq!(started.elapsed(), IDLE);
        assert!(e.to_string().contains("proxy.body_idle_timeout"), "{e}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickle_under_the_idle_gap_fails_at_the_total_deadline() {
        let started = Instant::now();
        let mut body = DeadlineBody::new(trickle(Duration::from_secs(20), 10), IDLE, TOTAL);
        let (n, e) = read_all(&mut body, Duration::ZERO).await;
        let e = e.expect("timed out");
        assert_eq!((n, e.which, e.limit()), (4, BodyWait::Total, "body_total"));
        assert_eq!(started.elapsed(), TOTAL);
        // Once failed, the body is over.
        assert!(body.is_end_stream());
        assert!(body.frame().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn time_the_consumer_takes_is_not_the_apps() {
        let body = DeadlineBody::new(trickle(Duration::ZERO, 8), IDLE, TOTAL);
        let (n, e) = read_all(body, Duration::from_secs(60)).await;
        assert_eq!((n, e.map(|e| e.which)), (8, None));
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_on_time_passes_whole() {
        let body = DeadlineBody::new(trickle(Duration::from_secs(29), 3), IDLE, TOTAL);
        assert!(!body.is_end_stream());
        let (n, e) = read_all(body, Duration::ZERO).await;
        assert_eq!((n, e.map(|e| e.which)), (3, None));
    }
}
