//! Which published token a replica takes, and the next generation.

use super::*;
use crate::creds::token::store::ROTATING_STORE_CALLS;

fn core(refresh_at: f64) -> Core {
    let config = StoreConfig::unreachable();
    Core {
        key: StoreKey::credential("bank"),
        board: Board::open(&config).unwrap(),
        refresh_at,
        serving: Mutex::new(Some(Served::of(4, &token(4)))),
        heard: Mutex::new(None),
        heard_one: Notify::new(),
    }
}

/// The token first published as `generation`.
fn token(generation: u64) -> Vec<u8> {
    format!("Bearer at-{generation}").into_bytes()
}

fn published(generation: u64, left_ms: i64) -> Published {
    Published {
        generation,
        value: token(generation),
        left_ms,
        lifetime: Duration::from_secs(10),
    }
}

#[tokio::test]
async fn takes_only_another_token_not_yet_due() {
    let core = core(0.8);
    assert!(core.worth_taking(None).is_none());
    assert!(
        core.worth_taking(Some(&published(4, 9_000))).is_none(),
        "served"
    );
    // Past its renewal point (80 % of 10 s): renew rather than take.
    assert!(core.worth_taking(Some(&published(5, 2_000))).is_none());
    assert!(core.worth_taking(Some(&published(5, -1))).is_none());
    let taken = core.worth_taking(Some(&published(5, 2_500))).unwrap();
    assert_eq!(taken.lifetime, Duration::from_millis(2_500));
    assert!(taken.value.is_sensitive());
    assert_eq!(core.serving(), Some(Served::of(5, &token(5))));
    assert!(core.worth_taking(Some(&published(5, 2_400))).is_none());
}

#[tokio::test]
async fn a_generation_published_again_with_another_token_is_taken() {
    // The store lost generation 5 (a failover to a replica without it)
    // and a replica published its renewal as 5 again.
    let core = core(0.8);
    core.serve(Served::of(5, &token(5)));
    let again = Published {
        value: b"Bearer renewed".to_vec(),
        ..published(5, 9_000)
    };
    assert!(core.worth_taking(Some(&again)).is_some());
    assert_eq!(core.serving(), Some(Served::of(5, b"Bearer renewed")));
    assert!(core.worth_taking(Some(&again)).is_none(), "served now");
}

#[tokio::test]
async fn the_same_token_published_under_a_new_generation_is_taken() {
    // The token endpoint handed back the still-valid token served, with
    // a fresh lifetime: the others take that lifetime.
    let core = core(0.8);
    let again = Published {
        value: token(4),
        ..published(5, 9_000)
    };
    let taken = core.worth_taking(Some(&again)).unwrap();
    assert_eq!(taken.lifetime, Duration::from_millis(9_000));
    assert_eq!(core.serving(), Some(Served::of(5, &token(4))));
    assert!(core.worth_taking(Some(&again)).is_none(), "served now");
}

#[tokio::test]
async fn an_older_generation_is_not_taken() {
    // The store was rolled back to generation 3 (restored, or failed
    // over to a replica behind): its token is older than the one served.
    let core = core(0.8);
    assert!(core.worth_taking(Some(&published(3, 9_000))).is_none());
    let other = Published {
        value: b"Bearer other".to_vec(),
        ..published(3, 9_000)
    };
    assert!(
        core.worth_taking(Some(&other)).is_none(),
        "not even another value"
    );
    assert_eq!(core.serving(), Some(Served::of(4, &token(4))));
}

#[test]
fn the_next_generation_comes_after_the_seen_and_the_served_or_none() {
    let served = |g| Some(Served::of(g, b"v"));
    assert_eq!(next_generation(0, None), Some(1));
    assert_eq!(next_generation(3, served(5)), Some(6));
    assert_eq!(next_generation(7, served(5)), Some(8));
    assert_eq!(next_generation(u64::MAX, served(5)), None, "damaged entry");
    assert_eq!(next_generation(2, served(u64::MAX)), None);
}

struct Nothing;

impl TokenSource for Nothing {
    fn fetch<'a>(&'a self, _label: &'a str) -> Fetch<'a> {
        Box::pin(std::future::ready(Err(SourceError::new("none"))))
    }

    fn noun(&self) -> &'static str {
        "nothing"
    }
}

#[tokio::test]
async fn a_source_making_no_store_call_has_its_publication_counted_in_the_lease() {
    let config = StoreConfig::unreachable();
    let request = Duration::from_secs(3);
    let wrap = |calls| {
        let key = StoreKey::credential("bank");
        Fleet::wrap(Box::new(Nothing), key, &config, request, calls, 0.8, false).unwrap()
    };
    let leases = Leases::open(&config).unwrap();
    let one_call = leases.renewal_bound(request, 1);
    assert!(one_call > request);
    assert_eq!(wrap(0).request_bound, one_call, "the publication");
    assert_eq!(
        wrap(ROTATING_STORE_CALLS).request_bound,
        leases.renewal_bound(request, ROTATING_STORE_CALLS)
    );
}
