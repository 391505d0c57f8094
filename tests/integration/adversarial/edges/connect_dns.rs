//! A CONNECT whose name does not resolve is unreachable (502), as for any
//! upstream, not refused (403): nothing refused it.

use crate::harness::*;

#[tokio::test]
async fn a_connect_to_a_name_that_does_not_resolve_is_unreachable_not_refused() {
    let sidecar = Sidecar::start(
        "[proxy]\nlisten = \"127.0.0.1:0\"\n[connect]\ntunnel = [\"nowhere.invalid\"]\n",
    )
    .await;
    let refused = connect_tunnel(sidecar.proxy(), "nowhere.invalid:443")
        .await
        .unwrap_err();
    assert!(refused.starts_with("HTTP/1.1 502"), "{refused}");
    assert!(
        refused.contains("x-countersign-error: upstream-unreachable"),
        "{refused}"
    );
}
