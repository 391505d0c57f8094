//! One test per rule of `type = "jws-detached"`.

use super::super::super::{CredentialConfig, IdempotencyKey, SigningAlg};
use super::super::validate;

const RSA: &str = include_str!("../../../../tests/integration/oauth2/test-rsa-key.pem");
const EC: &str = include_str!("../../../../tests/integration/oauth2/test-ec-key.pem");

/// Validates a jws-detached credential with `keys`, beside `rsa.pem`,
/// `ec.pem` and a `kid` file.
fn check(keys: &str) -> Result<CredentialConfig, String> {
    let toml = format!("[credential.ob]\ntype = \"jws-detached\"\n{keys}\n");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rsa.pem"), RSA).unwrap();
    std::fs::write(dir.path().join("ec.pem"), EC).unwrap();
    std::fs::write(dir.path().join("kid"), "kid-from-a-file\n").unwrap();
    validate(&toml, dir.path())
        .map(|mut c| c.credentials.remove("ob").unwrap())
        .map_err(|e| e.to_string())
}

const BASE: &str =
    "version = \"3.1.10\"\nprivate_key_file = \"rsa.pem\"\nkid = \"k1\"\nissuer = \"org/ssa\"";

#[test]
fn defaults_are_ps256_the_ob_directory_and_a_4_mib_bound() {
    let Ok(CredentialConfig::JwsDetached(j)) = check(BASE) else {
        panic!("jws-detached")
    };
    assert_eq!(j.alg, SigningAlg::Ps256);
    assert_eq!(j.trust_anchor, "openbanking.org.uk");
    assert_eq!(j.max_body, 4 << 20);
    assert!(!j.typ && !j.interaction_id);
    assert_eq!(j.idempotency_key, IdempotencyKey::Optional);
    assert!(!j.version.unencoded_payload());
    assert_eq!((j.kid.as_str(), j.issuer.as_str()), ("k1", "org/ssa"));
}

#[test]
fn every_key_is_read_and_the_kid_may_come_from_a_file() {
    let Ok(CredentialConfig::JwsDetached(j)) = check(
        "version = \"v3.1.3\"\nalgorithm = \"ES256\"\nprivate_key_file = \"ec.pem\"\nkid = \"${file:kid}\"\nissuer = \"org/ssa\"\ntrust_anchor = \"openbanking.org.uk.sandbox\"\ntyp = \"JOSE\"\nmax_body = \"512KiB\"\ninteraction_id = true\nidempotency_key = \"required\"",
    ) else {
        panic!("jws-detached")
    };
    assert_eq!(j.alg, SigningAlg::Es256);
    assert_eq!(j.kid, "kid-from-a-file", "trimmed");
    assert!(j.version.unencoded_payload());
    assert_eq!(j.trust_anchor, "openbanking.org.uk.sandbox");
    assert!(j.typ && j.interaction_id);
    assert_eq!(j.max_body, 512 << 10);
    assert_eq!(j.idempotency_key, IdempotencyKey::Required);
}

#[test]
fn missing_keys_are_named() {
    let e = check("").unwrap_err();
    for key in ["version", "private_key_file", "kid", "issuer"] {
        assert!(
            e.contains(&format!("credential.ob.{key}: missing")),
            "{key}: {e}"
        );
    }
}

#[test]
fn a_key_that_does_not_fit_the_algorithm_is_refused() {
    let e = check(&BASE.replace("rsa.pem", "ec.pem")).unwrap_err();
    assert!(
        e.contains("credential.ob.private_key_file: is not an RSA key usable for PS256"),
        "{e}"
    );
    let e = check(&format!("{}\nalgorithm = \"ES256\"", BASE)).unwrap_err();
    assert!(
        e.contains("credential.ob.private_key_file: is not a P-256 EC key usable for ES256"),
        "{e}"
    );
    let e = check(&BASE.replace("rsa.pem", "nope.pem")).unwrap_err();
    assert!(
        e.contains("credential.ob.private_key_file: cannot read the key file"),
        "{e}"
    );
}

#[test]
fn unknown_versions_algorithms_and_values_are_refused() {
    let cases = [
        (
            "version = \"3.1.10\"",
            "version = \"3.0\"",
            "credential.ob.version: is not a UK open banking",
        ),
        (
            "version = \"3.1.10\"",
            "version = \"9.9\"",
            "credential.ob.version: is not a UK open banking",
        ),
        (
            "",
            "algorithm = \"RS256\"",
            "credential.ob.algorithm: must be \"PS256\"",
        ),
        ("", "typ = \"JWT\"", "credential.ob.typ: must be \"JOSE\""),
        (
            "",
            "max_body = \"65MiB\"",
            "credential.ob.max_body: must be between 1 byte and 64MiB",
        ),
        (
            "",
            "max_body = 0",
            "credential.ob.max_body: must be between",
        ),
        (
            "",
            "idempotency_key = \"yes\"",
            "credential.ob.idempotency_key: must be \"required\"",
        ),
        (
            "issuer = \"org/ssa\"",
            "issuer = \"a\\nb\"",
            "credential.ob.issuer: must be one line",
        ),
        (
            "kid = \"k1\"",
            "kid = \"  \"",
            "credential.ob.kid: must be one line",
        ),
        ("", "header = \"x\"", "credential.ob"),
    ];
    for (from, to, want) in cases {
        let keys = if from.is_empty() {
            format!("{BASE}\n{to}")
        } else {
            BASE.replace(from, to)
        };
        let e = check(&keys).unwrap_err();
        assert!(e.contains(want), "{to}: {e}");
        assert!(!e.contains("9.9"), "the version is quoted: {e}");
    }
}

/// A secret typed into `kid` by mistake never shows in an error.
#[test]
fn errors_never_echo_a_value() {
    let e = check(&BASE.replace("kid = \"k1\"", "kid = \"s3cr3t\\u0007\"")).unwrap_err();
    assert!(!e.contains("s3cr3t"), "{e}");
}

/// UK OB's stack: a bearer token and the signature on one route. Two
/// signatures would write the same header, and so would a static
/// `x-fapi-interaction-id` beside a generated one.
#[test]
fn stacks_with_a_bearer_but_not_with_a_second_writer_of_its_headers() {
    let route = |creds: &str| {
        format!(
            "[credential.ob]\ntype = \"jws-detached\"\n{BASE}\ninteraction_id = true\n\n[credential.ob2]\ntype = \"jws-detached\"\n{BASE}\n\n[credential.bearer]\ntype = \"header\"\nbearer = \"t\"\n\n[credential.fapi]\ntype = \"header\"\nheaders = {{ \"x-fapi-interaction-id\" = \"fixed\" }}\n\n[[route]]\nname = \"r\"\nhosts = [\"ob.bank.test\"]\nupstream = \"https://ob.bank.test\"\ncredential = {creds}\n"
        )
    };
    let run = |toml: String| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("rsa.pem"), RSA).unwrap();
        validate(&toml, dir.path())
            .map(|c| c.routes[0].credential.clone())
            .map_err(|e| e.to_string())
    };
    assert_eq!(
        run(route("[\"bearer\", \"ob\"]")).unwrap(),
        ["bearer", "ob"]
    );
    let e = run(route("[\"ob\", \"ob2\"]")).unwrap_err();
    assert!(
        e.contains("`ob` and `ob2` both write the header `x-jws-signature`"),
        "{e}"
    );
    let e = run(route("[\"fapi\", \"ob\"]")).unwrap_err();
    assert!(
        e.contains("`fapi` and `ob` both write the header `x-fapi-interaction-id`"),
        "{e}"
    );
}

/// The kept body takes from `spool_memory_total` and cannot go to disk: a
/// bound the budget can never hold is refused, naming both keys.
#[test]
fn the_memory_budget_must_hold_one_body_at_its_bound() {
    let proxy = |keys: &str| {
        format!("[proxy]\n{keys}\n\n[credential.ob]\ntype = \"jws-detached\"\n{BASE}\n")
    };
    let run = |toml: String| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("rsa.pem"), RSA).unwrap();
        validate(&toml, dir.path()).map_err(|e| e.to_string())
    };
    let e = run(proxy("spool_memory_total = \"1MiB\"")).unwrap_err();
    assert!(
        e.contains("credential.ob.max_body")
            && e.contains("up to 4194304 bytes")
            && e.contains("proxy.spool_memory_total (1048576 bytes)"),
        "{e}"
    );
    // The global max_body is the bound when it is smaller.
    run(proxy("spool_memory_total = \"1MiB\"\nmax_body = \"1MiB\"")).unwrap();
    run(proxy("spool_memory_total = \"4MiB\"")).unwrap();
}
