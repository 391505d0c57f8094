//! `run` over its life: the shipped example starts, a bad config exits 64
//! before binding, `--workers` sets the runtime's threads, SIGHUP reloads,
//! SIGTERM drains, and a 200 MiB upload passes in bounded memory.

use super::*;

#[test]
fn the_shipped_example_starts_and_serves() {
    // The example as shipped, with its fixed ports swapped for free ones.
    let example =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("proxy.toml.example"))
            .unwrap();
    let toml = example
        .replace("127.0.0.1:3128", "127.0.0.1:0")
        .replace("127.0.0.1:9001", "127.0.0.1:0")
        .replace("127.0.0.1:9901", "127.0.0.1:0");
    let dir = tempfile::tempdir().unwrap();
    let mut p = Process::start(&write_config(dir.path(), &toml), &[]);
    let proxy = p.listening("forward");
    p.wait_for("countersign is serving");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let answer = rt.block_on(send(proxy, get("http://not-routed.test/")));
    assert_eq!(answer.status, 403);
}

#[test]
fn a_bad_config_exits_64_before_binding_anything() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = holder.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!("[proxy]\nlisten = \"{taken}\"\nunmatched = \"sometimes\"\n");
    let out = Command::new(BIN)
        .args(["run", "--config"])
        .arg(write_config(dir.path(), &toml))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("proxy.unmatched"), "{stderr}");
    assert!(!stderr.contains("cannot listen"), "{stderr}");
}

#[test]
fn workers_sets_the_runtime_threads_by_flag_or_environment() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "[proxy]\nlisten = \"127.0.0.1:0\"\n");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cpus = std::thread::available_parallelism().unwrap().get();
    for (args, env, threads) in [
        // tokio's default: one per CPU available to the process.
        (&[][..], &[][..], cpus),
        (&["--workers", "1"][..], &[][..], 1),
        (&[][..], &[("COUNTERSIGN_WORKERS", "3")][..], 3),
        // The flag wins over the environment.
        (
            &["--workers", "2"][..],
            &[("COUNTERSIGN_WORKERS", "3")][..],
            2,
        ),
    ] {
        let mut p = Process::start_with(&path, args, env);
        let proxy = p.listening("forward");
        let serving = p.wait_for("countersign is serving");
        assert!(serving.contains(&format!("workers={threads}")), "{serving}");
        let answer = rt.block_on(send(proxy, get("http://not-routed.test/")));
        assert_eq!(answer.status, 403, "{args:?} {env:?}");
    }
    let out = Command::new(BIN)
        .args(["run", "--workers", "0", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--workers"), "{stderr}");
}

#[test]
fn sighup_reloads_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "[proxy]\nlisten = \"127.0.0.1:0\"\n");
    let mut p = Process::start(&path, &[]);
    p.wait_for("countersign is serving");
    p.signal("-HUP");
    p.wait_for("SIGHUP: reloading config");
    p.wait_for("config reloaded generation=2");
}

/// 200 MiB through a body-signing route with max_body raised: the body is
/// spooled to disk, the signature verifies, and the proxy's peak memory stays
/// far below the body size. Also: HTTP_PROXY in countersign's environment
/// points at a dead port and must be ignored.
#[test]
fn a_200_mib_upload_passes_in_bounded_memory() {
    const SIZE: u64 = 200 << 20;
    const CHUNK: usize = 256 << 10;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let upstream = rt.block_on(Upstream::http());
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        r#"
[proxy]
listen = "127.0.0.1:0"
max_body = "256MiB"
spool_memory = "1MiB"
spool_dir = "{spool}"

[credential.paypay]
type = "paypay-opa"
api_key = "k"
api_secret = "s"

[[route]]
name = "paypay"
hosts = ["api.paypay.test"]
upstream = "{up}"
credential = "paypay"
"#,
        spool = dir.path().display(),
        up = upstream.http_url()
    );
    let dead_proxy = format!("http://{dead}");
    let env = [
        ("HTTP_PROXY", dead_proxy.as_str()),
        ("http_proxy", dead_proxy.as_str()),
        ("ALL_PROXY", dead_proxy.as_str()),
    ];
    let mut p = Process::start(&write_config(dir.path(), &toml), &env);
    let proxy = p.listening("forward");

    let req = http::Request::post("http://api.paypay.test/v2/upload")
        .header("content-type", "application/octet-stream");
    let answer = upload(&rt, proxy, req, SIZE, Bytes::from(vec![b'z'; CHUNK]));
    assert_eq!(answer.status, 200, "{answer:?}");
    let got = upstream.last();
    assert_eq!(got.body_len, SIZE);
    verify_opa(&got, "k", "s").unwrap();
    let peak = p.peak_rss_kib();
    assert!(peak < 64 * 1024, "peak RSS {peak} KiB for a 200 MiB body");
    eprintln!("countersign peak RSS for a 200 MiB spooled upload: {peak} KiB");
}

/// SIGTERM while a slow upload is in flight: no new connections are taken,
/// the upload finishes and is answered, then the process exits 0.
#[test]
fn sigterm_lets_a_slow_upload_finish_then_exits_zero() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let upstream = rt.block_on(Upstream::http());
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\ndrain_timeout = \"20s\"\n[credential.k]\ntype = \"header\"\nbearer = \"t\"\n[[route]]\nname = \"r\"\nhosts = [\"api.test\"]\nupstream = \"{}\"\ncredential = \"k\"\n",
        upstream.http_url()
    );
    let mut p = Process::start(&write_config(dir.path(), &toml), &[]);
    let proxy = p.listening("forward");
    p.wait_for("countersign is serving");
    let (tx, body) = channel_body();
    let req = http::Request::post("http://api.test/upload")
        .header("content-type", "application/octet-stream")
        .body(body)
        .unwrap();
    let exchange = rt.spawn(async move { try_send(proxy, req).await });
    rt.block_on(tx.send(Ok(Bytes::from_static(b"first half;"))))
        .unwrap();
    // The upload is in flight once countersign has forwarded its head. (A
    // connection whose request head has not been read yet is idle, and a
    // draining server may close it.)
    rt.block_on(eventually("the upload reaches the upstream", || {
        upstream.connections() > 0
    }));

    p.signal("-TERM");
    p.wait_for("shutting down");
    // "shutting down" is logged as the drain starts; the listener is closed
    // once its accept loop says so.
    while !p.wait_for("stopped listening").contains("forward") {}
    assert!(
        std::net::TcpStream::connect(proxy).is_err() || {
            // The listener may take a moment to close; a new request must not be served.
            let late = rt.block_on(try_send(proxy, get("http://api.test/late")));
            late.is_err()
        }
    );
    rt.block_on(tx.send(Ok(Bytes::from_static(b"second half"))))
        .unwrap();
    drop(tx);
    let answer = rt
        .block_on(exchange)
        .unwrap()
        .expect("the upload is answered");
    assert_eq!(answer.status, 200);
    assert_eq!(upstream.last().body, b"first half;second half");
    let (status, _) = p.wait_exit();
    assert_eq!(status.code(), Some(0));
}
