//! A request's future run inside its `http` span: entered for each poll and
//! for the drop of an unfinished future (a client gone mid-request), as
//! `tracing::Instrumented` does, without one more enter and exit to drop a
//! future that has already finished (Instrumented enters its span on every
//! drop), and with the span borrowed, so the request can record its route
//! on it without looking the current span up.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tracing::Span;

/// `future` (pinned where the caller keeps it; `None` once finished), run
/// inside `span`.
pub struct InSpan<'a, F> {
    pub span: &'a Span,
    pub future: Pin<&'a mut Option<F>>,
}

impl<F: Future> Future for InSpan<'_, F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let _in = this.span.enter();
        let polled = this
            .future
            .as_mut()
            .as_pin_mut()
            .expect("awaited once, never polled after it finished")
            .poll(cx);
        if polled.is_ready() {
            // Its state (nothing much, finished) goes while the span is in.
            this.future.set(None);
        }
        polled
    }
}

impl<F> Drop for InSpan<'_, F> {
    fn drop(&mut self) {
        if self.future.is_some() {
            let _in = self.span.enter();
            self.future.set(None);
        }
    }
}

#[cfg(test)]
mod tests;
