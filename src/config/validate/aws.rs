//! Rules for `type = "aws-sigv4"`.

use super::super::raw::RawAwsSigV4;
use super::super::{AwsPayload, AwsSigV4Config, CredentialConfig};
use super::Checker;

/// Services signed the S3 way (see creds/sigv4.rs).
fn is_s3(service: &str) -> bool {
    matches!(service, "s3" | "s3-outposts")
}

/// A service or region name: lowercase letters, digits and `-`, as in
/// `s3`, `execute-api`, `us-east-1`. They go into the credential scope.
fn scope_part(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl Checker<'_> {
    pub(super) fn aws_sigv4(&mut self, path: &str, raw: RawAwsSigV4) -> Option<CredentialConfig> {
        let part = |this: &mut Self, key: &str, value: Option<String>, example: &str| match value {
            Some(v) if scope_part(&v) => Some(v),
            Some(_) => {
                this.problem(
                    format!("{path}.{key}"),
                    format!("must be lowercase letters, digits and `-`, e.g. \"{example}\""),
                );
                None
            }
            None => {
                this.problem(
                    format!("{path}.{key}"),
                    format!("missing; e.g. \"{example}\""),
                );
                None
            }
        };
        let service = part(self, "service", raw.service, "s3");
        let region = part(self, "region", raw.region, "us-east-1");
        let secret = |this: &mut Self, key: &str, value: Option<String>| match value {
            Some(v) => this.secret(&format!("{path}.{key}"), &v),
            None => {
                this.problem(
                    format!("{path}.{key}"),
                    "missing; e.g. \"${env:AWS_ACCESS_KEY_ID}\"",
                );
                None
            }
        };
        let access_key_id = secret(self, "access_key_id", raw.access_key_id);
        let secret_access_key = secret(self, "secret_access_key", raw.secret_access_key);
        let session_token = raw
            .session_token
            .and_then(|t| self.secret(&format!("{path}.session_token"), &t));
        if let Some(id) = &access_key_id {
            let id = id.expose();
            if !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                self.problem(
                    format!("{path}.access_key_id"),
                    "must be letters and digits only (it is sent in the Authorization header)",
                );
            }
        }
        if let Some(t) = &session_token {
            if http::HeaderValue::from_str(t.expose()).is_err() {
                self.problem(
                    format!("{path}.session_token"),
                    "is not a valid header value",
                );
            }
        }
        let s3 = service.as_deref().is_some_and(is_s3);
        let payload = match raw.payload.as_deref() {
            None | Some("signed") => AwsPayload::Signed,
            Some("unsigned") if s3 || service.is_none() => AwsPayload::Unsigned,
            Some("unsigned") => {
                self.problem(
                    format!("{path}.payload"),
                    "\"unsigned\" (UNSIGNED-PAYLOAD) is accepted by S3 only; use \"signed\"",
                );
                AwsPayload::Signed
            }
            Some(_) => {
                self.problem(
                    format!("{path}.payload"),
                    "must be \"signed\" or \"unsigned\"",
                );
                AwsPayload::Signed
            }
        };
        let content_sha256 = match raw.content_sha256 {
            None => s3,
            Some(false) if s3 => {
                self.problem(
                    format!("{path}.content_sha256"),
                    "S3 requires x-amz-content-sha256; remove the key or set it to true",
                );
                true
            }
            Some(v) => v,
        };
        Some(CredentialConfig::AwsSigV4(Box::new(AwsSigV4Config {
            service: service?,
            region: region?,
            access_key_id: access_key_id?,
            secret_access_key: secret_access_key?,
            session_token,
            payload,
            content_sha256,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::{AwsPayload, CredentialConfig};
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
        assert!(a.session_token.is_none());
        let Ok(CredentialConfig::AwsSigV4(a)) = check(&format!(
            "service = \"execute-api\"\nregion = \"eu-west-1\"\nsession_token = \"tok\"\n{KEYS}"
        )) else {
            panic!("aws-sigv4")
        };
        assert!(!a.content_sha256);
        assert_eq!(a.session_token.unwrap().expose(), "tok");
    }

    #[test]
    fn bad_keys_are_named_and_secrets_never_quoted() {
        let e = check(
            "service = \"S3\"\nsecret_access_key = \"sekrit/value\"\naccess_key_id = \"AK/ID\"",
        )
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
            e.contains(
                "credential.aws.payload: \"unsigned\" (UNSIGNED-PAYLOAD) is accepted by S3 only"
            ),
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
}
