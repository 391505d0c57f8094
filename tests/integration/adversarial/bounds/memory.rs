//! Memory held by stalled uploads on a signed route stays within the total
//! spool budget; bodies past it go to disk; fresh requests are still served.

use super::*;
use crate::binary::{write_config, Process};

/// The measurement behind issue 9's figure: 300 clients each send 1 MiB of
/// a 60 MiB signed body and stall, against the default limits. Prints the
/// binary's resident memory; asserts the in-memory spool stays within the
/// default budget. Run with
/// `cargo test --test integration -- --ignored three_hundred --nocapture`.
#[test]
#[ignore = "a measurement: 300 connections and ~300 MiB through loopback"]
fn three_hundred_stalled_uploads_measured() {
    const UPLOADS: usize = 300;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let upstream = rt.block_on(Upstream::http());
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\nspool_dir = \"{}\"\n{}",
        dir.path().display(),
        signed_route(&upstream.http_url())
    );
    let mut p = Process::start(&write_config(dir.path(), &toml), &[]);
    let proxy = p.listening("forward");
    let admin = p.listening("admin");
    let idle_rss = p.status_kib("VmRSS:");
    let clients = rt.block_on(async {
        let mut opened = Vec::new();
        for _ in 0..UPLOADS {
            opened.push(tokio::spawn(stalled_upload(
                proxy,
                "api.paypay.test",
                60 << 20,
                1 << 20,
            )));
        }
        let mut streams = Vec::new();
        for o in opened {
            streams.push(o.await.unwrap().expect("the upload starts"));
        }
        streams
    });
    // Let countersign read what the clients sent.
    std::thread::sleep(Duration::from_secs(3));
    let metrics = rt.block_on(scrape(admin));
    let memory = sample(&metrics, "countersign_spool_bytes{where=\"memory\"}").unwrap_or(-1.0);
    let disk = sample(&metrics, "countersign_spool_bytes{where=\"disk\"}").unwrap_or(-1.0);
    let rss = p.status_kib("VmRSS:");
    let hwm = p.status_kib("VmHWM:");
    eprintln!(
        "{UPLOADS} stalled signed uploads (1 MiB of 60 MiB each): RSS idle {idle_rss} KiB, \
         with uploads {rss} KiB, peak {hwm} KiB; spool gauge memory {memory} B, disk {disk} B; \
         open fds {}",
        p.open_fds()
    );
    drop(clients);
    assert!(memory >= 0.0 && memory <= (32u64 << 20) as f64, "{metrics}");
}

/// 50 clients each send 1 MiB of a signed body and stall, against a total
/// budget of 4 MiB: the in-memory spool stays within it (the rest goes to
/// disk, and the gauges say so while the bodies are being read), the
/// process's memory grows by no more than the budget plus a connection's
/// allowance per client (20.1 MiB in all, well below the 50 MiB sent), a
/// fresh request is served, and everything is given back when the clients
/// leave.
/// What one stalled upload may hold besides its share of the spool budget:
/// hyper's 64 KiB read buffer, a received chunk on its way to the spool
/// file when the budget has no room for a batch, the connection's and the
/// request's tasks, and the allocator's slack around them; and its part of
/// the blocking threads the spool files are written and hashed on (50
/// uploads start 15 to 22 of them, each with its stack and its allocator
/// arena, which is most of the run-to-run spread). Measured: 50 uploads
/// grew the RSS by 12.2 to 15.4 MiB in all (debug build, eleven runs, seven
/// of them beside other adversarial tests), of which the budget is 4; the
/// bound, 20.1 MiB, leaves room for a busier machine and stays well below
/// the 50 MiB sent.
const PER_CONNECTION_KIB: u64 = 330;

#[test]
fn stalled_uploads_stay_within_the_spool_budget() {
    const UPLOADS: usize = 50;
    const BUDGET: f64 = (4u64 << 20) as f64;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let upstream = rt.block_on(Upstream::http());
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\nspool_memory = \"1MiB\"\nspool_memory_total = \"4MiB\"\nspool_dir = \"{}\"\n{}",
        dir.path().display(),
        signed_route(&upstream.http_url())
    );
    let mut p = Process::start(&write_config(dir.path(), &toml), &[]);
    let proxy = p.listening("forward");
    let admin = p.listening("admin");
    // Idle, once a signed request has warmed what every request uses (the
    // runtime's workers, the upstream pool, the logger).
    let warm = rt.block_on(send(
        proxy,
        post("http://api.paypay.test/v2/codes", "application/json", "{}"),
    ));
    assert_eq!(warm.status, 200, "{warm:?}");
    let idle = p.status_kib("VmRSS:");
    let clients = rt.block_on(async {
        let mut streams = Vec::new();
        for _ in 0..UPLOADS {
            let upload = stalled_upload(proxy, "api.paypay.test", 8 << 20, 1 << 20);
            streams.push(upload.await.expect("the upload starts"));
        }
        streams
    });
    let held = |metrics: &str| {
        let memory = sample(metrics, "countersign_spool_bytes{where=\"memory\"}").unwrap_or(0.0);
        let disk = sample(metrics, "countersign_spool_bytes{where=\"disk\"}").unwrap_or(0.0);
        (memory, disk)
    };
    // Every byte sent is held somewhere: at most the budget in memory, the
    // rest on disk.
    let all_counted = || async {
        let metrics = scrape(admin).await;
        let (memory, disk) = held(&metrics);
        assert!(memory <= BUDGET, "memory spool over the budget:\n{metrics}");
        if memory + disk >= (UPLOADS << 20) as f64 {
            Ok(metrics)
        } else {
            Err(metrics)
        }
    };
    let metrics = rt.block_on(eventually_async(
        "every stalled body counted",
        SOON,
        all_counted,
    ));
    let (_, disk) = held(&metrics);
    assert!(disk >= ((UPLOADS - 4) << 20) as f64, "{metrics}");
    let spilled = sample(
        &metrics,
        "countersign_limit_rejections_total{limit=\"spool_memory\"}",
    );
    assert!(spilled >= Some((UPLOADS - 4) as f64), "{metrics}");
    let peak = p.status_kib("VmHWM:");
    let grown = peak.saturating_sub(idle);
    let allowed = (4 << 10) + UPLOADS as u64 * PER_CONNECTION_KIB;
    eprintln!(
        "{UPLOADS} stalled signed uploads of 1 MiB: RSS idle {idle} KiB, peak {peak} KiB, \
         grown {grown} KiB (allowed {allowed} KiB)"
    );
    assert!(
        grown < allowed,
        "RSS grew {grown} KiB (idle {idle}, peak {peak}) with {UPLOADS} MiB of stalled bodies; \
         allowed {allowed} KiB"
    );

    let fresh = rt.block_on(send(
        proxy,
        post("http://api.paypay.test/v2/codes", "application/json", "{}"),
    ));
    assert_eq!(fresh.status, 200, "{fresh:?}");
    verify_opa(&upstream.last(), "k", "s").unwrap();

    drop(clients);
    let given_back = || async {
        let metrics = scrape(admin).await;
        match held(&metrics) {
            (0.0, 0.0) => Ok(()),
            _ => Err(metrics),
        }
    };
    rt.block_on(eventually_async("the spool given back", SOON, given_back));
}

/// Issue 12: the buffers a body on disk is written from, hashed from and
/// read back into take from `spool_memory_total` too. 16 uploads of 2 MiB
/// at once, each past its own `spool_memory` (256 KiB), against a total of
/// 1 MiB (room for few 128 KiB buffers): every upload is signed over its
/// exact bytes (200, the upstream's MD5 of what it received matches the
/// signature), the memory held never passed the budget (the peak gauge),
/// and everything is given back.
#[test]
fn flowing_uploads_keep_their_buffers_within_the_spool_budget() {
    const UPLOADS: usize = 16;
    const LEN: usize = 2 << 20;
    const BUDGET: f64 = (1u64 << 20) as f64;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let upstream = rt.block_on(Upstream::http());
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\nspool_memory = \"256KiB\"\nspool_memory_total = \"1MiB\"\nspool_dir = \"{}\"\n{}",
        dir.path().display(),
        signed_route(&upstream.http_url())
    );
    let mut p = Process::start(&write_config(dir.path(), &toml), &[]);
    let proxy = p.listening("forward");
    let admin = p.listening("admin");
    let answers = rt.block_on(async {
        let uploads: Vec<_> = (0..UPLOADS)
            .map(|u| {
                // Bytes that differ by position and upload: a batch hashed
                // twice, dropped or out of order changes the MD5.
                let body: Vec<u8> = (0..LEN).map(|i| ((i / 7 + u) % 251) as u8).collect();
                let req = http::Request::post("http://api.paypay.test/v2/upload")
                    .header("content-type", "application/octet-stream")
                    .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                    .unwrap();
                tokio::spawn(send(proxy, req))
            })
            .collect();
        let mut answers = Vec::new();
        for u in uploads {
            answers.push(u.await.unwrap());
        }
        answers
    });
    for a in &answers {
        assert_eq!(a.status, 200, "{a:?}");
    }
    let received = upstream.received();
    assert_eq!(received.len(), UPLOADS);
    for r in &received {
        assert_eq!(r.body_len, LEN as u64);
        verify_opa(r, "k", "s").unwrap();
    }
    let metrics = rt.block_on(scrape(admin));
    let peak = sample(&metrics, "countersign_spool_memory_peak_bytes").unwrap_or(-1.0);
    assert!(peak > 0.0 && peak <= BUDGET, "peak {peak}:\n{metrics}");
    let given_back = || async {
        let metrics = scrape(admin).await;
        let memory = sample(&metrics, "countersign_spool_bytes{where=\"memory\"}");
        let disk = sample(&metrics, "countersign_spool_bytes{where=\"disk\"}");
        match (memory, disk) {
            (Some(0.0), Some(0.0)) => Ok(()),
            _ => Err(metrics),
        }
    };
    rt.block_on(eventually_async("the spool given back", SOON, given_back));
}
