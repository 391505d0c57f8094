//! A listener at `max_connections` leaves the next connection waiting in
//! the accept queue and serves it once one closes; a process at its
//! file-descriptor limit backs off, logs that about once a second, and
//! serves again once descriptors are freed.

use super::*;
use crate::binary::{write_config, Process};

/// How long a connection past the limit is watched to see that it waits
/// (it would be served within milliseconds otherwise).
const WAITS: Duration = Duration::from_millis(500);

fn route(upstream: &str) -> String {
    format!("[[route]]\nname = \"r\"\nhosts = [\"api.test\"]\nupstream = \"{upstream}\"\n")
}

#[tokio::test]
async fn past_max_connections_the_next_waits_and_is_served_when_one_closes() {
    let upstream = Upstream::http().await;
    let sidecar = Sidecar::start(&format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\nmax_connections = 2\n{}",
        route(&upstream.http_url())
    ))
    .await;
    let proxy = sidecar.proxy();
    let first = TcpStream::connect(proxy).await.unwrap();
    let _second = TcpStream::connect(proxy).await.unwrap();
    let metrics = || sidecar.app.metrics().render().unwrap();
    eventually("both connections are open", || {
        sample(
            &metrics(),
            "countersign_open_connections{listener=\"proxy\"}",
        ) == Some(2.0)
    })
    .await;
    let mut third =
        tokio::spawn(async move { try_send(proxy, get("http://api.test/third")).await });
    eventually("the listener says it is full", || {
        sample(
            &metrics(),
            "countersign_limit_rejections_total{limit=\"connections\"}",
        ) == Some(1.0)
    })
    .await;
    let waited = tokio::time::timeout(WAITS, &mut third).await;
    assert!(
        waited.is_err(),
        "the third connection is served: {waited:?}"
    );
    assert_eq!(upstream.connections(), 0);
    drop(first);
    let answer = tokio::time::timeout(SOON, third)
        .await
        .expect("served once a connection closed")
        .unwrap()
        .expect("an answer");
    assert_eq!(answer.status, 200, "{answer:?}");
}

/// Under `ulimit -n 64`, 100 idle connections exhaust the descriptors:
/// "accept failed" is logged about once a second (not 20 times), each
/// failure counts as `limit="descriptors"`, and once the clients leave a
/// fresh request is served.
#[test]
fn the_descriptor_limit_never_stops_the_proxy_for_good() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let upstream = rt.block_on(Upstream::http());
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\n{}",
        route(&upstream.http_url())
    );
    let mut p = Process::start_limited(&write_config(dir.path(), &toml), 64);
    let proxy = p.listening("forward");
    let admin = p.listening("admin");
    p.wait_for("countersign is serving");
    let idle: Vec<TcpStream> = rt.block_on(async {
        let mut idle = Vec::new();
        for _ in 0..100 {
            idle.push(TcpStream::connect(proxy).await.expect("queued at least"));
        }
        idle
    });
    p.wait_for("accept failed");
    let watched = std::time::Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let lines = p
        .drain_lines()
        .iter()
        .filter(|l| l.contains("accept failed"))
        .count();
    let seconds = watched.elapsed().as_secs();
    assert!(
        lines <= seconds as usize + 2,
        "{lines} \"accept failed\" lines in {seconds}s:\n{}",
        p.seen.join("\n")
    );
    assert!(
        p.seen
            .iter()
            .any(|l| l.contains("accept failed") && l.contains("suppressed=")),
        "{}",
        p.seen.join("\n")
    );

    // While the process closes the connections the clients left (and
    // accepts the ones still queued, each already closed), it can be a
    // descriptor short for the upstream and answer 502 naming the limit;
    // that is the right answer at that moment, so ask until it is served.
    drop(idle);
    let served = || async {
        match try_send(proxy, get("http://api.test/after")).await {
            Ok(answer) if answer.status == 200 => Ok(answer),
            Ok(answer) => Err(format!("{answer:?}")),
            Err(e) => Err(e),
        }
    };
    let answer = rt.block_on(eventually_async("served again", SOON, served));
    assert_eq!(answer.status, 200, "{answer:?}");
    let metrics = rt.block_on(scrape(admin));
    let refused = sample(
        &metrics,
        "countersign_limit_rejections_total{limit=\"descriptors\"}",
    );
    assert!(refused >= Some(1.0), "{metrics}");
    eprintln!("accept failures counted as limit=\"descriptors\": {refused:?}");
}

/// An intercepted tunnel is the connection that sent its CONNECT: it keeps
/// that connection's place after the upgrade, so tunnels cannot get past
/// `max_connections`.
#[tokio::test]
async fn an_intercepted_tunnel_keeps_its_place() {
    let ca = TestCa::new();
    let upstream = Upstream::https(&ca).await;
    let dir = tempfile::tempdir().unwrap();
    countersign::pki::ca::init(&dir.path().join("ca")).unwrap();
    let upstream_ca = ca.write_ca(dir.path());
    let toml = format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\nmax_connections = 1\nclient_header_timeout = \"20s\"\n\
         [intercept]\nca_cert = \"ca/ca.pem\"\nca_key = \"ca/ca-key.pem\"\n\
         [[route]]\nname = \"api\"\nhosts = [\"api.example.test\"]\nupstream = \"{}\"\nca_file = \"{}\"\n",
        upstream.https_url(),
        upstream_ca.display()
    );
    let sidecar = Sidecar::start_in(dir, &toml).await;
    let proxy = sidecar.proxy();
    let tunnel = connect_tunnel(proxy, "api.example.test:443")
        .await
        .expect("intercepted");
    let metrics = || sidecar.app.metrics().render().unwrap();
    let mut next =
        tokio::spawn(async move { try_send(proxy, get("http://api.example.test/next")).await });
    eventually("the listener is full while the tunnel is open", || {
        sample(
            &metrics(),
            "countersign_limit_rejections_total{limit=\"connections\"}",
        ) == Some(1.0)
    })
    .await;
    let waited = tokio::time::timeout(WAITS, &mut next).await;
    assert!(waited.is_err(), "the next connection is served: {waited:?}");
    drop(tunnel);
    let answer = tokio::time::timeout(SOON, next)
        .await
        .expect("served once the tunnel closed")
        .unwrap()
        .expect("an answer");
    assert_eq!(answer.status, 200, "{answer:?}");
}
