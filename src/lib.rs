//! countersign: a sidecar proxy that signs outbound HTTP requests on behalf
//! of an app that never holds the secrets. See README.md for the picture
//! and ARCHITECTURE.md for how the modules fit.
#![forbid(unsafe_code)]

pub mod app;
pub mod body;
mod causes;
pub mod cli;
pub mod config;
pub mod creds;
pub mod error;
mod files;
mod lenient;
mod listener;
#[cfg(test)]
mod log_capture;
pub mod paths;
pub mod proxy;
mod reload;
pub mod route;
mod serve;
pub mod snapshot;
pub mod upstream;

pub use app::{App, StartOptions};
pub mod admin;
mod drain;
pub mod egress;
pub mod metrics;
pub mod pki;
mod random;
