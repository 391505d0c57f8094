//! What one HTTP/2 app connection inside an intercepted tunnel may make
//! countersign hold: at most `h2_max_streams` streams at once, and no more
//! than `h2_window` bytes sent ahead of what countersign has read, for the
//! whole connection. Read with a raw h2 client, which shows the SETTINGS
//! and windows the server granted, and which holds back a stream past the
//! limit the server announced; and with frames written by hand, as a
//! client that ignores that limit would.

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

/// One HTTP/2 frame: its 9-byte header, then `payload`.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = len.to_be_bytes()[1..].to_vec();
    out.extend([kind, flags]);
    out.extend(stream.to_be_bytes());
    out.extend(payload);
    out
}

/// A client that ignores the server's SETTINGS: it opens a stream past
/// `h2_max_streams` anyway, written frame by frame (the h2 client library
/// would hold it back). The server resets that stream with REFUSED_STREAM
/// and keeps the others.
#[tokio::test]
async fn a_stream_opened_past_the_limit_is_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const HEADERS: u8 = 0x1;
    const RST_STREAM: u8 = 0x3;
    const SETTINGS: u8 = 0x4;
    const GOAWAY: u8 = 0x7;
    const END_HEADERS: u8 = 0x4;
    const REFUSED_STREAM: u32 = 0x7;
    let ca = TestCa::new();
    let upstream = Upstream::https(&ca).await;
    let (sidecar, app_ca) = intercepting_with(&upstream, &ca, "h2_max_streams = 3", "").await;
    let tunnel = connect_tunnel(sidecar.proxy(), "api.example.test:443")
        .await
        .unwrap();
    let mut tls = tls_over(tunnel, "api.example.test", &app_ca, Some(b"h2"))
        .await
        .unwrap();
    tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    tls.write_all(&frame(SETTINGS, 0, 0, &[])).await.unwrap();
    // HPACK: :method POST, :scheme https, :path / from the static table;
    // :authority as a literal (name index 1, never indexed).
    let mut block = vec![0x83, 0x87, 0x84, 0x01, 16];
    block.extend(b"api.example.test");
    // Four uploads that never end, one more than the limit.
    for stream in [1, 3, 5, 7] {
        tls.write_all(&frame(HEADERS, END_HEADERS, stream, &block))
            .await
            .unwrap();
    }
    tls.flush().await.unwrap();

    let read_frames = async {
        let mut reset = Vec::new();
        loop {
            let mut head = [0u8; 9];
            tls.read_exact(&mut head).await.unwrap();
            let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
            let mut payload = vec![0u8; len];
            tls.read_exact(&mut payload).await.unwrap();
            let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
            match head[3] {
                SETTINGS if head[4] & 1 == 0 => {
                    tls.write_all(&frame(SETTINGS, 1, 0, &[])).await.unwrap();
                }
                RST_STREAM => {
                    let code = u32::from_be_bytes(payload[..4].try_into().unwrap());
                    reset.push((stream, code));
                    if stream == 7 {
                        return reset;
                    }
                }
                GOAWAY => panic!("the connection was closed: {payload:?}"),
                _ => {}
            }
        }
    };
    let reset = tokio::time::timeout(SOON, read_frames)
        .await
        .expect("the stream past the limit is reset");
    assert_eq!(
        reset,
        vec![(7, REFUSED_STREAM)],
        "only the fourth stream is reset, as REFUSED_STREAM"
    );
}
