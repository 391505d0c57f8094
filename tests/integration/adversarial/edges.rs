//! Edges of the request path (issue 9): values that made a later step
//! panic (`config_bounds`), spool file modes (`spool_mode`), and answers
//! that blamed the wrong party (`connect_dns`).

mod config_bounds;
mod connect_dns;
mod spool_mode;
