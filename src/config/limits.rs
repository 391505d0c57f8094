//! Global bounds on what apps can make countersign hold: connections, body
//! memory across all requests, time spent waiting for body bytes, HTTP/2
//! streams and buffers. Each default protects a small pod; each is a
//! `[proxy]` key.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Connections each listener serves at once; more wait in the accept
    /// queue. An intercepted tunnel is the connection that sent the CONNECT.
    pub max_connections: usize,
    /// Request body bytes held in memory across all requests; a body that
    /// would pass it goes to the spool directory instead.
    pub spool_memory_total: u64,
    /// Longest wait for the app's next body bytes.
    pub body_idle_timeout: Duration,
    /// Longest total wait for the app's body bytes in one request (time the
    /// upstream takes to accept them does not count).
    pub body_timeout: Duration,
    /// Concurrent streams on one HTTP/2 connection from the app.
    pub h2_max_streams: u32,
    /// HTTP/2 receive window, per stream and per connection: the body bytes
    /// an app can send on one connection before countersign reads them.
    pub h2_window: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 512,
            spool_memory_total: 32 << 20,
            body_idle_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(300),
            h2_max_streams: 100,
            h2_window: 256 << 10,
        }
    }
}
