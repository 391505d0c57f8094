//! Edges of the request path (issue 9): values that made a later step
//! panic (`config_bounds`), a panic inside a request (`panic`), spool file
//! modes (`spool_mode`), and answers that blamed the wrong party
//! (`connect_dns`, `client_body`).

mod client_body;
mod config_bounds;
mod connect_dns;
mod panic;
mod spool_mode;
