//! One test per rule of `type = "http-signature"`.

use std::path::Path;

use super::super::super::{
    Component, CredentialConfig, DigestAlg, HttpSigAlgorithm, HttpSigConfig, HttpSigKey,
};
use super::super::validate;

fn check(keys: &str) -> Result<HttpSigConfig, String> {
    let toml = format!("[credential.sig]\ntype = \"http-signature\"\n{keys}\n");
    let dir = tempfile::tempdir().unwrap();
    match validate(&toml, dir.path()) {
        Ok(mut c) => match c.credentials.remove("sig") {
            Some(CredentialConfig::HttpSignature(h)) => Ok(*h),
            _ => panic!("an http-signature credential"),
        },
        Err(e) => Err(e.to_string()),
    }
}

fn key_file(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(name)
        .display()
        .to_string()
}

fn ed25519() -> String {
    format!(
        "algorithm = \"ed25519\"\nprivate_key_file = \"{}\"",
        key_file("tests/rfc9421/test-key-ed25519.pem")
    )
}

#[test]
fn defaults_created_on_alg_and_nonce_off_label_sig1() {
    let h = check(&format!("{}\ncomponents = [\"@method\"]", ed25519())).unwrap();
    assert_eq!(h.algorithm, HttpSigAlgorithm::Ed25519);
    assert!(matches!(h.key, HttpSigKey::Pkcs8(_)));
    assert_eq!(h.label, "sig1");
    assert!(h.created);
    assert!(!h.nonce && !h.alg_param);
    assert_eq!(h.expires, None);
    assert_eq!(h.keyid, None);
    assert_eq!(h.components, [Component::Method]);
    assert_eq!(h.content_digest, None);
}

#[test]
fn every_derived_component_and_lowercase_headers_are_accepted_in_order() {
    let h = check(&format!(
        "{}\ncomponents = [\"@request-target\", \"@method\", \"@target-uri\", \"@authority\", \"@scheme\", \"@path\", \"@query\", '@query-param;name=\"a%20b\"', \"x-request-id\", \"content-digest\"]\ncontent_digest = \"sha-512\"",
        ed25519()
    ))
    .unwrap();
    assert_eq!(
        h.components,
        [
            Component::RequestTarget,
            Component::Method,
            Component::TargetUri,
            Component::Authority,
            Component::Scheme,
            Component::Path,
            Component::Query,
            Component::QueryParam("a%20b".into()),
            Component::Header("x-request-id".into()),
            Component::Header("content-digest".into()),
        ]
    );
    assert_eq!(h.content_digest, Some(DigestAlg::Sha512));
}

#[test]
fn unknown_uppercase_repeated_parameterised_and_own_components_are_refused() {
    let e = check(&format!(
        "{}\ncomponents = [\"@status\", \"Date\", \"date\", \"date\", \"\\\"x\\\";sf\", \"signature\", \"bad header\", \"@query-param\", '@query-param;name=\"a&b\"']",
        ed25519()
    ))
    .unwrap_err();
    for want in [
        "credential.sig.components[0]: is not a derived component countersign signs",
        "credential.sig.components[1]: is not lowercase; RFC 9421 names header components in lowercase",
        "credential.sig.components[3]: is listed twice",
        "credential.sig.components[4]: has component parameters",
        "credential.sig.components[5]: names a header countersign writes with the signature",
        "credential.sig.components[6]: is not a header name",
        "credential.sig.components[7]: is not a query parameter component; write one as '@query-param;name=\"Pet\"'",
        "credential.sig.components[8]: is not a query parameter component",
    ] {
        assert!(e.contains(want), "{want}\n{e}");
    }
    // The refused names are never quoted back: the index says which.
    for name in ["@status", "Date", "\"x\";sf", "bad header", "a&b"] {
        assert!(!e.contains(name), "{name} quoted in {e}");
    }
    let e = check(&ed25519()).unwrap_err();
    assert!(e.contains("credential.sig.components: missing"), "{e}");
}

#[test]
fn content_digest_must_go_with_covering_it() {
    let e = check(&format!("{}\ncomponents = [\"content-digest\"]", ed25519())).unwrap_err();
    assert!(
        e.contains("credential.sig.content_digest: missing: `components` covers content-digest"),
        "{e}"
    );
    let e = check(&format!(
        "{}\ncomponents = [\"@method\"]\ncontent_digest = \"sha-256\"",
        ed25519()
    ))
    .unwrap_err();
    assert!(
        e.contains("credential.sig.content_digest: is set but `components` does not cover"),
        "{e}"
    );
    let e = check(&format!(
        "{}\ncomponents = [\"content-digest\"]\ncontent_digest = \"md5\"",
        ed25519()
    ))
    .unwrap_err();
    assert!(
        e.contains("credential.sig.content_digest: must be \"sha-256\" or \"sha-512\""),
        "{e}"
    );
}

#[test]
fn algorithm_is_required_and_known() {
    let e = check("components = []").unwrap_err();
    assert!(
        e.contains("credential.sig.algorithm: missing; use \"hmac-sha256\""),
        "{e}"
    );
    let e = check("algorithm = \"rsa-pss-sha256\"\ncomponents = []").unwrap_err();
    assert!(
        e.contains("credential.sig.algorithm: is not supported"),
        "{e}"
    );
}

#[test]
fn a_key_that_does_not_suit_the_algorithm_is_refused_naming_the_key() {
    let ec = key_file("tests/rfc9421/test-key-ecc-p256.pem");
    let pss = key_file("tests/rfc9421/test-key-rsa-pss.pem");
    let cases = [
        (
            "ed25519",
            ec.clone(),
            "is not an Ed25519 key usable for ed25519",
        ),
        (
            "ecdsa-p256-sha256",
            key_file("tests/rfc9421/test-key-ed25519.pem"),
            "is not a P-256 EC key usable for ecdsa-p256-sha256",
        ),
        (
            "rsa-pss-sha512",
            ec,
            "is not an RSA key usable for rsa-pss-sha512",
        ),
        (
            "rsa-v1_5-sha256",
            pss.clone(),
            "is an RSASSA-PSS-only key; it cannot sign rsa-v1_5-sha256",
        ),
    ];
    for (alg, file, want) in cases {
        let e = check(&format!(
            "algorithm = \"{alg}\"\nprivate_key_file = \"{file}\"\ncomponents = []"
        ))
        .unwrap_err();
        assert!(
            e.contains(&format!("credential.sig.private_key_file: {want}")),
            "{alg}: {e}"
        );
    }
    // The RFC's RSASSA-PSS-only key is read for rsa-pss-sha512.
    let h = check(&format!(
        "algorithm = \"rsa-pss-sha512\"\nprivate_key_file = \"{pss}\"\ncomponents = []"
    ))
    .unwrap();
    assert!(matches!(h.key, HttpSigKey::RsaPkcs1(_)));
    let e = check("algorithm = \"ed25519\"\ncomponents = []").unwrap_err();
    assert!(
        e.contains(
            "credential.sig.private_key_file: missing; ed25519 needs a PKCS#8 PEM private key file"
        ),
        "{e}"
    );
    let e = check("algorithm = \"ed25519\"\nprivate_key_file = \"nope.pem\"\ncomponents = []")
        .unwrap_err();
    assert!(
        e.contains("credential.sig.private_key_file: cannot read the key file"),
        "{e}"
    );
}

#[test]
fn hmac_takes_a_secret_in_an_encoding_never_echoed() {
    let h = check("algorithm = \"hmac-sha256\"\nsecret = \"shared\"\ncomponents = []").unwrap();
    assert!(matches!(h.key, HttpSigKey::Hmac(_)));
    let h = check(
        "algorithm = \"hmac-sha256\"\nsecret = \"00ff\"\nsecret_encoding = \"hex\"\ncomponents = []",
    )
    .unwrap();
    assert_eq!(
        h.key,
        HttpSigKey::Hmac(crate::config::SecretBytes::new(vec![0, 255]))
    );
    let e = check(
        "algorithm = \"hmac-sha256\"\nsecret = \"not base64 s3cr3t!\"\nsecret_encoding = \"base64\"\ncomponents = []",
    )
    .unwrap_err();
    assert!(
        e.contains("credential.sig.secret: is not valid base64 (secret_encoding)"),
        "{e}"
    );
    assert!(!e.contains("s3cr3t"), "the secret is echoed: {e}");
    let e = check("algorithm = \"hmac-sha256\"\ncomponents = []").unwrap_err();
    assert!(
        e.contains("credential.sig.secret: missing; hmac-sha256 needs the shared secret"),
        "{e}"
    );
    let e = check(&format!(
        "{}\nsecret = \"s3cr3t\"\ncomponents = []",
        ed25519()
    ))
    .unwrap_err();
    assert!(
        e.contains("credential.sig.secret: is for hmac-sha256; ed25519 takes `private_key_file`"),
        "{e}"
    );
    assert!(!e.contains("s3cr3t"), "the secret is echoed: {e}");
}

#[test]
fn label_keyid_tag_and_expires_are_checked() {
    let e = check(&format!(
        "{}\ncomponents = []\nlabel = \"Sig 1\"\nkeyid = \"caf\u{e9}\"\ntag = \"\"\nexpires = \"soon\"",
        ed25519()
    ))
    .unwrap_err();
    for want in [
        "credential.sig.label: must start with a lowercase letter",
        "credential.sig.keyid: must be printable ASCII",
        "credential.sig.tag: must be printable ASCII and not empty",
        "credential.sig.expires:",
    ] {
        assert!(e.contains(want), "{want}\n{e}");
    }
    let e = check(&format!(
        "{}\ncomponents = []\ncreated = false\nexpires = \"5m\"",
        ed25519()
    ))
    .unwrap_err();
    assert!(
        e.contains("credential.sig.expires: is a duration after `created`, which is turned off"),
        "{e}"
    );
    let h = check(&format!(
        "{}\ncomponents = []\nexpires = \"90s\"\nkeyid = \"k-1\"\ntag = \"app\"\nnonce = true\nalg = true\nlabel = \"my-sig.1\"",
        ed25519()
    ))
    .unwrap();
    assert_eq!(h.expires, Some(std::time::Duration::from_secs(90)));
    assert_eq!(h.keyid.as_deref(), Some("k-1"));
    assert_eq!(h.tag.as_deref(), Some("app"));
    assert!(h.nonce && h.alg_param);
    assert_eq!(h.label, "my-sig.1");
}
