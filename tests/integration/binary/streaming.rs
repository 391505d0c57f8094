//! A 1 GiB S3 upload through an `aws-sigv4` route with `payload =
//! "streaming"`: signed chunk by chunk as it passes (aws-chunked, each
//! chunk's signature chained to the last), so the upload starts at once,
//! nothing is spooled, and the proxy's memory stays far below the body;
//! the upstream has the first chunk while the app still holds the rest.

use super::*;

/// The wire length of `n` bytes in aws-chunked 64 KiB chunks, from AWS's
/// description of the framing: `hex(size);chunk-signature=<64 hex>\r\n`,
/// the data, `\r\n`, then a final empty chunk.
fn aws_chunked_len(n: u64) -> u64 {
    let frame = |size: u64| format!("{size:x};chunk-signature=").len() as u64 + 64 + 2 + size + 2;
    let rest = n % 65536;
    (n / 65536) * frame(65536) + if rest > 0 { frame(rest) } else { 0 } + frame(0)
}

#[test]
fn a_1_gib_streamed_s3_upload_passes_in_bounded_memory() {
    const SIZE: u64 = 1 << 30;
    const CHUNK: usize = 256 << 10;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let upstream = rt.block_on(Upstream::http());
    let dir = tempfile::tempdir().unwrap();
    // max_body and spool_memory far below the body: a streamed payload is
    // bounded by neither, since none of it is held.
    let toml = format!(
        r#"
[proxy]
listen = "127.0.0.1:0"
max_body = "1MiB"
spool_memory = "64KiB"
spool_dir = "{spool}"

[credential.s3]
type = "aws-sigv4"
service = "s3"
region = "us-east-1"
access_key_id = "AKIDEXAMPLE"
secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
payload = "streaming"

[[route]]
name = "s3"
hosts = ["bucket.s3.test"]
upstream = "{up}"
credential = "s3"
"#,
        spool = dir.path().display(),
        up = upstream.http_url()
    );
    let mut p = Process::start(&write_config(dir.path(), &toml), &[]);
    let proxy = p.listening("forward");
    p.wait_for("countersign is serving");
    let idle = p.status_kib("VmRSS:");

    let req = http::Request::put("http://bucket.s3.test/big.bin")
        .header("content-type", "application/octet-stream");
    let answer = upload(&rt, proxy, req, SIZE, Bytes::from(vec![b'z'; CHUNK]));
    assert_eq!(answer.status, 200, "{answer:?}");
    let got = upstream.last();
    let wire = aws_chunked_len(SIZE);
    assert_eq!(got.body_len, wire);
    assert_eq!(got.header("content-length"), Some(&*wire.to_string()));
    assert_eq!(
        got.header("x-amz-decoded-content-length"),
        Some(&*SIZE.to_string())
    );
    assert!(got.body.starts_with(b"10000;chunk-signature="));
    // Nothing was spooled.
    let spooled: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .filter(|n| n != "proxy.toml")
        .collect();
    assert!(spooled.is_empty(), "{spooled:?}");
    let peak = p.peak_rss_kib();
    eprintln!("countersign RSS for a 1 GiB streamed S3 upload: {idle} KiB idle, peak {peak} KiB");
    assert!(peak < 64 * 1024, "peak RSS {peak} KiB for a 1 GiB body");
}

/// The upload starts at once: the upstream reads the first signed chunk
/// while the app has sent only that much and holds back the rest until
/// the upstream says it has it. A proxy that waited for the whole body
/// would never forward the first chunk, and the app would never send the
/// rest.
#[test]
fn the_upstream_has_the_first_chunk_before_the_app_sends_the_rest() {
    use http_body_util::{BodyExt, Full};
    use std::sync::{Arc, Mutex};

    const CHUNK: usize = 64 << 10;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (first_tx, first_rx) = tokio::sync::oneshot::channel::<usize>();
    let first_tx = Arc::new(Mutex::new(Some(first_tx)));
    // The upstream: reads the body frame by frame, says when the first
    // chunk (its line, 64 KiB, CRLF) is in, then reads to the end.
    let upstream = rt.block_on(crate::handler_server::serve(None, move |req| {
        let first_tx = Arc::clone(&first_tx);
        async move {
            let first_chunk = format!("{CHUNK:x};chunk-signature=").len() + 64 + 2 + CHUNK + 2;
            let mut body = req.into_body();
            let mut seen = 0;
            while let Some(frame) = body.frame().await {
                let Ok(data) = frame.unwrap().into_data() else {
                    continue;
                };
                seen += data.len();
                if seen >= first_chunk {
                    if let Some(tx) = first_tx.lock().unwrap().take() {
                        let _ = tx.send(seen);
                    }
                }
            }
            http::Response::new(Full::new(Bytes::from(seen.to_string())))
        }
    }));
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        r#"
[proxy]
listen = "127.0.0.1:0"

[credential.s3]
type = "aws-sigv4"
service = "s3"
region = "us-east-1"
access_key_id = "AKIDEXAMPLE"
secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
payload = "streaming"

[[route]]
name = "s3"
hosts = ["bucket.s3.test"]
upstream = "http://{upstream}"
credential = "s3"
"#
    );
    let mut p = Process::start(&write_config(dir.path(), &toml), &[]);
    let proxy = p.listening("forward");
    p.wait_for("countersign is serving");

    let size = 3 * CHUNK as u64;
    let answer = rt.block_on(async move {
        let (tx, body) = channel_body();
        let req = http::Request::put("http://bucket.s3.test/k.bin")
            .header("content-length", size)
            .body(body)
            .unwrap();
        let exchange = tokio::spawn(async move { try_send(proxy, req).await });
        tx.send(Ok(Bytes::from(vec![b'x'; CHUNK]))).await.unwrap();
        // Nothing more until the upstream has the first chunk. (The wait
        // is bounded only so that a proxy that holds the body fails the
        // test instead of hanging it.)
        let seen = tokio::time::timeout(std::time::Duration::from_secs(30), first_rx)
            .await
            .expect("the upstream got the first chunk while the app held back the rest")
            .unwrap();
        assert!(
            seen < size as usize,
            "only the first chunk was sent: {seen}"
        );
        for _ in 0..2 {
            tx.send(Ok(Bytes::from(vec![b'y'; CHUNK]))).await.unwrap();
        }
        drop(tx);
        exchange.await.unwrap().unwrap()
    });
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body, aws_chunked_len(size).to_string());
}
