//! The spool file a signed body waits in is owner-only, whatever the
//! umask.

use std::os::unix::fs::PermissionsExt as _;

use bytes::Bytes;

use crate::harness::*;

/// The spool file holds a body the app may have signed with secrets in
/// it: owner-only, whatever the umask.
#[tokio::test]
async fn spool_files_are_owner_only() {
    let upstream = Upstream::http().await;
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    let sidecar = Sidecar::start_in(
        dir,
        &format!(
            r#"
[proxy]
listen = "127.0.0.1:0"
spool_dir = "spool"
spool_memory = 16

[credential.paypay]
type = "paypay-opa"
api_key = "key"
api_secret = "secret"

[[route]]
name = "paypay"
hosts = ["api.paypay.test"]
upstream = "{}"
credential = "paypay"
"#,
            upstream.http_url()
        ),
    )
    .await;
    let (tx, body) = channel_body();
    let req = http::Request::post("http://api.paypay.test/v2/codes")
        .header("content-type", "application/json")
        .body(body)
        .unwrap();
    let proxy = sidecar.proxy();
    let sent = tokio::spawn(async move { send(proxy, req).await });
    tx.send(Ok(Bytes::from(vec![b' '; 64]))).await.unwrap();
    // The body is past spool_memory and not finished: it waits on disk.
    eventually("a spool file is open", || open_files_in(&spool) == 1).await;
    let modes: Vec<u32> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| {
            let path = e.ok()?.path();
            let target = std::fs::read_link(&path).ok()?;
            target.starts_with(&spool).then_some(())?;
            Some(std::fs::metadata(&path).ok()?.permissions().mode() & 0o777)
        })
        .collect();
    assert_eq!(modes, [0o600], "spool file modes");
    tx.send(Ok(Bytes::from_static(b"{}"))).await.unwrap();
    drop(tx);
    let answer = sent.await.unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
}
