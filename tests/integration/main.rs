//! Integration tests: the real countersign (the same `App::start` that `main`
//! uses, or the compiled binary) against real HTTP and TLS upstreams on
//! 127.0.0.1:0 that record exactly what they received.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code: a panic is how a test reports a failure"
)]

mod handler_server;
mod harness;
mod trace_capture;

mod admin;
mod adversarial;
mod aws_sigv4;
mod binary;
mod bodies;
mod connect;
mod hmac_recipes;
mod http2_upstream;
mod httpsig;
mod issued_key;
mod jws_detached;
mod mtls;
mod oauth2;
mod paypay;
mod pool;
mod reload;
mod routing;
mod stacked;
