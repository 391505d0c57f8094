//! Authorizations under way in this process only (no `[store]`): bounded
//! maps, the oldest entry dropped first when one is full, entries older
//! than their time to live forgotten.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::{Pending, PendingKind, PendingStore};
use crate::config::Secret;

/// At most this many values of each kind wait at once; the oldest goes
/// first.
const MAX_WAITING: usize = 1024;

struct Waiting {
    value: Secret,
    until: Instant,
}

#[derive(Default)]
pub struct MemoryPending {
    waiting: Mutex<HashMap<PendingKind, HashMap<String, Waiting>>>,
}

impl std::fmt::Debug for MemoryPending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryPending").finish_non_exhaustive()
    }
}

impl MemoryPending {
    fn put_now(&self, kind: PendingKind, id: &str, value: Secret, ttl: Duration) {
        let now = Instant::now();
        let mut all = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        let map = all.entry(kind).or_default();
        map.retain(|_, w| w.until > now);
        if map.len() >= MAX_WAITING {
            let oldest = map
                .iter()
                .min_by_key(|(_, w)| w.until)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                map.remove(&k);
            }
        }
        let until = now + ttl;
        map.insert(id.to_string(), Waiting { value, until });
    }

    fn take_now(&self, kind: PendingKind, id: &str) -> Option<Secret> {
        let mut all = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        let waiting = all.get_mut(&kind)?.remove(id)?;
        (Instant::now() < waiting.until).then_some(waiting.value)
    }
}

impl PendingStore for MemoryPending {
    fn put<'a>(
        &'a self,
        kind: PendingKind,
        id: &'a str,
        value: Secret,
        ttl: Duration,
    ) -> Pending<'a, ()> {
        self.put_now(kind, id, value, ttl);
        Box::pin(std::future::ready(Ok(())))
    }

    fn take<'a>(&'a self, kind: PendingKind, id: &'a str) -> Pending<'a, Option<Secret>> {
        Box::pin(std::future::ready(Ok(self.take_now(kind, id))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(600);

    #[tokio::test(start_paused = true)]
    async fn taken_once_and_forgotten_after_its_ttl() {
        let p = MemoryPending::default();
        p.put(PendingKind::Ticket, "t1", Secret::new("alice"), TTL)
            .await
            .unwrap();
        p.put(PendingKind::Ticket, "t2", Secret::new("bob"), TTL)
            .await
            .unwrap();
        assert_eq!(p.take(PendingKind::State, "t1").await.unwrap(), None);
        let got = p.take(PendingKind::Ticket, "t1").await.unwrap().unwrap();
        assert_eq!(got.expose(), "alice");
        assert_eq!(p.take(PendingKind::Ticket, "t1").await.unwrap(), None);
        tokio::time::advance(TTL).await;
        assert_eq!(p.take(PendingKind::Ticket, "t2").await.unwrap(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_map_drops_its_oldest_entry() {
        let p = MemoryPending::default();
        for i in 0..=MAX_WAITING {
            p.put(PendingKind::State, &format!("s{i}"), Secret::new("x"), TTL)
                .await
                .unwrap();
            tokio::time::advance(Duration::from_millis(1)).await;
        }
        assert_eq!(p.take(PendingKind::State, "s0").await.unwrap(), None);
        assert!(p.take(PendingKind::State, "s1").await.unwrap().is_some());
        let last = format!("s{MAX_WAITING}");
        assert!(p.take(PendingKind::State, &last).await.unwrap().is_some());
    }
}
