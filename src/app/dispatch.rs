//! Which service answers a listener's connections, decided here where the
//! app is assembled: the admin endpoints for the admin listeners (probes,
//! controls, browsers), the proxy for the forward and route listeners. The accept loops and `serve` only
//! carry out what is decided here.

use std::sync::Arc;

use super::control::AppControl;
use super::AppInner;
use crate::admin;
use crate::listener::{Accept, Serve};
use crate::proxy;
use crate::snapshot::ListenerRole;

impl AppInner {
    /// What the accept loop of `role` needs; `None` once shutdown has begun
    /// (no new listener starts then).
    pub(super) fn accept(&self, role: &ListenerRole) -> Option<Accept> {
        let drain = self.drain.watch()?;
        let serve: Serve = match role {
            ListenerRole::Admin | ListenerRole::Control | ListenerRole::Browser => {
                let control = Arc::new(AppControl::new(self));
                let (role, drain) = (role.clone(), drain.clone());
                Arc::new(move |stream, slot| {
                    let (control, drain) = (Arc::clone(&control), drain.clone());
                    let role = role.clone();
                    Box::pin(async move {
                        admin::serve(stream, control, role, drain).await;
                        drop(slot);
                    })
                })
            }
            ListenerRole::Forward | ListenerRole::Reverse(_) | ListenerRole::Tunnel { .. } => {
                let ctx = proxy::Context {
                    cell: Arc::clone(&self.cell),
                    metrics: Arc::clone(&self.metrics),
                    drain: drain.clone(),
                    slot: None,
                };
                let role = role.clone();
                Arc::new(move |stream, slot| {
                    let ctx = proxy::Context {
                        slot: Some(Arc::new(slot)),
                        ..ctx.clone()
                    };
                    Box::pin(proxy::conn::http1_tcp(stream, role.clone(), ctx))
                })
            }
        };
        Some(Accept {
            cell: Arc::clone(&self.cell),
            metrics: Arc::clone(&self.metrics),
            drain,
            serve,
        })
    }
}
