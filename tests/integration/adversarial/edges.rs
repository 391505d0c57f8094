//! Edges of the request path (issue 9): values that made a later step
//! panic (`config_bounds`), and spool file modes (`spool_mode`).

mod config_bounds;
mod spool_mode;
