//! Edges of the request path (issue 9): values that made a later step
//! panic (`config_bounds`), a panic inside a request (`panic`), spool file
//! modes (`spool_mode`), an issued key echoed back to the app (`key_echo`),
//! answers that blamed the wrong party or came in the wrong order
//! (`connect_dns`, `client_body`), and pooled upstream connections the
//! upstream had just closed (`stale`, over the misbehaving `raw_upstream`).

mod client_body;
mod config_bounds;
mod connect_dns;
mod key_echo;
mod panic;
mod raw_upstream;
mod spool_mode;
mod stale;
