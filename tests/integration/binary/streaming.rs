//! A 1 GiB S3 upload through an `aws-sigv4` route with `payload =
//! "streaming"`: signed chunk by chunk as it passes (aws-chunked, each
//! chunk's signature chained to the last), so the upload starts at once,
//! nothing is spooled, and the proxy's memory stays far below the body.

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
