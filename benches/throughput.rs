//! Throughput figures, printed (no assertions: timing goals live here, not
//! in tests). Run with `cargo bench --bench throughput`.
//!
//! 1. PayPay OPA signing of one request (nonce, epoch, HMAC-SHA256).
//! 2. Hashing a body as the signature needs it (MD5 of type + body), MiB/s.
//! 3. Requests through the forward proxy to an upstream on 127.0.0.1, with
//!    the PayPay credential: one keep-alive connection (latency), then 32
//!    connections at once (requests per second).
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "a benchmark: a panic is how a failed setup is reported"
)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use countersign::config::Secret;
use countersign::creds::{PayPayOpa, SignParams};
use countersign::{App, StartOptions};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

fn main() {
    signing();
    hashing();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(through_the_proxy());
}

fn paypay() -> PayPayOpa {
    PayPayOpa::new(Secret::new("bench-key"), Secret::new("bench-secret"), 8)
}

fn signing() {
    let cred = paypay();
    let body = vec![b'x'; 1024];
    let n = 100_000;
    let started = Instant::now();
    for _ in 0..n {
        let (mut parts, ()) = Request::post("http://api.test/v2/codes")
            .header("content-type", "application/json")
            .body(())
            .expect("request")
            .into_parts();
        let mut hash = cred.body_hash(&parts);
        hash.update(&body);
        cred.apply(&mut parts, hash.finish(), &SignParams::default())
            .expect("signed");
    }
    let each = started.elapsed() / n;
    println!("paypay-opa: sign a request with a 1 KiB body: {each:?} each");
}

fn hashing() {
    let cred = paypay();
    let (parts, ()) = Request::post("http://api.test/upload")
        .header("content-type", "application/octet-stream")
        .body(())
        .expect("request")
        .into_parts();
    let chunk = vec![0u8; 64 * 1024];
    let total_mib = 256;
    let started = Instant::now();
    let mut hash = cred.body_hash(&parts);
    for _ in 0..total_mib * 16 {
        hash.update(&chunk);
    }
    let digest = hash.finish();
    assert!(digest.md5().is_some());
    let secs = started.elapsed().as_secs_f64();
    println!(
        "paypay-opa: body hashing: {:.0} MiB/s",
        total_mib as f64 / secs
    );
}

async fn upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = service_fn(|req: Request<Incoming>| async move {
                    let _ = req.into_body().collect().await;
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

async fn through_the_proxy() {
    let upstream = upstream().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("proxy.toml");
    let toml = format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\ncontrol_listen = \"127.0.0.1:0\"\n[credential.pp]\ntype = \"paypay-opa\"\napi_key = \"bench-key\"\napi_secret = \"bench-secret\"\n[[route]]\nname = \"api\"\nhosts = [\"api.test\"]\nupstream = \"http://{upstream}\"\ncredential = \"pp\"\n"
    );
    std::fs::write(&config, toml).expect("config");
    let options = StartOptions {
        watch_files: false,
        reload_on_sighup: false,
    };
    let app = App::start(&config, options)
        .await
        .expect("countersign starts");
    let proxy = app.proxy_addr();

    let mut latencies = one_connection(proxy, 5_000).await;
    latencies.sort();
    let pick = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    println!(
        "proxy, 1 connection, POST 1 KiB signed: p50 {:?}, p99 {:?}",
        pick(0.50),
        pick(0.99)
    );

    let connections = 32;
    let each = 500;
    let started = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|_| tokio::spawn(one_connection(proxy, each)))
        .collect();
    for task in tasks {
        task.await.expect("connection task");
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "proxy, {connections} connections, POST 1 KiB signed: {:.0} requests/s",
        (connections * each) as f64 / secs
    );
    app.shutdown().await;
}

/// `n` signed POSTs on one keep-alive connection; the latency of each.
async fn one_connection(proxy: SocketAddr, n: usize) -> Vec<Duration> {
    let stream = TcpStream::connect(proxy).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let body = Bytes::from(vec![b'x'; 1024]);
    let mut latencies = Vec::with_capacity(n);
    for _ in 0..n {
        let req = Request::post("http://api.test/v2/codes")
            .header("host", "api.test")
            .header("content-type", "application/json")
            .body(Full::new(body.clone()))
            .expect("request");
        let started = Instant::now();
        sender
            .ready()
            .await
            .expect("the proxy keeps the connection open");
        let resp = sender.send_request(req).await.expect("response");
        assert!(resp.status().is_success(), "status {}", resp.status());
        let _ = resp.into_body().collect().await;
        latencies.push(started.elapsed());
    }
    latencies
}
