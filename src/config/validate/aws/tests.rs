//! One test per rule of `type = "aws-sigv4"`.

use super::super::super::{AwsAlgorithm, AwsKeys, AwsPayload, CredentialConfig};
use super::super::validate;

fn check(keys: &str) -> Result<CredentialConfig, String> {
    let toml = format!("[credential.aws]\ntype = \"aws-sigv4\"\n{keys}\n");
    let dir = tempfile::tempdir().unwrap();
    validate(&toml, dir.path())
        .map(|mut c| c.credentials.remove("aws").unwrap())
        .map_err(|e| e.to_string())
}

const KEYS: &str = "access_key_id = \"AKIDEXAMPLE\"\nsecret_access_key = \"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\"";

#[test]
fn s3_defaults_to_a_signed_payload_with_its_hash_header() {
    let Ok(CredentialConfig::AwsSigV4(a)) =
        check(&format!("service = \"s3\"\nregion = \"us-east-1\"\n{KEYS}"))
    else {
        panic!("aws-sigv4")
    };
    assert_eq!(a.payload, AwsPayload::Signed);
    assert!(a.content_sha256);
    let AwsKeys::Static(keys) = &a.keys else {
        panic!("static keys")
    };
    assert!(keys.session_token.is_none());
    let Ok(CredentialConfig::AwsSigV4(a)) = check(&format!(
        "service = \"execute-api\"\nregion = \"eu-west-1\"\nsession_token = \"tok\"\n{KEYS}"
    )) else {
        panic!("aws-sigv4")
    };
    assert!(!a.content_sha256);
    let AwsKeys::Static(keys) = &a.keys else {
        panic!("static keys")
    };
    assert_eq!(keys.session_token.as_ref().unwrap().expose(), "tok");
}

#[test]
fn temporary_key_sources_take_only_their_own_keys() {
    let base = "service = \"s3\"\nregion = \"us-east-1\"\n";
    let Ok(CredentialConfig::AwsSigV4(a)) = check(&format!(
        "{base}keys = \"web-identity\"\nrole_arn = \"arn:aws:iam::1:role/r\"\nweb_identity_token_file = \"/var/run/token\""
    )) else {
        panic!("web identity")
    };
    let AwsKeys::WebIdentity(w) = &a.keys else {
        panic!("web identity keys")
    };
    assert_eq!(
        w.sts_url.to_string(),
        "https://sts.us-east-1.amazonaws.com/"
    );
    assert_eq!(w.session_name, "countersign");
    let Ok(CredentialConfig::AwsSigV4(a)) = check(&format!(
        "{base}keys = \"container\"\ncontainer_url = \"http://169.254.170.23/v1/credentials\"\ncontainer_token_file = \"/var/run/pod-identity/token\""
    )) else {
        panic!("container")
    };
    assert!(matches!(&a.keys, AwsKeys::Container(c) if c.token.is_some()));
    let e = check(&format!(
        "{base}keys = \"web-identity\"\nrole_arn = \"nope\"\nweb_identity_token_file = \"/t\"\naccess_key_id = \"AKID\"\ncontainer_url = \"http://x\""
    ))
    .unwrap_err();
    for needle in [
        "credential.aws.role_arn: is not an ARN",
        "credential.aws.access_key_id: is for keys = \"static\"",
        "credential.aws.container_url: does not go with keys = \"web-identity\"",
    ] {
        assert!(e.contains(needle), "{needle}: {e}");
    }
    let e = check(&format!("{base}keys = \"imds\"")).unwrap_err();
    assert!(e.contains("credential.aws.keys: must be"), "{e}");
}

#[test]
fn bad_keys_are_named_and_secrets_never_quoted() {
    let e =
        check("service = \"S3\"\nsecret_access_key = \"sekrit/value\"\naccess_key_id = \"AK/ID\"")
            .unwrap_err();
    for path in [
        "credential.aws.service: must be lowercase",
        "credential.aws.region: missing",
        "credential.aws.access_key_id: must be letters and digits",
    ] {
        assert!(e.contains(path), "{path}: {e}");
    }
    assert!(!e.contains("sekrit") && !e.contains("AK/ID"), "{e}");
    let e = check(&format!(
        "service = \"sqs\"\nregion = \"us-east-1\"\npayload = \"unsigned\"\n{KEYS}"
    ))
    .unwrap_err();
    assert!(
        e.contains("credential.aws.payload: \"unsigned\" is accepted by S3 only"),
        "{e}"
    );
    let e = check(&format!(
        "service = \"s3\"\nregion = \"us-east-1\"\ncontent_sha256 = false\n{KEYS}"
    ))
    .unwrap_err();
    assert!(
        e.contains("credential.aws.content_sha256: S3 requires"),
        "{e}"
    );
    let e = check(&format!(
        "service = \"s3\"\nregion = \"us-east-1\"\nbucket = \"b\"\n{KEYS}"
    ))
    .unwrap_err();
    assert!(e.contains("bucket"), "{e}");
}

fn algorithm(keys: &str) -> Result<AwsAlgorithm, String> {
    match check(&format!(
        "service = \"s3\"\nregion = \"us-east-1\"\n{KEYS}\n{keys}"
    ))? {
        CredentialConfig::AwsSigV4(a) => Ok(a.algorithm),
        _ => panic!("aws-sigv4"),
    }
}

#[test]
fn sigv4a_takes_a_region_set_or_defaults_to_the_region() {
    assert_eq!(algorithm(""), Ok(AwsAlgorithm::SigV4));
    let set = |s: &str| {
        Ok(AwsAlgorithm::SigV4A {
            region_set: s.to_string(),
        })
    };
    assert_eq!(algorithm("algorithm = \"sigv4a\""), set("us-east-1"));
    assert_eq!(
        algorithm("algorithm = \"sigv4a\"\nregion_set = \"*\""),
        set("*")
    );
    assert_eq!(
        algorithm("algorithm = \"sigv4a\"\nregion_set = [\"us-east-1\", \"eu-*\"]"),
        set("us-east-1,eu-*")
    );
    assert_eq!(
        algorithm("algorithm = \"sigv4a\"\npayload = \"unsigned\""),
        set("us-east-1")
    );
}

#[test]
fn sigv4a_refuses_what_it_cannot_sign() {
    let err = |keys: &str| algorithm(keys).unwrap_err();
    let e = err("region_set = \"*\"");
    assert!(
        e.contains("credential.aws.region_set") && e.contains("sigv4a"),
        "{e}"
    );
    let e = err("algorithm = \"sigv4b\"");
    assert!(e.contains("credential.aws.algorithm"), "{e}");
    let e = err("algorithm = \"sigv4a\"\npayload = \"streaming\"");
    assert!(
        e.contains("credential.aws.payload") && e.contains("sigv4a"),
        "{e}"
    );
    for bad in ["[]", "[\"US-EAST-1\"]", "\"us-east-1,us-west-2\"", "[\"\"]"] {
        let e = err(&format!("algorithm = \"sigv4a\"\nregion_set = {bad}"));
        assert!(e.contains("credential.aws.region_set"), "{bad}: {e}");
    }
}
