//! Which server the shared store's commands go to, and following it. With
//! `store.url`, that one address for good (the connection manager
//! reconnects to it). With `store.sentinels`, the primary the Sentinels
//! name (`sentinel.rs`), found at the first command; a command that fails
//! on it (the primary went away, or a write answered `READONLY` because it
//! was demoted) drops it, and before each renewal the Sentinels are asked
//! whether they still name it; the next command then finds the new one. A
//! lease won is used only once a Sentinel names the primary it was won on
//! (`vouch`).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::client::{self, describe};
use super::sentinel::Discovery;
use crate::config::StoreConfig;

/// What the Sentinels say of the primary a lease was won on.
#[derive(Debug, PartialEq, Eq)]
pub enum Vouch {
    /// A Sentinel names it (or there are no Sentinels).
    Named,
    /// A Sentinel names another: the lease must not be used (why).
    Refused(String),
    /// No Sentinel answered in time (why).
    Unanswered(String),
}

/// The connection in use and how to find the next one.
pub struct Primary {
    /// `None` until the Sentinels have named the primary, and again once a
    /// command failed on it.
    target: Mutex<Option<Target>>,
    /// With `store.sentinels`: how to find the primary.
    discovery: Option<Discovery>,
    /// One discovery at a time; the others wait for its answer.
    finding: tokio::sync::Mutex<()>,
    /// When `confirm` last asked the Sentinels.
    confirmed: Mutex<Option<Instant>>,
    timeout: Duration,
    /// For log lines: the store's url or Sentinels (no credential).
    location: String,
}

#[derive(Clone)]
pub struct Target {
    pub manager: ConnectionManager,
    /// For connections of their own (a pub/sub subscription).
    pub client: redis::Client,
    /// `host:port` of the primary the Sentinels named (for logs).
    pub address: Option<String>,
}

impl Primary {
    /// For `config`; with a url, its connection manager is made now (call
    /// inside the store's runtime), lazily connecting.
    pub fn open(config: &StoreConfig) -> Result<Primary, String> {
        let discovery = Discovery::of(config);
        let target = match discovery {
            Some(_) => None,
            None => {
                let client = client::for_url(config).map_err(|e| describe(&e))?;
                let manager = manager(client.clone(), config.timeout).map_err(|e| describe(&e))?;
                Some(Target {
                    manager,
                    client,
                    address: None,
                })
            }
        };
        Ok(Primary {
            target: Mutex::new(target),
            discovery,
            finding: tokio::sync::Mutex::new(()),
            confirmed: Mutex::new(None),
            timeout: config.timeout,
            location: config.url.clone(),
        })
    }

    /// How many connections finding the primary makes at most (0 with a
    /// url), each bounded by the store's timeout.
    pub fn connections(&self) -> u32 {
        self.discovery.as_ref().map_or(0, Discovery::connections)
    }

    fn current(&self) -> Option<Target> {
        self.target
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The connection in use, found first if need be (on the store's
    /// runtime). The error says why no primary could be found.
    pub async fn target(&self) -> Result<Target, String> {
        if let Some(t) = self.current() {
            return Ok(t);
        }
        let Some(discovery) = &self.discovery else {
            return Err("the store is closed".into());
        };
        let _one = self.finding.lock().await;
        if let Some(t) = self.current() {
            return Ok(t);
        }
        let primary = discovery.primary().await?;
        let manager = manager(primary.client.clone(), self.timeout).map_err(|e| describe(&e))?;
        tracing::info!(
            store = %self.location,
            primary = %primary.address,
            "shared store: the Sentinels name this primary; using it"
        );
        let target = Target {
            manager,
            client: primary.client,
            address: Some(primary.address),
        };
        *self.target.lock().unwrap_or_else(|p| p.into_inner()) = Some(target.clone());
        Ok(target)
    }

    /// With Sentinels, before a renewal: asks them which primary they name
    /// now, and leaves ours if it is another. A failover leaves the old
    /// primary taking writes until the Sentinels demote it (seconds later),
    /// and a lease or a token published there would be lost; so a renewal
    /// starts on the primary the Sentinels name. At most once a second (a
    /// replica waiting for another's lease asks for the lease often).
    pub async fn confirm(&self) {
        let Some(discovery) = &self.discovery else {
            return;
        };
        {
            let mut last = self.confirmed.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|at| at.elapsed() < Duration::from_secs(1)) {
                return;
            }
            *last = Some(Instant::now());
        }
        let Some(ours) = self.current().and_then(|t| t.address) else {
            return;
        };
        if let Some(named) = discovery.named().await {
            if named != ours {
                self.forget(Some(&ours), &format!("the Sentinels now name {named}"));
            }
        }
    }

    /// With Sentinels, once a lease is won on primary `at`: whether a
    /// majority of the configured Sentinels name `at` now (asked at once:
    /// one Sentinel alone may be behind, or partitioned with an old
    /// primary). Not throttled as `confirm` is, since a lease is won once
    /// per renewal, and `confirm`'s answer may be up to a second old (or
    /// missing), long enough for a failover to end in between. Any
    /// Sentinel naming another primary refuses the lease (ours is left: a
    /// replaced primary keeps taking writes until the Sentinels demote it,
    /// and loses them then); too few answering leaves it to the caller
    /// (`Vouch::Unanswered`), which asks the primary's replicas.
    pub async fn vouch(&self, at: Option<&str>) -> Vouch {
        let (Some(discovery), Some(at)) = (&self.discovery, at) else {
            return Vouch::Named;
        };
        let answers = discovery.poll().await;
        if let Some(named) = answers.iter().flatten().find(|n| n.as_str() != at) {
            let why = format!("a Sentinel now names {named}");
            self.forget(Some(at), &why);
            return Vouch::Refused(format!("the lease was taken on {at}, but {why}"));
        }
        let naming = answers.iter().flatten().count();
        if naming * 2 > answers.len() {
            return Vouch::Named;
        }
        Vouch::Unanswered(match naming {
            0 => format!(
                "the lease was taken on {at}, and no Sentinel answered to confirm it is still the primary"
            ),
            n => format!(
                "the lease was taken on {at}, and only {n} of the {} Sentinels answered to confirm it is still the primary (a majority must)",
                answers.len()
            ),
        })
    }

    /// With Sentinels, stops using the primary found (for `why`), if it is
    /// still `at` when given (a connection made to an earlier primary says
    /// nothing of this one): the next command asks the Sentinels again.
    pub fn forget(&self, at: Option<&str>, why: &str) {
        if self.discovery.is_none() {
            return;
        }
        let mut target = self.target.lock().unwrap_or_else(|p| p.into_inner());
        let current = target.as_ref().and_then(|t| t.address.as_deref());
        if at.is_some() && current != at {
            return;
        }
        if let Some(address) = target.take().and_then(|t| t.address) {
            tracing::warn!(
                store = %self.location,
                primary = %address,
                "shared store: leaving this primary ({why}); asking the Sentinels again"
            );
        }
    }
}

fn manager(client: redis::Client, timeout: Duration) -> redis::RedisResult<ConnectionManager> {
    let settings = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_millis(500));
    ConnectionManager::new_lazy_with_config(client, settings)
}
