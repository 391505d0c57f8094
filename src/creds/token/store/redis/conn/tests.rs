//! `Conn::run`'s bound; what `Conn` remembers of the epoch and of the
//! grants it saw.

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

fn held(seed: &str) -> Held {
    Held {
        seed: seed.into(),
        since: None,
        version: 1,
    }
}

fn lost_names(seen: EpochSeen) -> Vec<String> {
    match seen {
        EpochSeen::Changed { lost, .. } => {
            let mut names: Vec<String> = lost.into_iter().map(|(name, _)| name).collect();
            names.sort();
            names
        }
        EpochSeen::Same => panic!("unchanged"),
    }
}

#[test]
fn a_new_epoch_reads_as_changed_until_committed_with_what_was_seen_before_it() {
    let conn = Conn::open(&StoreConfig::unreachable()).unwrap();
    conn.mark("a", Some(held("s")));
    assert_eq!(
        conn.epoch_peek("e1"),
        EpochSeen::Same,
        "the first is adopted"
    );
    conn.mark("b", Some(held("s")));
    let first = conn.epoch_peek("e2");
    assert!(matches!(first, EpochSeen::Changed { first: true, .. }));
    assert_eq!(lost_names(first), ["a", "b"]);
    // Seen under the new epoch: held there, not lost with the old one.
    conn.mark("c", Some(held("s")));
    let again = conn.epoch_peek("e2");
    assert!(matches!(again, EpochSeen::Changed { first: false, .. }));
    assert_eq!(lost_names(again), ["a", "b"]);
    assert_eq!(conn.epoch().as_deref(), Some("e1"));
    conn.epoch_commit("e2");
    assert_eq!(conn.epoch_peek("e2"), EpochSeen::Same);
    assert_eq!(conn.epoch().as_deref(), Some("e2"));
}

#[test]
fn only_a_lower_version_of_the_same_grant_is_rolled_back() {
    let conn = Conn::open(&StoreConfig::unreachable()).unwrap();
    let at = |seed: &str, since, version| Held {
        seed: seed.into(),
        since,
        version,
    };
    // What a read finding `held` concludes from what was remembered.
    let rolled = |held: Held| conn.remembered("k").and_then(|b| b.rolled_back_to(&held));
    conn.mark("k", Some(at("s", Some(1), 5)));
    conn.mark("k", Some(at("s", Some(1), 3)));
    assert_eq!(rolled(at("s", Some(1), 4)), Some(5));
    assert_eq!(rolled(at("s", Some(1), 5)), None);
    // Another seed, or a session authorized again: another grant.
    assert_eq!(rolled(at("t", Some(1), 1)), None);
    assert_eq!(rolled(at("s", Some(2), 1)), None);
    conn.mark("k", Some(at("s", Some(2), 1)));
    assert_eq!(rolled(at("s", Some(1), 4)), None);
}
