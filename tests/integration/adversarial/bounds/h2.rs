//! What one HTTP/2 app connection inside an intercepted tunnel may make
//! countersign hold: at most `h2_max_streams` streams at once, and no more
//! than `h2_window` bytes sent ahead of what countersign has read, for the
//! whole connection. Read with a raw h2 client, which shows the SETTINGS
//! and windows the server granted.

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
