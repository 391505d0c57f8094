//! `countersign token` with `[store]` set: the credential's state in the
//! shared store, read only. The replicas renew under the fleet's lease, so
//! this command fetches nothing (it would be one more renewal) and prints
//! no token or refresh token, only where things are and how old they are:
//! the grant's version and any presented mark, the published token's
//! generation, age and expiry (on Redis's clock), and whether a replica
//! holds the renewal lease; for an authorization_code credential, how many
//! sessions are stored. An empty grant is described by what the store
//! records of it (lost with the store's data, or seeds spent).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::{CredentialConfig, Grant, Secret, StoreConfig};
use crate::creds::token::store::{
    seed_hash, Board, Leases, Published, Records, RedisTokenStore, StoreError, StoreKey,
    TokenStore as _,
};

use super::Failure;

/// The lines for credential `name` (configured as `credential`), read from
/// the store `shared` names. Fails only when the store cannot be reached.
pub fn state(
    shared: &StoreConfig,
    name: &str,
    credential: &CredentialConfig,
) -> Result<Vec<String>, Failure> {
    let unreachable = |e: StoreError| (1, e.to_string());
    let key = StoreKey::credential(name);
    let mut lines = vec![format!(
        "shared store: {} (key prefix {})",
        shared.url, shared.key_prefix
    )];
    let grant = match credential {
        CredentialConfig::OAuth2(o) => Some(&o.grant),
        _ => None,
    };
    match grant {
        Some(Grant::AuthorizationCode(_)) => {
            let store = RedisTokenStore::open(shared).map_err(unreachable)?;
            let count = store.session_count(name).map_err(unreachable)?;
            lines.push(format!(
                "sessions: {count} stored, each in its own key {}session:{name}:<hash of the session id>; each replica renews its own access token of a session",
                shared.key_prefix
            ));
            lines.push(NOT_FETCHED.into());
            return Ok(lines);
        }
        Some(Grant::RefreshToken { seed }) => {
            let store = RedisTokenStore::open(shared).map_err(unreachable)?;
            lines.push(grant_line(&store, &key, seed.as_ref())?);
        }
        _ => {}
    }
    let board = Board::open(shared).map_err(unreachable)?;
    let leases = Leases::open(shared).map_err(unreachable)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| (1, format!("cannot start the runtime: {e}")))?;
    let (published, held) = rt.block_on(async {
        let published = board.read(&key).await;
        let held = leases.held(&key).await;
        (published, held)
    });
    let published = match published {
        Ok(p) => published_line(&board.name(&key), p.as_ref()),
        Err(e @ StoreError::Unreachable { .. }) => return Err(unreachable(e)),
        Err(e) => format!("published token: {e}"),
    };
    lines.push(published);
    let held = held.map_err(unreachable)?;
    lines.push(format!(
        "renewal lease: {} ({})",
        leases.name(&key),
        if held {
            "held by a replica now"
        } else {
            "free"
        }
    ));
    lines.push(NOT_FETCHED.into());
    Ok(lines)
}

const NOT_FETCHED: &str = "not fetched: with [store] set, the replicas renew under the fleet's lease; `countersign token` only reads the shared store and never prints a token (see GET /status on a replica's control listener)";

/// The stored refresh-token grant: its version and any presented mark;
/// for an empty one, what the store records of it (`seed`: the configured
/// refresh_token, compared by fingerprint).
fn grant_line(
    store: &RedisTokenStore,
    key: &StoreKey,
    seed: Option<&Secret>,
) -> Result<String, Failure> {
    let name = store.name(key);
    let found = match store.load_versioned(key) {
        Ok(found) => found,
        Err(e @ StoreError::Unreachable { .. }) => return Err((1, e.to_string())),
        Err(StoreError::Lost { .. }) => None,
        Err(e) => return Ok(format!("grant: {e}")),
    };
    let Some(found) = found else {
        let records = store.records_named(&name).map_err(|e| (1, e.to_string()))?;
        return Ok(empty_line(&name, &records, seed));
    };
    let mark = match &found.grant.presented {
        None => "no refresh token presented and awaiting its successor".to_string(),
        Some(p) => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs();
            format!(
                "replica {} presented the refresh token {} s ago and has not stored its successor yet",
                p.by,
                now.saturating_sub(p.at_unix)
            )
        }
    };
    Ok(format!(
        "grant: {name}, version {} (a refresh token is stored; {mark})",
        found.version
    ))
}

/// An empty grant key: nothing yet, or what the store records of it.
fn empty_line(name: &str, records: &Records, seed: Option<&Secret>) -> String {
    let configured = seed.map(|s| seed_hash(Some(s)));
    let is_in = |set: &[String]| match &configured {
        None => "no refresh_token is configured".to_string(),
        Some(f) if set.contains(f) => "the configured refresh_token is one of them".into(),
        Some(_) => "the configured refresh_token is not one of them".into(),
    };
    if !records.lost.is_empty() {
        return format!(
            "grant: {name} (empty, and recorded lost with the store's data: no replica presents the {} configured refresh_token(s) the lost grant descended from; {}. Restore Redis from a backup that holds the newest refresh token, or set the refresh_token a person obtained most recently and reload every replica)",
            records.lost.len(),
            is_in(&records.lost)
        );
    }
    if !records.spent.is_empty() {
        return format!(
            "grant: {name} (empty, with {} configured refresh_token(s) recorded spent, never presented again; {}. Set the refresh_token a person obtained most recently and reload every replica)",
            records.spent.len(),
            is_in(&records.spent)
        );
    }
    format!(
        "grant: {name} (nothing stored yet, and no loss recorded: the first replica to start stores the configured refresh_token)"
    )
}

/// The token the fleet serves: generation, age and time left.
fn published_line(name: &str, published: Option<&Published>) -> String {
    let Some(p) = published else {
        return format!("published token: {name} (none published yet)");
    };
    let left = Duration::from_millis(p.left_ms.unsigned_abs());
    let lifetime_ms = i64::try_from(p.lifetime.as_millis()).unwrap_or(i64::MAX);
    let age = Duration::from_millis(lifetime_ms.saturating_sub(p.left_ms).max(0).unsigned_abs());
    let when = if p.left_ms >= 0 {
        format!("expires in {:.1}s", left.as_secs_f64())
    } else {
        format!("expired {:.1}s ago", left.as_secs_f64())
    };
    format!(
        "published token: {name}, generation {}, age {:.1}s of a {:.1}s lifetime, {when}",
        p.generation,
        age.as_secs_f64(),
        p.lifetime.as_secs_f64()
    )
}
