//! Vouching for a lease's primary (with Sentinels): a majority of the
//! Sentinels naming it, or while too few answer, its replicas
//! acknowledging the lease. See `Primary::vouch` and docs/replicas.md.

use redis::aio::ConnectionManager;

use super::super::super::StoreError;
use super::super::client::describe;
use super::super::primary::Vouch;
use super::Conn;

impl Conn {
    /// After a lease was won on primary `at` through `manager` (with
    /// Sentinels): `Ok` if it may be used. A majority of the Sentinels
    /// must name `at`; if too few answer by `until`, `at`'s replicas must:
    /// `WAIT wait_replicas` (a primary a failover replaced has had its
    /// replicas taken away, and gets no acknowledgement). A Sentinel naming
    /// another primary refuses the lease whatever the replicas say. `Err`
    /// is `StoreError::Unvouched`.
    pub async fn vouch_lease(
        &self,
        manager: &mut ConnectionManager,
        at: Option<&str>,
        until: tokio::time::Instant,
    ) -> Result<(), StoreError> {
        let vouch = tokio::time::timeout_at(until, self.primary.vouch(at))
            .await
            .unwrap_or_else(|_| {
                Vouch::Unanswered(format!(
                    "the lease was taken on {}, and no Sentinel answered in time to confirm it is still the primary",
                    at.unwrap_or("the primary")
                ))
            });
        let why = match vouch {
            Vouch::Named => return Ok(()),
            Vouch::Refused(why) => return Err(self.unvouched(why)),
            Vouch::Unanswered(why) => why,
        };
        let wait = self.wait_replicas;
        // Half the timeout, so that Redis's answer comes before the
        // connection's own timeout gives up on it.
        let acked: Result<u32, _> = redis::cmd("WAIT")
            .arg(wait)
            .arg((self.timeout.as_millis() as u64 / 2).max(1))
            .query_async(manager)
            .await;
        match acked {
            Ok(acked) if acked >= wait && wait > 0 => {
                tracing::warn!(
                    store = %self.location,
                    primary = at.unwrap_or(""),
                    acked,
                    "shared store: too few Sentinels answered; the lease's primary still has its replicas, using the lease"
                );
                Ok(())
            }
            // The primary is kept: asking the Sentinels again is no use
            // while none answers, and if it is the right one its replicas
            // may come back (if it was replaced, its writes then fail with
            // READONLY once it is demoted, and the Sentinels are asked).
            Ok(acked) => Err(self.unvouched(format!(
                "{why}, and only {acked} of the {wait} replicas of store.wait_replicas acknowledged it"
            ))),
            Err(e) => Err(self.unvouched(format!("{why}, and WAIT failed ({})", describe(&e)))),
        }
    }

    fn unvouched(&self, cause: String) -> StoreError {
        StoreError::Unvouched {
            location: self.location.clone(),
            cause,
        }
    }
}
