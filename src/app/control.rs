//! The admin endpoints' handle on the app: the `admin::Control` they are
//! given instead of the app itself. It holds the app weakly, so that open
//! admin connections do not keep a stopped app alive.

use std::future::Future;
use std::sync::{Arc, Weak};

use super::AppInner;
use crate::admin::{Control, State};
use crate::config::{ConfigError, Problem};
use crate::metrics::Metrics;
use crate::snapshot::{Snapshot, SnapshotCell};

pub(super) struct AppControl {
    cell: SnapshotCell,
    metrics: Arc<Metrics>,
    app: Weak<AppInner>,
}

impl AppControl {
    pub(super) fn new(inner: &AppInner) -> AppControl {
        AppControl {
            cell: Arc::clone(&inner.cell),
            metrics: Arc::clone(&inner.metrics),
            app: inner.me.clone(),
        }
    }
}

impl Control for AppControl {
    fn snapshot(&self) -> Arc<Snapshot> {
        self.cell.load_full()
    }

    fn reload(&self) -> impl Future<Output = Result<u64, ConfigError>> + Send {
        let app = self.app.upgrade();
        async move {
            match app {
                Some(inner) => inner.reload().await,
                None => Err(ConfigError {
                    problems: vec![Problem {
                        path: "reload".into(),
                        message: "countersign is shutting down".into(),
                    }],
                    watched_files: Vec::new(),
                }),
            }
        }
    }

    fn state(&self) -> State {
        let Some(inner) = self.app.upgrade() else {
            return State::default();
        };
        let listeners = inner
            .addrs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        State {
            last_reload_error: inner.last_reload_error(),
            listeners,
        }
    }

    fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}
