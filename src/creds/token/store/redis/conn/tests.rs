//! `Conn::run`'s bound.

use super::*;

/// Sends when dropped: tells that the work holding it was dropped.
struct Dropped(std::sync::mpsc::Sender<()>);

impl Drop for Dropped {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

#[tokio::test(start_paused = true)]
async fn work_not_done_in_time_is_aborted() {
    let config = StoreConfig::unreachable();
    let conn = Conn::open(&config).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let guard = Dropped(tx);
    // Work that never ends (a lease won, its vouch stuck): left running,
    // it could still act after its caller gave up on it.
    let e = conn
        .run(async move {
            let _guard = guard;
            std::future::pending::<Result<(), StoreError>>().await
        })
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no answer in time"), "{e}");
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the work was aborted once its caller gave up");
}
