//! One grant, a fleet of countersigns sharing it through Redis: the lease
//! that lets one replica at a time renew (`lease`), and real processes
//! sharing a rotating refresh-token grant under load, through a killed
//! lease holder and a Redis restart (`processes`).

mod connections;
mod lease;
mod lost;
mod processes;
mod sentinel;
mod sentinel_silent;
mod sidecars;
mod store_errors;
mod token_cli;
