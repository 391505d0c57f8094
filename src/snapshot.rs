//! Everything a reload replaces, built as one unit: routes, credentials and
//! upstream clients. A request loads the current snapshot once and keeps that
//! `Arc` to its end, so a reload never changes a request half-way.

mod kept;
mod live_metrics;
mod target;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::body::SpoolLimits;
use crate::config::{AdminSettings, Config, HostPattern, Problem, ProxySettings, RouteConfig};
use crate::creds::{Credential, Stack, TokenRegistry};
use crate::egress::{EgressPolicy, OwnAddrs, Trust};
use crate::metrics::RouteMetrics;
use crate::pki::leaf::LeafMinter;
use crate::route::Router;
use crate::upstream::{ClientSpec, UpstreamClient, UpstreamSettings};
pub use kept::Kept;
pub use target::RouteTarget;

/// Which requests a listener takes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ListenerRole {
    /// Absolute-form requests from apps using `HTTP_PROXY`.
    Forward,
    /// Origin-form requests for one route, from apps whose base URL points here.
    Reverse(String),
    /// Requests read inside an intercepted CONNECT tunnel to `host:port`.
    Tunnel { host: String, port: u16 },
    /// The admin probes (health, readiness, metrics); also the controls
    /// and browser endpoints when they have no listener of their own.
    Admin,
    /// The admin controls (status, reload, starting an authorization);
    /// also the browser endpoints when they have no listener of their own.
    Control,
    /// The browser endpoints of the authorization-code flow.
    Browser,
}

impl ListenerRole {
    /// A bounded label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ListenerRole::Forward => "proxy",
            ListenerRole::Reverse(_) => "route",
            ListenerRole::Tunnel { .. } => "tunnel",
            // All three admin listeners count as one, as before the split.
            ListenerRole::Admin | ListenerRole::Control | ListenerRole::Browser => "admin",
        }
    }
}

/// The serving snapshot, swapped whole by reload.
pub type SnapshotCell = Arc<arc_swap::ArcSwap<Snapshot>>;

impl std::fmt::Display for ListenerRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenerRole::Forward => f.write_str("forward proxy"),
            ListenerRole::Reverse(name) => write!(f, "route `{name}`"),
            ListenerRole::Tunnel { host, port } => write!(f, "tunnel to {host}:{port}"),
            ListenerRole::Admin => f.write_str("admin"),
            ListenerRole::Control => f.write_str("control"),
            ListenerRole::Browser => f.write_str("browser"),
        }
    }
}

#[derive(Debug)]
pub struct Route {
    pub config: RouteConfig,
    /// The route's credentials, in the order they are applied.
    pub credential: Option<Arc<Stack>>,
    pub client: Arc<UpstreamClient>,
    /// The upstream's scheme, authority and `Host`, made once.
    pub target: RouteTarget,
    /// The route's metric handles; a request keeps them to its end.
    pub metrics: Arc<RouteMetrics>,
}

#[derive(Debug)]
pub struct Snapshot {
    pub generation: u64,
    pub proxy: ProxySettings,
    pub router: Router,
    pub routes: Vec<Arc<Route>>,
    /// For unmatched requests under `passthrough`: default roots, no
    /// credential, egress checks on.
    pub passthrough: Arc<UpstreamClient>,
    /// Checks destinations the app chose (passthrough, tunnels).
    pub egress: Arc<EgressPolicy>,
    /// Mints certificates for intercepted CONNECT hosts, when a CA is set.
    pub minter: Option<Arc<LeafMinter>>,
    /// CONNECT targets that may pass through as opaque tunnels.
    pub tunnel: Vec<(HostPattern, Option<u16>)>,
    /// Every credential by name, and the ones readiness waits for.
    pub credentials: BTreeMap<String, Arc<Credential>>,
    pub required: std::collections::BTreeSet<String>,
    pub admin: AdminSettings,
    pub watched_files: Vec<PathBuf>,
}

impl Snapshot {
    /// Builds every runtime object of `config`; any failure leaves nothing
    /// half-built behind. `own` lists countersign's listeners, which no
    /// request may be sent to. OAuth2 token managers come from `tokens`,
    /// which outlives snapshots, so an unchanged credential keeps its token;
    /// upstream clients and the leaf cache come from `kept` the same way.
    pub fn build(
        config: Config,
        generation: u64,
        own: &OwnAddrs,
        tokens: &TokenRegistry,
        kept: &Kept,
    ) -> Result<Snapshot, Vec<Problem>> {
        let settings = UpstreamSettings {
            connect_timeout: config.proxy.connect_timeout,
            response_timeout: config.proxy.response_timeout,
            idle_timeout: config.proxy.idle_timeout,
            max_idle: config.proxy.idle_connections,
        };
        let egress = Arc::new(EgressPolicy::new(config.egress.clone(), own.clone()));
        let client = |spec: &ClientSpec, path: String| {
            kept.client(spec, settings, &egress, &config.egress)
                .map_err(|message| Problem { path, message })
        };
        let mut problems = Vec::new();
        let untrusted = ClientSpec {
            trust: Some(Trust::Untrusted),
            ..ClientSpec::default()
        };
        // Routes without roots, identity or SNI of their own share one
        // client (one pool) that offers h2; passthrough (no route, the
        // app's own Host) and routes with `http2 = false` stay HTTP/1.1.
        let named = ClientSpec {
            trust: Some(Trust::Named),
            http2: true,
            ..ClientSpec::default()
        };
        let passthrough = client(&untrusted, "proxy".into()).map_err(|p| vec![p])?;
        let shared_named = client(&named, "proxy".into()).map_err(|p| vec![p])?;
        let mut credentials: BTreeMap<String, Arc<Credential>> = BTreeMap::new();
        for (name, c) in &config.credentials {
            match Credential::build(name, c, tokens, settings, &egress) {
                Ok(cred) => {
                    credentials.insert(name.clone(), Arc::new(cred));
                }
                Err(problem) => problems.push(problem),
            }
        }
        let mut routes = Vec::new();
        for (i, rc) in config.routes.iter().enumerate() {
            let spec = ClientSpec {
                extra_roots: rc.ca_roots.clone(),
                identity: rc.client_identity.clone(),
                sni: rc.sni.clone(),
                trust: Some(Trust::Named),
                http2: rc.http2,
            };
            let own_pool = !spec.extra_roots.is_empty()
                || spec.identity.is_some()
                || spec.sni.is_some()
                || !spec.http2;
            let client = if own_pool {
                match client(&spec, format!("route[{i}]")) {
                    Ok(c) => c,
                    Err(p) => {
                        problems.push(p);
                        continue;
                    }
                }
            } else {
                Arc::clone(&shared_named)
            };
            let credential = Stack::new(
                rc.credential
                    .iter()
                    .filter_map(|n| credentials.get(n).cloned())
                    .collect(),
            )
            .map(Arc::new);
            let target = match RouteTarget::new(&rc.upstream) {
                Ok(t) => t,
                Err(message) => {
                    problems.push(Problem {
                        path: format!("route[{i}].upstream"),
                        message,
                    });
                    continue;
                }
            };
            routes.push(Arc::new(Route {
                config: rc.clone(),
                credential,
                client,
                target,
                metrics: Arc::new(RouteMetrics::new(rc.name.clone())),
            }));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let minter = config
            .intercept
            .as_ref()
            .map(|i| kept.minter(&i.ca, i.leaf_lifetime));
        Ok(Snapshot {
            generation,
            router: Router::new(&config.routes),
            proxy: config.proxy,
            routes,
            passthrough,
            egress,
            minter,
            tunnel: config.tunnel,
            credentials,
            required: config.required,
            admin: config.admin,
            watched_files: config.watched_files,
        })
    }

    /// Whether a CONNECT to `host:port` may become an opaque tunnel.
    pub fn tunnel_allowed(&self, host: &str, port: u16) -> bool {
        self.tunnel
            .iter()
            .any(|(pattern, p)| p.is_none_or(|p| p == port) && pattern.matches(host))
    }

    /// The metric families read from this snapshot at scrape time (its
    /// generation, credentials, tokens, client certificates).
    pub fn live_metrics(&self, last_reload_ok: bool) -> prometheus_client::registry::Registry {
        live_metrics::registry(self, last_reload_ok)
    }

    pub fn route_named(&self, name: &str) -> Option<&Arc<Route>> {
        self.routes.iter().find(|r| r.config.name == name)
    }

    pub fn spool_limits(&self) -> SpoolLimits {
        SpoolLimits {
            max_body: self.proxy.max_body,
            memory: self.proxy.spool_memory,
            memory_total: self.proxy.limits.spool_memory_total,
            dir: self.proxy.spool_dir.clone(),
        }
    }

    /// The listeners this snapshot wants, with their configured addresses.
    pub fn listeners(&self) -> Vec<(ListenerRole, SocketAddr)> {
        let mut out = vec![
            (ListenerRole::Forward, self.proxy.listen),
            (ListenerRole::Admin, self.admin.listen),
            (ListenerRole::Control, self.admin.control_listen),
        ];
        if let Some(addr) = self.admin.browser_listen.own() {
            out.push((ListenerRole::Browser, addr));
        }
        for r in &self.routes {
            if let Some(addr) = r.config.listen {
                out.push((ListenerRole::Reverse(r.config.name.clone()), addr));
            }
        }
        out
    }
}
