//! Reload: load -> validate -> build the whole snapshot -> bind any new
//! listener -> ONE store. Any failure leaves the serving snapshot
//! untouched. Started by an explicit call (`App::reload`, `POST /reload`)
//! or by a trigger in `reload`.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::AppInner;
use crate::config::{ConfigError, Problem};
use crate::listener::Listener;
use crate::snapshot::Snapshot;

impl AppInner {
    pub(super) async fn reload(&self) -> Result<u64, ConfigError> {
        let _one_at_a_time = self.reloading.lock().await;
        let result = self.build_and_swap().await;
        self.metrics.reload(result.is_ok());
        let mut last = self.last_error.lock().unwrap_or_else(|p| p.into_inner());
        match &result {
            Ok(generation) => {
                *last = None;
                tracing::info!(generation, "config reloaded");
            }
            Err(e) => {
                *last = Some(e.clone());
                for p in &e.problems {
                    tracing::error!(problem = %p, "config reload refused; the previous config keeps serving");
                }
            }
        }
        result
    }

    /// Files are read and the snapshot built before the listeners are
    /// locked: shutdown takes that lock, and must never wait for a slow file.
    async fn build_and_swap(&self) -> Result<u64, ConfigError> {
        let config = super::load(&self.config_path).await?;
        let watched_files = config.watched_files.clone();
        let generation = self.cell.load().generation + 1;
        let snapshot = Snapshot::build(config, generation, &self.own, &self.tokens, &self.kept)
            .map_err(|problems| ConfigError {
                problems,
                watched_files: watched_files.clone(),
            })?;
        let mut listeners = self.listeners.lock().await;

        // Bind new listeners before the swap: a busy port refuses the reload
        // instead of leaving it half-applied.
        let mut fresh = Vec::new();
        for (role, addr) in snapshot.listeners() {
            if listeners.get(&role).is_some_and(|l| l.configured == addr) {
                continue;
            }
            match Listener::bind(role.clone(), addr).await {
                Ok((tcp, _)) => fresh.push((role, addr, tcp)),
                Err(e) => {
                    return Err(ConfigError {
                        problems: vec![Problem {
                            path: format!("listen ({role})"),
                            message: format!("cannot listen on {addr}: {e}"),
                        }],
                        watched_files,
                    })
                }
            }
        }
        let wanted: BTreeSet<_> = snapshot.listeners().into_iter().map(|(r, _)| r).collect();
        self.cell.store(Arc::new(snapshot));

        let mut addrs = self.addrs.lock().unwrap_or_else(|p| p.into_inner());
        for (role, addr, tcp) in fresh {
            // Once shutdown has begun no new listener starts.
            let Some(accept) = self.accept(&role) else {
                break;
            };
            let l = Listener::spawn(role.clone(), addr, tcp, accept);
            addrs.insert(role.clone(), l.local);
            listeners.insert(role, l);
        }
        listeners.retain(|role, _| wanted.contains(role));
        addrs.retain(|role, _| wanted.contains(role));
        self.own.set(addrs.values().copied().collect());
        drop(addrs);
        self.generation.send_replace(generation);
        Ok(generation)
    }
}
