use std::convert::Infallible;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::*;
use crate::drain::Drain;

const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Answers each request with its path and the length of its body, read in
/// full unless the path is `/unread`.
async fn answer(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let len = if path == "/unread" {
        0
    } else {
        req.into_body().collect().await.unwrap().to_bytes().len()
    };
    Ok(Response::new(Full::new(Bytes::from(format!(
        "{path} {len}"
    )))))
}

/// A listener whose first connection is served by `serve`; the task's
/// output says what `serve` did with it.
async fn server(drain: DrainWatch) -> (Client, JoinHandle<Served>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        serve(stream, service_fn(answer), HEADER_TIMEOUT, drain).await
    });
    let stream = TcpStream::connect(addr).await.unwrap();
    (
        Client {
            stream,
            read: Vec::new(),
        },
        served,
    )
}

/// The client's end, with what it read past the last response.
struct Client {
    stream: TcpStream,
    read: Vec<u8>,
}

impl Client {
    async fn send(&mut self, bytes: &str) {
        self.stream.write_all(bytes.as_bytes()).await.unwrap();
    }

    /// Reads one response (with a Content-Length) and returns its body.
    async fn response(&mut self) -> String {
        loop {
            let got = &self.read;
            if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
                assert!(head.starts_with("http/1.1 200"), "{head}");
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .expect("a content-length")
                    .trim()
                    .parse()
                    .unwrap();
                if got.len() >= end + 4 + len {
                    let body = String::from_utf8(got[end + 4..end + 4 + len].to_vec()).unwrap();
                    self.read.drain(..end + 4 + len);
                    return body;
                }
            }
            let mut chunk = [0u8; 1024];
            let n = self.stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed before a full response");
            self.read.extend_from_slice(&chunk[..n]);
        }
    }

    /// Whether the server closed the connection, having sent nothing more.
    async fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        self.stream.read_to_end(&mut rest).await.is_ok() && rest.is_empty() && self.read.is_empty()
    }
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")
}

/// Waits past the park grace (the clock is paused: no real wait).
async fn settle() {
    tokio::time::sleep(PARK_AFTER * 2).await;
}

/// What `serve` did: `started` hyper connections, `parks` parks.
fn did(started: usize, parks: usize) -> Served {
    Served { started, parks }
}

#[tokio::test(start_paused = true)]
async fn a_keep_alive_connection_parks_between_requests_and_keeps_answering() {
    let drain = Drain::default();
    let (mut client, served) = server(drain.watch().unwrap()).await;
    for path in ["/a", "/b", "/c"] {
        client.send(&get(path)).await;
        assert_eq!(client.response().await, format!("{path} 0"));
        settle().await;
    }
    drop(client);
    assert_eq!(
        served.await.unwrap(),
        did(3, 3),
        "parked after each answer, started again by the next request"
    );
}

#[tokio::test(start_paused = true)]
async fn a_connection_asked_again_within_the_grace_is_not_parked() {
    let drain = Drain::default();
    let (mut client, served) = server(drain.watch().unwrap()).await;
    for path in ["/a", "/b", "/c"] {
        client.send(&get(path)).await;
        assert_eq!(client.response().await, format!("{path} 0"));
    }
    drop(client);
    assert_eq!(served.await.unwrap(), did(1, 0));
}

#[tokio::test(start_paused = true)]
async fn part_of_the_next_head_read_with_a_request_is_kept_across_the_park() {
    let drain = Drain::default();
    let (mut client, served) = server(drain.watch().unwrap()).await;
    let first = get("/first") + "GET /second HT";
    client.send(&first).await;
    assert_eq!(client.response().await, "/first 0");
    settle().await;
    client.send("TP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(client.response().await, "/second 0");
    settle().await;
    drop(client);
    assert_eq!(served.await.unwrap(), did(2, 2));
}

#[tokio::test(start_paused = true)]
async fn pipelined_requests_are_all_answered_in_order() {
    let drain = Drain::default();
    let (mut client, served) = server(drain.watch().unwrap()).await;
    let three = get("/1") + &get("/2") + &get("/3");
    client.send(&three).await;
    for path in ["/1", "/2", "/3"] {
        assert_eq!(client.response().await, format!("{path} 0"));
    }
    settle().await;
    drop(client);
    assert_eq!(served.await.unwrap(), did(1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_request_with_a_body_is_answered_and_the_connection_kept_without_parking() {
    let drain = Drain::default();
    let (mut client, served) = server(drain.watch().unwrap()).await;
    let post = "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
    client.send(post).await;
    assert_eq!(client.response().await, "/p 5");
    settle().await;
    client.send(&get("/after")).await;
    assert_eq!(client.response().await, "/after 0");
    settle().await;
    drop(client);
    assert_eq!(
        served.await.unwrap(),
        did(1, 1),
        "parked after the GET only"
    );
}

#[tokio::test(start_paused = true)]
async fn a_body_the_handler_left_unread_is_never_taken_for_a_request() {
    let drain = Drain::default();
    let (mut client, served) = server(drain.watch().unwrap()).await;
    let post = "POST /unread HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello";
    client.send(post).await;
    assert_eq!(client.response().await, "/unread 0");
    settle().await;
    // The rest of the body: hyper closes the connection (it could not skip
    // the body in one read) rather than parse these bytes as a request.
    let _ = client.stream.write_all(b"GET /x HTTP/1.1\r\n\r\n").await;
    assert!(client.closed().await);
    assert_eq!(served.await.unwrap(), did(1, 0));
}

#[tokio::test(start_paused = true)]
async fn a_parked_connection_is_closed_when_no_request_comes_within_the_header_timeout() {
    let drain = Drain::default();
    let (mut client, served) = server(drain.watch().unwrap()).await;
    client.send(&get("/a")).await;
    assert_eq!(client.response().await, "/a 0");
    let idle = Instant::now();
    assert!(client.closed().await);
    // Counted from when it went idle, not from when it was parked.
    let waited = idle.elapsed();
    assert!(
        waited >= HEADER_TIMEOUT && waited < HEADER_TIMEOUT + PARK_AFTER,
        "{waited:?}"
    );
    assert_eq!(served.await.unwrap(), did(1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_fresh_connection_that_sends_nothing_is_closed_at_the_header_timeout() {
    let drain = Drain::default();
    let (mut client, served) = server(drain.watch().unwrap()).await;
    let start = Instant::now();
    assert!(client.closed().await);
    assert!(start.elapsed() >= HEADER_TIMEOUT);
    assert_eq!(
        served.await.unwrap(),
        did(0, 0),
        "no hyper connection for a connection that sent nothing"
    );
}

#[tokio::test(start_paused = true)]
async fn a_fresh_connection_with_part_of_a_head_is_closed_at_the_header_timeout() {
    let drain = Drain::default();
    let (mut client, served) = server(drain.watch().unwrap()).await;
    client.send("GET /a HT").await;
    let start = Instant::now();
    assert!(client.closed().await);
    let waited = start.elapsed();
    assert!(
        waited >= HEADER_TIMEOUT && waited < HEADER_TIMEOUT * 2,
        "{waited:?}"
    );
    assert_eq!(served.await.unwrap(), did(1, 0));
}

#[tokio::test(start_paused = true)]
async fn draining_closes_a_parked_connection() {
    let drain = Drain::default();
    let (mut client, served) = server(drain.watch().unwrap()).await;
    client.send(&get("/a")).await;
    assert_eq!(client.response().await, "/a 0");
    settle().await;
    assert!(drain.drain(Duration::from_secs(5)).await, "drained");
    assert!(client.closed().await);
    assert_eq!(served.await.unwrap(), did(1, 1));
}
