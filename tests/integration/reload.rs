//! Hot reload: a changed config or a rotated `${file:}` secret takes effect
//! without a restart or a failed request; a broken config changes nothing.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::harness::*;

/// A bearer route to `upstream`, holding `token`.
pub(crate) fn config(upstream: &str, token: &str) -> String {
    format!(
        r#"
[proxy]
listen = "127.0.0.1:0"

[credential.api]
type = "header"
bearer = "{token}"

[[route]]
name = "api"
hosts = ["api.example.test"]
upstream = "{upstream}"
credential = "api"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_change_is_picked_up_under_load_with_zero_failures() {
    let upstream = Upstream::http().await;
    let sidecar = Sidecar::start(&config(&upstream.http_url(), "v1")).await;
    let proxy = sidecar.proxy();
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (stop, ok) = (Arc::clone(&stop), Arc::clone(&ok));
        workers.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            // Bounded: at most 5000 requests per worker.
            for _ in 0..5000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                match try_send(proxy, get("http://api.example.test/load")).await {
                    Ok(a) if a.status == 200 => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(a) => failures.push(format!("{} {}", a.status, a.body)),
                    Err(e) => failures.push(e),
                }
            }
            failures
        }));
    }
    eventually("load is flowing", || ok.load(Ordering::Relaxed) > 50).await;
    sidecar.rewrite(&config(&upstream.http_url(), "v2"));
    sidecar.wait_for_generation(1).await;
    let after = ok.load(Ordering::Relaxed);
    eventually("load continues after the reload", || {
        ok.load(Ordering::Relaxed) > after + 50
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let failures = w.await.unwrap();
        assert!(failures.is_empty(), "failed requests: {failures:?}");
    }
    let seen: Vec<String> = upstream
        .received()
        .iter()
        .map(|r| r.header("authorization").unwrap_or("none").to_string())
        .collect();
    assert!(seen.iter().any(|a| a == "Bearer v1"));
    assert!(seen.iter().any(|a| a == "Bearer v2"));
    // Requests that started before the swap may still arrive with v1 after
    // some v2 ones (they keep their snapshot); a request started now cannot.
    send(proxy, get("http://api.example.test/after")).await;
    assert_eq!(upstream.last().header("authorization"), Some("Bearer v2"));
}

#[tokio::test]
async fn a_broken_config_is_refused_and_the_old_one_keeps_serving() {
    let upstream = Upstream::http().await;
    let sidecar = Sidecar::start(&config(&upstream.http_url(), "v1")).await;
    sidecar.rewrite(
        &config("ftp://nowhere", "v2").replace("credential = \"api\"", "credential = \"missing\""),
    );
    eventually("the reload is refused", || {
        sidecar.app.last_reload_error().is_some()
    })
    .await;
    let error = sidecar.app.last_reload_error().unwrap();
    let paths: Vec<&str> = error.problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        ["route[0].upstream", "route[0].credential"],
        "{error}"
    );
    assert_eq!(*sidecar.app.generations().borrow(), 1);
    let answer = send(sidecar.proxy(), get("http://api.example.test/")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(upstream.last().header("authorization"), Some("Bearer v1"));

    // An explicit reload reports the same problems, and a fixed file recovers.
    let again = sidecar.app.reload().await.unwrap_err();
    assert_eq!(again.problems.len(), 2);
    sidecar.rewrite(&config(&upstream.http_url(), "v3"));
    sidecar.wait_for_generation(1).await;
    assert!(sidecar.app.last_reload_error().is_none());
    send(sidecar.proxy(), get("http://api.example.test/")).await;
    assert_eq!(upstream.last().header("authorization"), Some("Bearer v3"));
}

#[tokio::test]
async fn a_rotated_file_secret_is_used_at_once() {
    let upstream = Upstream::http().await;
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    write_atomically(&secrets.join("token"), "t1\n");
    let toml = config(&upstream.http_url(), "${file:secrets/token}");
    let sidecar = Sidecar::start_in(dir, &toml).await;
    send(sidecar.proxy(), get("http://api.example.test/")).await;
    assert_eq!(upstream.last().header("authorization"), Some("Bearer t1"));

    write_atomically(&secrets.join("token"), "t2\n");
    let g = sidecar.wait_for_generation(1).await;
    send(sidecar.proxy(), get("http://api.example.test/")).await;
    assert_eq!(upstream.last().header("authorization"), Some("Bearer t2"));
    assert!(g >= 2);
}

/// Kubernetes mounts a Secret as `key -> ..data/key`, `..data -> ..<timestamp>`
/// and rotates it by pointing `..data` at a new folder in one rename.
#[tokio::test]
async fn a_kubernetes_style_secret_swap_is_seen() {
    let upstream = Upstream::http().await;
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().join("mount");
    std::fs::create_dir_all(mount.join("..2026_01")).unwrap();
    std::fs::write(mount.join("..2026_01/token"), "k1").unwrap();
    std::os::unix::fs::symlink("..2026_01", mount.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/token", mount.join("token")).unwrap();
    let toml = config(&upstream.http_url(), "${file:mount/token}");
    let sidecar = Sidecar::start_in(dir, &toml).await;
    send(sidecar.proxy(), get("http://api.example.test/")).await;
    assert_eq!(upstream.last().header("authorization"), Some("Bearer k1"));

    std::fs::create_dir(mount.join("..2026_02")).unwrap();
    std::fs::write(mount.join("..2026_02/token"), "k2").unwrap();
    std::os::unix::fs::symlink("..2026_02", mount.join("..data_tmp")).unwrap();
    std::fs::rename(mount.join("..data_tmp"), mount.join("..data")).unwrap();
    sidecar.wait_for_generation(1).await;
    send(sidecar.proxy(), get("http://api.example.test/")).await;
    assert_eq!(upstream.last().header("authorization"), Some("Bearer k2"));
}

#[tokio::test]
async fn a_reload_opens_and_closes_route_listeners() {
    let upstream = Upstream::http().await;
    let sidecar = Sidecar::start(&config(&upstream.http_url(), "v1")).await;
    assert!(sidecar.app.route_addr("api").is_none());
    let with_listener = config(&upstream.http_url(), "v1") + "listen = \"127.0.0.1:0\"\n";
    sidecar.rewrite(&with_listener);
    sidecar.wait_for_generation(1).await;
    let addr = sidecar
        .app
        .route_addr("api")
        .expect("a listener for the route");
    let answer = send(addr, get("/via-listener")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(upstream.last().uri.path(), "/via-listener");

    sidecar.rewrite(&config(&upstream.http_url(), "v1"));
    sidecar.wait_for_generation(2).await;
    assert!(sidecar.app.route_addr("api").is_none());
    eventually("the old listener stops accepting", || {
        std::net::TcpStream::connect(addr).is_err()
    })
    .await;
}

/// A request that started before a reload is signed with the config it
/// started on, even if its body is still arriving when the new one lands.
#[tokio::test]
async fn a_request_in_flight_finishes_on_the_snapshot_it_started_with() {
    let upstream = Upstream::http().await;
    let paypay = |secret: &str| {
        format!(
            "[proxy]\nlisten = \"127.0.0.1:0\"\n[credential.p]\ntype = \"paypay-opa\"\napi_key = \"k\"\napi_secret = \"{secret}\"\n[[route]]\nname = \"p\"\nhosts = [\"api.paypay.test\"]\nupstream = \"{}\"\ncredential = \"p\"\n",
            upstream.http_url()
        )
    };
    let sidecar = Sidecar::start(&paypay("old-secret")).await;
    let (tx, body) = channel_body();
    let req = http::Request::post("http://api.paypay.test/v2/codes")
        .header("content-type", "application/json")
        .body(body)
        .unwrap();
    let proxy = sidecar.proxy();
    let exchange = tokio::spawn(async move { try_send(proxy, req).await });
    tx.send(Ok(bytes::Bytes::from_static(b"{\"part\":1,")))
        .await
        .unwrap();

    sidecar.rewrite(&paypay("new-secret"));
    sidecar.wait_for_generation(1).await;
    tx.send(Ok(bytes::Bytes::from_static(b"\"part\":2}")))
        .await
        .unwrap();
    drop(tx);
    let answer = exchange.await.unwrap().unwrap();
    assert_eq!(answer.status, 200);
    verify_opa(&upstream.last(), "k", "old-secret").unwrap();

    send(
        sidecar.proxy(),
        post("http://api.paypay.test/v2/codes", "application/json", "{}"),
    )
    .await;
    verify_opa(&upstream.last(), "k", "new-secret").unwrap();
}
