//! What one HTTP/2 app connection inside an intercepted tunnel may make
//! countersign hold: at most `h2_max_streams` streams at once, and no more
//! than `h2_window` bytes sent ahead of what countersign has read, for the
//! whole connection. Read with a raw h2 client, which shows the SETTINGS
//! and windows the server granted, and which holds back a stream past the
//! limit the server announced.

use bytes::Bytes;

use super::*;

#[tokio::test]
async fn an_h2_app_gets_the_configured_stream_limit_and_window() {
    let ca = TestCa::new();
    let upstream = Upstream::https(&ca).await;
    let (sidecar, app_ca) = intercepting_with(
        &upstream,
        &ca,
        "h2_max_streams = 3\nh2_window = \"64KiB\"",
        "",
    )
    .await;
    let tunnel = connect_tunnel(sidecar.proxy(), "api.example.test:443")
        .await
        .unwrap();
    let tls = tls_over(tunnel, "api.example.test", &app_ca, Some(b"h2"))
        .await
        .unwrap();
    let (client, conn) = ::h2::client::handshake(tls).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut client = client.ready().await.unwrap();
    // The server's SETTINGS arrive with its first frames.
    eventually("the server's SETTINGS are read", || {
        client.current_max_send_streams() == 3
    })
    .await;

    // A body the app would like to send all at once: the server grants no
    // more than its window, however much the app asks for.
    let req = http::Request::post("https://api.example.test/v1/upload")
        .header("content-type", "application/octet-stream")
        .body(())
        .unwrap();
    let (_resp, mut body) = client.send_request(req, false).unwrap();
    body.reserve_capacity(4 << 20);
    let granted = std::future::poll_fn(|cx| body.poll_capacity(cx))
        .await
        .expect("some capacity")
        .unwrap();
    assert!(
        granted <= 64 << 10,
        "the app may send {granted} bytes ahead; the window is 64 KiB"
    );
    body.send_data(Bytes::from(vec![b'x'; granted]), false)
        .unwrap();
    // Everything it sent is inside the window; nothing more is granted
    // until countersign reads it, which a bearer route does only as the
    // upstream takes it.
    assert!(body.capacity() <= (64 << 10) - granted);
    body.send_data(Bytes::new(), true).unwrap();
}

/// `h2_max_streams` streams open at once, each asking to send megabytes:
/// what the server grants across all of them stays within the one
/// connection window. A stream past the limit is not opened (the h2 client
/// holds it back, as the server's SETTINGS tell it to) until one of the
/// others ends, and is then served.
#[tokio::test]
async fn streams_at_the_limit_share_one_window_and_the_next_waits() {
    const STREAMS: usize = 3;
    const WINDOW: usize = 64 << 10;
    let ca = TestCa::new();
    let upstream = Upstream::https(&ca).await;
    let (sidecar, app_ca) = intercepting_with(
        &upstream,
        &ca,
        "h2_max_streams = 3\nh2_window = \"64KiB\"",
        "",
    )
    .await;
    let tunnel = connect_tunnel(sidecar.proxy(), "api.example.test:443")
        .await
        .unwrap();
    let tls = tls_over(tunnel, "api.example.test", &app_ca, Some(b"h2"))
        .await
        .unwrap();
    let (client, conn) = ::h2::client::handshake(tls).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut client = client.ready().await.unwrap();
    eventually("the server's SETTINGS are read", || {
        client.current_max_send_streams() == STREAMS
    })
    .await;

    let upload = |i: usize| {
        http::Request::post(format!("https://api.example.test/v1/upload/{i}"))
            .header("content-type", "application/octet-stream")
            .body(())
            .unwrap()
    };
    let mut open = Vec::new();
    for i in 0..STREAMS {
        client = client.ready().await.unwrap();
        let (resp, mut body) = client.send_request(upload(i), false).unwrap();
        body.reserve_capacity(4 << 20);
        open.push((resp, body));
    }
    // Nothing is sent, so the connection window never opens further: the
    // capacity granted can only be shared out, never exceed it.
    let granted = |open: &Vec<(_, ::h2::SendStream<Bytes>)>| -> usize {
        open.iter().map(|(_, body)| body.capacity()).sum()
    };
    eventually("capacity is granted", || granted(&open) > 0).await;
    for _ in 0..5 {
        let now = granted(&open);
        assert!(
            now <= WINDOW,
            "{now} bytes granted across {STREAMS} streams; the window is {WINDOW}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // One more: held back while the limit is reached.
    let extra = http::Request::get("https://api.example.test/v1/extra")
        .body(())
        .unwrap();
    client = client.ready().await.unwrap();
    let (extra, _) = client.send_request(extra, true).unwrap();
    let mut extra = tokio::spawn(extra);
    let waited = tokio::time::timeout(Duration::from_millis(500), &mut extra).await;
    assert!(
        waited.is_err(),
        "a stream past the limit was served: {waited:?}"
    );

    // One of the three ends: the held stream opens and is served.
    let (first, mut body) = open.remove(0);
    body.send_data(Bytes::from_static(b"done"), true).unwrap();
    let first = tokio::time::timeout(SOON, first)
        .await
        .expect("the first upload is answered")
        .unwrap();
    assert_eq!(first.status(), 200);
    let extra = tokio::time::timeout(SOON, extra)
        .await
        .expect("served once a stream ended")
        .unwrap()
        .unwrap();
    assert_eq!(extra.status(), 200);
    for (_, mut body) in open {
        body.send_data(Bytes::new(), true).unwrap();
    }
}
