//! Edges of the request path (issue 9): values that made a later step
//! panic (`config_bounds`).

mod config_bounds;
