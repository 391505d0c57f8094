//! A sidecar that intercepts HTTPS_PROXY tunnels to `api.example.test`.

use super::{Sidecar, TestCa, Upstream};

/// A sidecar with an interception CA (made by the same code as `ca init`),
/// routing `api.example.test` to `upstream` with a bearer credential; also
/// returns the CA the app must trust. `extra` follows the route (more of
/// its keys, or more sections).
pub async fn intercepting(
    upstream: &Upstream,
    upstream_ca: &TestCa,
    extra: &str,
) -> (Sidecar, String) {
    intercepting_with(upstream, upstream_ca, "", extra).await
}

/// Like `intercepting`, with `proxy` added to the `[proxy]` section.
pub async fn intercepting_with(
    upstream: &Upstream,
    upstream_ca: &TestCa,
    proxy: &str,
    extra: &str,
) -> (Sidecar, String) {
    let dir = tempfile::tempdir().unwrap();
    countersign::pki::ca::init(&dir.path().join("ca")).unwrap();
    let app_ca = std::fs::read_to_string(dir.path().join("ca/ca.pem")).unwrap();
    let upstream_ca_file = upstream_ca.write_ca(dir.path());
    let toml = format!(
        r#"
[proxy]
listen = "127.0.0.1:0"
client_header_timeout = "2s"
{proxy}

[intercept]
ca_cert = "ca/ca.pem"
ca_key = "ca/ca-key.pem"

[credential.api]
type = "header"
bearer = "intercepted-token"

[[route]]
name = "api"
hosts = ["api.example.test"]
upstream = "{}"
ca_file = "{}"
credential = "api"
{extra}
"#,
        upstream.https_url(),
        upstream_ca_file.display()
    );
    (Sidecar::start_in(dir, &toml).await, app_ca)
}
