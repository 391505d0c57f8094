//! The panic guard every request runs under: a panic in a handler answers
//! that request (500) and keeps the connection, instead of dropping it.

use std::any::Any;
use std::convert::Infallible;
use std::fmt::Display;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::Poll;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::{service_fn, Service};

/// A service answering each request with `handler`, or with `on_panic()`
/// if the handler panics; `listener` names the listener in the log line.
pub fn guarded<L, H, F, B, P>(
    listener: L,
    handler: H,
    on_panic: P,
) -> impl Service<
    Request<Incoming>,
    Response = Response<B>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<B>, Infallible>> + Send + 'static,
> + Clone
where
    L: Display + Send + Sync + 'static,
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    P: Fn() -> Response<B> + Clone + Send + Sync + 'static,
    B: http_body::Body + Send + 'static,
{
    let listener = Arc::new(listener);
    service_fn(move |req: Request<Incoming>| {
        let listener = Arc::clone(&listener);
        let on_panic = on_panic.clone();
        let handler = handler.clone();
        let method = req.method().clone();
        // The handler is called inside the guard too.
        let handled = catch_panic(async move { handler(req).await });
        async move {
            let resp = handled.await.unwrap_or_else(|payload| {
                // The payload is quoted only when it is a literal from the
                // code: a formatted one may hold request data or a secret.
                let message = payload.downcast_ref::<&'static str>().copied();
                tracing::error!(%listener, %method, panic = message.unwrap_or("(withheld)"), "request handler panicked; answered 500");
                on_panic()
            });
            Ok::<_, Infallible>(resp)
        }
    })
}

/// Runs `fut`, turning a panic inside it into `Err(payload)`. Each poll runs
/// under `catch_unwind`, which costs nothing until something panics; the
/// future stays where hyper put it (no task spawned, no allocation), and
/// the connection is answered and kept.
async fn catch_panic<F: Future>(fut: F) -> Result<F::Output, Box<dyn Any + Send>> {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(move |cx| {
        match std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(out)) => Poll::Ready(Ok(out)),
            Err(payload) => Poll::Ready(Err(payload)),
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_in_the_future_is_caught_and_its_payload_kept() {
        assert_eq!(catch_panic(async { 7 }).await.ok(), Some(7));
        let caught = catch_panic(async {
            tokio::task::yield_now().await;
            panic!("boom")
        })
        .await
        .unwrap_err();
        assert_eq!(caught.downcast_ref::<&'static str>(), Some(&"boom"));
    }
}
