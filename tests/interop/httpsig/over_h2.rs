//! The same signatures over HTTP/2: `@authority`, `@scheme` and
//! `@target-uri` as an upstream that picked h2 by ALPN reads them (from
//! `:authority` and `:scheme`), checked by http-message-signatures.

use crate::integration::harness::*;

use super::{config, json, request, verify_at, ALL};

#[tokio::test]
#[ignore = "interop: needs python3 with http-message-signatures; run by .ci/run"]
async fn http_message_signatures_accepts_http_signature_received_over_h2() {
    let ca = TestCa::new();
    let upstream = Upstream::https_h2(&ca).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_ca(dir.path());
    let url = upstream.https_url();
    // Every route to the h2 upstream, trusting the test CA.
    let toml = config(&url, dir.path()).replace(
        &format!("upstream = \"{url}\"\n"),
        &format!(
            "upstream = \"{url}\"\nca_file = \"{}\"\n",
            ca_file.display()
        ),
    );
    let sidecar = Sidecar::start_in(dir, &toml).await;

    for (method, body) in [("POST", json(200 << 10)), ("GET", vec![])] {
        let answer = send(
            sidecar.proxy(),
            request(
                method,
                "http://ed25519.sig.test/v1/items%20a/b?b=2+x%7E*&a=1&sp+ace=%C3%A7%2F",
                body.clone(),
            ),
        )
        .await;
        assert_eq!(answer.status, 200, "{method}: {answer:?}");
        let got = upstream.last();
        assert_eq!(got.version, http::Version::HTTP_2);
        assert_eq!(got.body, body);
        // The URI an h2 server reads: :scheme, :authority, :path.
        let authority = got.uri.authority().unwrap().as_str();
        assert_eq!(got.header("host"), None, "only :authority on h2");
        let read_as = format!("https://{authority}{}", got.uri.path_and_query().unwrap());
        let verdict = verify_at(&got, &read_as, "ed25519", &ALL);
        assert_eq!(verdict["ok"], true, "{method}: {verdict}");
    }
}
