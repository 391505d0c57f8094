//! Everything a reload replaces, built as one unit: routes, credentials and
//! upstream clients. A request loads the current snapshot once and keeps that
//! `Arc` to its end, so a reload never changes a request half-way.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::body::SpoolLimits;
use crate::config::{Config, Problem, ProxySettings, RouteConfig};
use crate::creds::{Credential, TokenRegistry};
use crate::route::Router;
use crate::upstream::{UpstreamClient, UpstreamSettings};

/// Which requests a listener takes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ListenerRole {
    /// Absolute-form requests from apps using `HTTP_PROXY`.
    Forward,
    /// Origin-form requests for one route, from apps whose base URL points here.
    Reverse(String),
}

impl std::fmt::Display for ListenerRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenerRole::Forward => f.write_str("forward proxy"),
            ListenerRole::Reverse(name) => write!(f, "route `{name}`"),
        }
    }
}

#[derive(Debug)]
pub struct Route {
    pub config: RouteConfig,
    pub credential: Option<Arc<Credential>>,
    pub client: Arc<UpstreamClient>,
}

#[derive(Debug)]
pub struct Snapshot {
    pub generation: u64,
    pub proxy: ProxySettings,
    pub router: Router,
    pub routes: Vec<Arc<Route>>,
    /// For unmatched requests under `passthrough`: default roots, no credential.
    pub passthrough: Arc<UpstreamClient>,
    pub watched_files: Vec<PathBuf>,
}

impl Snapshot {
    /// Builds every runtime object of `config`; any failure leaves nothing
    /// half-built behind. OAuth2 token managers come from `tokens`, which
    /// outlives snapshots, so an unchanged credential keeps its token.
    pub fn build(
        config: Config,
        generation: u64,
        tokens: &TokenRegistry,
    ) -> Result<Snapshot, Vec<Problem>> {
        let settings = UpstreamSettings {
            connect_timeout: config.proxy.connect_timeout,
            response_timeout: config.proxy.response_timeout,
            idle_timeout: config.proxy.idle_timeout,
        };
        let mut problems = Vec::new();
        let default_client = Arc::new(UpstreamClient::new(&[], settings).map_err(|e| {
            vec![Problem {
                path: "proxy".into(),
                message: e,
            }]
        })?);
        let mut credentials: BTreeMap<&str, Arc<Credential>> = BTreeMap::new();
        for (name, c) in &config.credentials {
            match Credential::build(name, c, tokens, settings) {
                Ok(cred) => {
                    credentials.insert(name.as_str(), Arc::new(cred));
                }
                Err(problem) => problems.push(problem),
            }
        }
        let mut routes = Vec::new();
        for (i, rc) in config.routes.iter().enumerate() {
            let client = if rc.ca_roots.is_empty() {
                Arc::clone(&default_client)
            } else {
                match UpstreamClient::new(&rc.ca_roots, settings) {
                    Ok(c) => Arc::new(c),
                    Err(message) => {
                        problems.push(Problem {
                            path: format!("route[{i}].ca_file"),
                            message,
                        });
                        continue;
                    }
                }
            };
            let credential = rc
                .credential
                .as_deref()
                .and_then(|n| credentials.get(n).cloned());
            routes.push(Arc::new(Route {
                config: rc.clone(),
                credential,
                client,
            }));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Snapshot {
            generation,
            router: Router::new(&config.routes),
            proxy: config.proxy,
            routes,
            passthrough: default_client,
            watched_files: config.watched_files,
        })
    }

    pub fn route_named(&self, name: &str) -> Option<&Arc<Route>> {
        self.routes.iter().find(|r| r.config.name == name)
    }

    pub fn spool_limits(&self) -> SpoolLimits {
        SpoolLimits {
            max_body: self.proxy.max_body,
            memory: self.proxy.spool_memory,
            dir: self.proxy.spool_dir.clone(),
        }
    }

    /// The listeners this snapshot wants, with their configured addresses.
    pub fn listeners(&self) -> Vec<(ListenerRole, SocketAddr)> {
        let mut out = vec![(ListenerRole::Forward, self.proxy.listen)];
        for r in &self.routes {
            if let Some(addr) = r.config.listen {
                out.push((ListenerRole::Reverse(r.config.name.clone()), addr));
            }
        }
        out
    }
}
