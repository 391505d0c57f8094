//! A panic inside a request becomes a 500 `internal` answer, logged
//! without its message, on a connection that goes on serving.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tracing_subscriber::layer::SubscriberExt as _;

use crate::harness::*;

/// A tracing layer that panics inside whatever task logs a `request failed`
/// warning for `host`: a panic in the middle of a request handler, from
/// outside the code under test.
struct PanicOnFailureFor(&'static str);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for PanicOnFailureFor {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Fields(String);
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                self.0.push_str(&format!("{}={v:?} ", f.name()));
            }
        }
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        if fields.0.contains("request failed") && fields.0.contains(&format!("host={}", self.0)) {
            panic!("{}", format!("formatted panic quoting secret-{}", 42));
        }
    }
}

#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Current-thread runtime: every task of the sidecar logs through (and
/// panics in) this thread's subscriber.
#[tokio::test]
async fn a_panic_in_a_request_is_answered_500_and_the_connection_serves_on() {
    let log = Log::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::registry()
        .with(PanicOnFailureFor("panic.test"))
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(move || writer.clone()),
        );
    let _guard = tracing::subscriber::set_default(subscriber);
    let upstream = Upstream::http().await;
    let sidecar = Sidecar::start(&format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\n[[route]]\nname = \"api\"\nhosts = [\"api.test\"]\nupstream = \"{}\"\n",
        upstream.http_url()
    ))
    .await;

    // Both requests on one keep-alive connection.
    let stream = tokio::net::TcpStream::connect(sidecar.proxy())
        .await
        .unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = |url: &str| {
        http::Request::get(url)
            .header("host", http::Uri::try_from(url).unwrap().host().unwrap())
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    let panicked = sender
        .send_request(req("http://panic.test/x"))
        .await
        .expect("an answer, not a dropped connection");
    assert_eq!(panicked.status(), 500);
    assert_eq!(
        panicked.headers().get("x-countersign-error").unwrap(),
        "internal"
    );
    drop(panicked);
    sender.ready().await.expect("the connection is still open");
    let served = sender
        .send_request(req("http://api.test/after"))
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(upstream.last().uri.path(), "/after");

    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("request handler panicked"), "{text}");
    assert!(
        !text.contains("secret-42"),
        "the panic message is withheld: {text}"
    );
    let metrics = sidecar.app.metrics().render().unwrap();
    assert!(
        metrics.contains("countersign_errors_total{reason=\"internal\"} 1"),
        "{metrics}"
    );
}
