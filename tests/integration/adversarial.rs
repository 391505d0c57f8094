//! The adversarial suite: each way countersign was once broken from outside
//! (issue 9), kept as a regression test through the real `App::start` on
//! port 0 or the compiled binary. Grouped by what the attacker reaches for.

mod bounds;
mod config_errors;
mod edges;
mod reload;
mod routing;
mod stalled_read;
