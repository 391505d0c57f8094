//! The life of a credential's token, whatever issues it (an OAuth2 token
//! endpoint, an issuer of short-lived keys): fetched by one background task,
//! renewed ahead of expiry, retried with backoff, renewed at once when a 401
//! discards it, and kept across reloads while the credential is unchanged.
//!
//! ```text
//! kind (oauth2, issued) -- TokenSource: fetch, flush, noun --> TokenManager
//!                       -- fingerprint + start -------------> TokenRegistry
//!                       -- TokenStore: load, save, delete --> durable state
//! ```
//!
//! This module names no kind of credential: each kind implements
//! `TokenSource` and hands the registry its own fingerprint and start.

mod backoff;
mod lifecycle;
mod registry;
mod shared;
mod source;
pub mod store;

pub use lifecycle::{TokenManager, TokenStats, Unavailable, FORCED_RENEWAL_GAP};
pub use registry::{Fingerprint, Renewing, Stopped, TokenRegistry};
pub use shared::Fleet;
pub use source::{Fetch, Flush, NewToken, SourceError, TokenSource};
pub use store::{StoreError, StoredGrant, TokenStore};
