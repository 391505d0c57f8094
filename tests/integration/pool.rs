//! The upstream pool's idle cap (`idle_connections`): a burst opens as many
//! upstream connections as it needs; once it is answered, only
//! `idle_connections` of them stay open, and they serve what comes next.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::harness::*;

/// An upstream that counts its open connections and holds every request
/// until `release`.
struct Counting {
    url: String,
    accepted: Arc<AtomicUsize>,
    open: Arc<AtomicUsize>,
    arrived: Arc<AtomicUsize>,
    gate: Arc<Semaphore>,
}

impl Counting {
    async fn start() -> Counting {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (accepted, open, arrived) = Default::default();
        let gate = Arc::new(Semaphore::new(0));
        let up = Counting {
            url,
            accepted,
            open,
            arrived,
            gate,
        };
        let (accepted, open) = (Arc::clone(&up.accepted), Arc::clone(&up.open));
        let (arrived, gate) = (Arc::clone(&up.arrived), Arc::clone(&up.gate));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                accepted.fetch_add(1, SeqCst);
                open.fetch_add(1, SeqCst);
                let (open, arrived, gate) =
                    (Arc::clone(&open), Arc::clone(&arrived), Arc::clone(&gate));
                tokio::spawn(async move {
                    let service = service_fn(move |_req| {
                        let (arrived, gate) = (Arc::clone(&arrived), Arc::clone(&gate));
                        async move {
                            arrived.fetch_add(1, SeqCst);
                            gate.acquire().await.unwrap().forget();
                            Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from("ok"))))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                    open.fetch_sub(1, SeqCst);
                });
            }
        });
        up
    }
}

fn config(upstream: &str, idle: usize) -> String {
    format!(
        r#"
[proxy]
listen = "127.0.0.1:0"
idle_connections = {idle}

[[route]]
name = "api"
hosts = ["api.example.test"]
upstream = "{upstream}"
"#
    )
}

#[tokio::test]
async fn after_a_burst_only_idle_connections_upstream_connections_stay_open() {
    let up = Counting::start().await;
    let sidecar = Sidecar::start(&config(&up.url, 2)).await;
    let proxy = sidecar.proxy();
    let burst: Vec<_> = (0..5)
        .map(|i| tokio::spawn(send(proxy, get(&format!("http://api.example.test/{i}")))))
        .collect();
    // Five requests held at the upstream at once: five connections.
    eventually("five requests at the upstream", || {
        up.arrived.load(SeqCst) == 5
    })
    .await;
    assert_eq!(up.accepted.load(SeqCst), 5);
    up.gate.add_permits(100);
    for answer in burst {
        assert_eq!(answer.await.unwrap().status, 200);
    }
    // The three past the cap close as they go idle; two stay.
    eventually("two upstream connections left open", || {
        up.open.load(SeqCst) == 2
    })
    .await;
    // And they are used: two more requests at once open nothing new.
    let (a, b) = tokio::join!(
        send(proxy, get("http://api.example.test/a")),
        send(proxy, get("http://api.example.test/b"))
    );
    assert_eq!((a.status.as_u16(), b.status.as_u16()), (200, 200));
    assert_eq!(up.accepted.load(SeqCst), 5);
    assert_eq!(up.open.load(SeqCst), 2);
}

#[tokio::test]
async fn idle_connections_zero_keeps_no_upstream_connection() {
    let up = Counting::start().await;
    up.gate.add_permits(100);
    let sidecar = Sidecar::start(&config(&up.url, 0)).await;
    for i in 0..2 {
        let answer = send(
            sidecar.proxy(),
            get(&format!("http://api.example.test/{i}")),
        )
        .await;
        assert_eq!(answer.status, 200);
    }
    eventually("no upstream connection left open", || {
        up.open.load(SeqCst) == 0
    })
    .await;
    assert_eq!(up.accepted.load(SeqCst), 2, "each request dialled");
}
