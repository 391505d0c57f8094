//! What runs in a request's future, its drop included when it is cut short,
//! is logged inside the request's span.

use super::*;

use crate::log_capture::Lines;

use std::task::Waker;

fn subscriber(lines: &Lines) -> impl tracing::Subscriber {
    let out = lines.clone();
    tracing_subscriber::fmt()
        .with_ansi(false)
        .without_time()
        .with_writer(move || out.clone())
        .finish()
}

/// Logs when dropped.
struct Noisy;

impl Drop for Noisy {
    fn drop(&mut self) {
        tracing::info!("dropped");
    }
}

/// Pending on its first poll, ready on the second.
async fn twice(span: &Span) -> u32 {
    let noisy = Noisy;
    span.record("route", "r");
    tracing::info!("first poll");
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await;
    tracing::info!("second poll");
    drop(noisy);
    7
}

fn poll<F: Future>(future: Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn each_poll_and_the_finish_are_in_the_span() {
    let lines = Lines::default();
    tracing::subscriber::with_default(subscriber(&lines), || {
        let span = tracing::info_span!("http", route = tracing::field::Empty);
        let inner = std::pin::pin!(Some(twice(&span)));
        let mut run = std::pin::pin!(InSpan {
            span: &span,
            future: inner,
        });
        assert!(poll(run.as_mut()).is_pending());
        assert_eq!(poll(run.as_mut()), Poll::Ready(7));
        assert!(run.future.is_none());
        tracing::info!("outside");
    });
    let text = lines.text();
    for line in ["first poll", "second poll", "dropped"] {
        assert!(
            text.contains(&format!(
                "http{{route=\"r\"}}: countersign::proxy::in_span::tests: {line}"
            )),
            "{text}"
        );
    }
    assert!(
        text.contains("INFO countersign::proxy::in_span::tests: outside"),
        "{text}"
    );
}

#[test]
fn a_future_cut_short_is_dropped_in_the_span() {
    let lines = Lines::default();
    tracing::subscriber::with_default(subscriber(&lines), || {
        let span = tracing::info_span!("http", route = tracing::field::Empty);
        let inner = std::pin::pin!(Some(twice(&span)));
        let mut run = Box::pin(InSpan {
            span: &span,
            future: inner,
        });
        assert!(poll(run.as_mut()).is_pending());
        drop(run);
    });
    let text = lines.text();
    assert!(
        text.contains("http{route=\"r\"}: countersign::proxy::in_span::tests: dropped"),
        "{text}"
    );
    assert!(!text.contains("second poll"), "{text}");
}
