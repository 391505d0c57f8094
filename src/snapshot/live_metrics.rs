//! Families read from live state at scrape time: the serving snapshot's
//! generation, credentials, tokens, client certificates and the upstream
//! connections opened. Built afresh per scrape, so a credential or route a
//! reload removed leaves no series behind.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::Snapshot;
use crate::metrics::RouteLabel;
use crate::upstream::Protocol;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CredentialType {
    credential: String,
    r#type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CredentialLabel {
    credential: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FetchLabels {
    credential: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProtocolLabel {
    protocol: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabel {
    op: &'static str,
}

type Seconds = Gauge<f64, AtomicU64>;

/// The scrape-time families (help texts without their final period, and
/// counters without `_total`: the client adds both).
pub(crate) fn registry(snapshot: &Snapshot, last_reload_ok: bool) -> Registry {
    let mut r = Registry::default();
    let generation = Gauge::<i64>::default();
    generation.set(i64::try_from(snapshot.generation).unwrap_or(i64::MAX));
    r.register(
        "countersign_config_generation",
        "Generation of the serving config (1 at start, +1 per reload)",
        generation,
    );
    let reload_ok = Gauge::<i64>::default();
    reload_ok.set(i64::from(last_reload_ok));
    r.register(
        "countersign_config_last_reload_ok",
        "1 if the last reload attempt succeeded (or none was made), else 0",
        reload_ok,
    );

    let ready = Family::<CredentialType, Gauge>::default();
    let fetches = Family::<FetchLabels, Counter>::default();
    let fetch_seconds = Family::<CredentialLabel, Counter<f64, AtomicU64>>::default();
    let (age, expiry) = (
        Family::<CredentialLabel, Seconds>::default(),
        Family::<CredentialLabel, Seconds>::default(),
    );
    for (name, c) in &snapshot.credentials {
        let labels = CredentialType {
            credential: name.clone(),
            r#type: c.kind(),
        };
        ready.get_or_create(&labels).set(i64::from(c.is_ready()));
        let Some(t) = c.token_stats() else { continue };
        let credential = || CredentialLabel {
            credential: name.clone(),
        };
        for (result, n) in [("ok", t.fetches_ok), ("failed", t.fetches_failed)] {
            let labels = FetchLabels {
                credential: name.clone(),
                result,
            };
            fetches.get_or_create(&labels).inc_by(n);
        }
        fetch_seconds
            .get_or_create(&credential())
            .inc_by(t.fetch_seconds);
        if let Some(d) = t.age {
            age.get_or_create(&credential()).set(d.as_secs_f64());
        }
        if let Some(d) = t.expires_in {
            expiry.get_or_create(&credential()).set(d.as_secs_f64());
        }
    }
    r.register(
        "countersign_credential_ready",
        "1 if the credential can sign now",
        ready,
    );
    r.register(
        "countersign_token_fetches",
        "Token requests to the token endpoint, by credential and result",
        fetches,
    );
    r.register(
        "countersign_token_fetch_seconds",
        "Time spent in token requests, by credential (divide by fetches for latency)",
        fetch_seconds,
    );
    r.register(
        "countersign_token_age_seconds",
        "Age of the current token",
        age,
    );
    r.register(
        "countersign_token_expiry_seconds",
        "Seconds until the current token expires",
        expiry,
    );

    let store_errors = Family::<OpLabel, Counter>::default();
    for (op, n) in crate::creds::token::store::error_counts() {
        store_errors.get_or_create(&OpLabel { op }).inc_by(n);
    }
    r.register(
        "countersign_store_errors",
        "Failed operations on the shared store ([store]), by op: read (the fleet's published token), lease, publish, grant (a stored grant), session_lease, pending (authorizations under way)",
        store_errors,
    );

    // Every client of a snapshot counts into the one `Opened` of the `Kept`
    // that made it; passthrough's client reaches it.
    let opened = Family::<ProtocolLabel, Counter>::default();
    for protocol in [Protocol::Http1, Protocol::H2] {
        let labels = ProtocolLabel {
            protocol: protocol.label(),
        };
        opened
            .get_or_create(&labels)
            .inc_by(snapshot.passthrough.opened().get(protocol));
    }
    r.register(
        "countersign_upstream_connections_opened",
        "Connections opened to upstreams (routes and passthrough), by protocol: http/1.1, or h2 when the upstream chose it by ALPN",
        opened,
    );

    let cert_expiry = Family::<RouteLabel, Seconds>::default();
    for route in &snapshot.routes {
        if let Some(id) = &route.config.client_identity {
            let labels = RouteLabel {
                route: route.config.name.clone(),
            };
            cert_expiry
                .get_or_create(&labels)
                .set(crate::pki::seconds_until(id.not_after));
        }
    }
    r.register(
        "countersign_client_cert_expiry_seconds",
        "Seconds until the route's client certificate expires",
        cert_expiry,
    );
    r
}
