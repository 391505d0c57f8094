//! The copy of the body a jws-detached credential keeps in memory to sign
//! it whole takes from the same total budget as the spool: stalled uploads
//! hold at most `spool_memory_total`, the next is refused with 503
//! `spool-memory-spent` (it cannot go to disk as the spool does), a
//! finished upload gives its bytes back, and requests still sign.

use bytes::Bytes;
use http::Request;
use tokio::sync::mpsc::Sender;
use tokio::task::JoinHandle;

use super::*;
use crate::jws_detached::{verify, RSA_KEY_FILE};

const BUDGET: u64 = 3 << 20;
/// Each upload's declared length: three fit the budget with the 128 KiB
/// batch each body on disk fills (it takes from the budget too), a fourth
/// does not. (Under 1 MiB, all of which the test upstream keeps.)
const DECLARED: usize = 832 << 10;
/// What each stalled upload sends before it stalls.
const SENT: usize = 256 << 10;
const URL: &str = "http://ob.bank.test/open-banking/v3.1/pisp/domestic-payments";

fn config(upstream: &str) -> String {
    format!(
        r#"
[proxy]
listen = "127.0.0.1:0"
spool_dir = "DIR"
spool_memory = "64KiB"
spool_memory_total = "3MiB"

[credential.bank-jws]
type = "jws-detached"
version = "3.1.10"
private_key_file = "{RSA_KEY_FILE}"
kid = "kid-1"
issuer = "tpp"
max_body = "1MiB"

[[route]]
name = "bank"
hosts = ["ob.bank.test"]
upstream = "{upstream}"
credential = "bank-jws"
"#
    )
}

type Feed = Sender<Result<Bytes, std::io::Error>>;

/// A payment of `declared` bytes whose body the test feeds; its answer is
/// awaited in a task.
fn upload(
    proxy: std::net::SocketAddr,
    declared: usize,
) -> (Feed, JoinHandle<Result<Answer, String>>) {
    let (tx, body) = channel_body();
    let req = Request::post(URL)
        .header("content-type", "application/json")
        .header("content-length", declared)
        .body(body)
        .unwrap();
    (tx, tokio::spawn(try_send(proxy, req)))
}

async fn feed(tx: &Feed, byte: u8, mut len: usize) {
    while len > 0 {
        let n = len.min(64 << 10);
        tx.send(Ok(Bytes::from(vec![byte; n]))).await.unwrap();
        len -= n;
    }
}

fn memory(metrics: &str) -> f64 {
    sample(metrics, "countersign_spool_bytes{where=\"memory\"}").unwrap_or(0.0)
}

#[tokio::test]
async fn stalled_jws_uploads_hold_at_most_the_budget_and_the_next_is_refused() {
    let upstream = Upstream::http().await;
    let sidecar = Sidecar::start(&config(&upstream.http_url())).await;
    let (proxy, probes) = (sidecar.proxy(), sidecar.probes());

    // Three uploads stall, one after another: each copy takes its declared
    // length from the budget at its first bytes.
    let mut stalled = Vec::new();
    for (i, byte) in [b'a', b'b', b'c'].into_iter().enumerate() {
        let (tx, answer) = upload(proxy, DECLARED);
        feed(&tx, byte, SENT).await;
        let want = ((i + 1) * DECLARED) as f64;
        eventually_async("the copy counted", SOON, || async {
            let metrics = scrape(probes).await;
            assert!(memory(&metrics) <= BUDGET as f64, "{metrics}");
            if memory(&metrics) >= want {
                Ok(())
            } else {
                Err(metrics)
            }
        })
        .await;
        stalled.push((tx, answer));
    }

    // The fourth cannot have its copy: refused at once, not held.
    let (tx, answer) = upload(proxy, DECLARED);
    feed(&tx, b'd', 1024).await;
    let refused = answer.await.unwrap().expect("an answer");
    drop(tx);
    assert_eq!(refused.status, 503, "{refused:?}");
    assert_eq!(
        refused.header("x-countersign-error"),
        Some("spool-memory-spent")
    );
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert!(
        refused.body.contains("credential `bank-jws`")
            && refused.body.contains("spool_memory_total (3145728 bytes)"),
        "{}",
        refused.body
    );
    let metrics = scrape(probes).await;
    assert!(memory(&metrics) <= BUDGET as f64, "{metrics}");
    let refusals = sample(
        &metrics,
        "countersign_limit_rejections_total{limit=\"spool_memory\"}",
    );
    assert!(refusals >= Some(1.0), "{metrics}");
    assert!(upstream.received().is_empty(), "nothing reached the bank");

    // The first upload finishes: signed over exactly what was sent, and
    // its bytes are given back.
    let (tx, answer) = stalled.remove(0);
    feed(&tx, b'a', DECLARED - SENT).await;
    drop(tx);
    let done = answer.await.unwrap().expect("an answer");
    assert_eq!(done.status, 200, "{done:?}");
    let got = upstream.last();
    assert_eq!(got.body.len(), DECLARED);
    assert!(got.body.iter().all(|b| *b == b'a'), "the body as sent");
    verify(&got);
    eventually_async("the finished upload's bytes given back", SOON, || async {
        let metrics = scrape(probes).await;
        // The two still stalled: their copies and a batch each.
        if memory(&metrics) <= (2 * DECLARED + (256 << 10)) as f64 {
            Ok(())
        } else {
            Err(metrics)
        }
    })
    .await;

    // With room again, a payment is signed as usual.
    let body = br#"{"Data":{"Initiation":{}},"Risk":{}}"#;
    let answer = send(
        proxy,
        post(URL, "application/json", std::str::from_utf8(body).unwrap()),
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let got = upstream.last();
    assert_eq!(got.body, body);
    verify(&got);

    // The clients that stalled go away: everything is given back.
    for (tx, answer) in stalled {
        drop(tx);
        let _ = answer.await;
    }
    eventually_async("the budget given back", SOON, || async {
        let metrics = scrape(probes).await;
        if memory(&metrics) == 0.0 {
            Ok(())
        } else {
            Err(metrics)
        }
    })
    .await;
}
