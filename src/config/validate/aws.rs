//! Rules for `type = "aws-sigv4"`.

use super::super::raw::RawAwsSigV4;
use super::super::{
    AwsKeys, AwsPayload, AwsSigV4Config, ContainerEndpoint, ContainerToken, CredentialConfig,
    StaticKeys, WebIdentity,
};
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
    pub(super) fn aws_sigv4(
        &mut self,
        path: &str,
        mut raw: RawAwsSigV4,
    ) -> Option<CredentialConfig> {
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
        let service = part(self, "service", raw.service.take(), "s3");
        let region = part(self, "region", raw.region.take(), "us-east-1");
        if raw.keys.as_deref() != Some("container") {
            let keys = raw.keys.clone().unwrap_or_else(|| "static".into());
            self.foreign_keys(
                path,
                &keys,
                &[
                    ("container_url", raw.container_url.is_some()),
                    ("container_token_file", raw.container_token_file.is_some()),
                    ("container_token", raw.container_token.is_some()),
                ],
            );
        }
        let keys = match raw.keys.as_deref() {
            None | Some("static") => self.static_keys(path, &mut raw),
            Some("web-identity") => self.web_identity(path, &mut raw, region.as_deref()),
            Some("container") => self.container(path, &mut raw),
            Some(_) => {
                self.problem(
                    format!("{path}.keys"),
                    "must be \"static\", \"web-identity\" or \"container\"",
                );
                None
            }
        };
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
            keys: keys?,
            payload,
            content_sha256,
        })))
    }
}

impl Checker<'_> {
    fn static_keys(&mut self, path: &str, raw: &mut RawAwsSigV4) -> Option<AwsKeys> {
        for (key, set) in [
            ("role_arn", raw.role_arn.is_some()),
            (
                "web_identity_token_file",
                raw.web_identity_token_file.is_some(),
            ),
            ("sts_url", raw.sts_url.is_some()),
            ("role_session_name", raw.role_session_name.is_some()),
        ] {
            if set {
                self.problem(
                    format!("{path}.{key}"),
                    "is for keys = \"web-identity\"; remove it, or set keys",
                );
            }
        }
        let secret = |this: &mut Self, key: &str, value: Option<String>| match value {
            Some(v) => this.secret(&format!("{path}.{key}"), &v),
            None => {
                this.problem(
                    format!("{path}.{key}"),
                    "missing; e.g. \"${env:AWS_ACCESS_KEY_ID}\" (or keys = \"web-identity\")",
                );
                None
            }
        };
        let access_key_id = secret(self, "access_key_id", raw.access_key_id.take());
        let secret_access_key = secret(self, "secret_access_key", raw.secret_access_key.take());
        let session_token = raw
            .session_token
            .take()
            .and_then(|t| self.secret(&format!("{path}.session_token"), &t));
        if let Some(id) = &access_key_id {
            if !id.expose().bytes().all(|b| b.is_ascii_alphanumeric()) {
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
        Some(AwsKeys::Static(StaticKeys {
            access_key_id: access_key_id?,
            secret_access_key: secret_access_key?,
            session_token,
        }))
    }

    /// `keys = "web-identity"`: the role and token file default to the
    /// variables EKS sets for IRSA, the STS endpoint to the region's.
    fn web_identity(
        &mut self,
        path: &str,
        raw: &mut RawAwsSigV4,
        region: Option<&str>,
    ) -> Option<AwsKeys> {
        for (key, set) in [
            ("access_key_id", raw.access_key_id.is_some()),
            ("secret_access_key", raw.secret_access_key.is_some()),
            ("session_token", raw.session_token.is_some()),
        ] {
            if set {
                self.problem(
                    format!("{path}.{key}"),
                    "is for keys = \"static\"; web identity obtains the keys from STS",
                );
            }
        }
        let role_arn = raw
            .role_arn
            .take()
            .unwrap_or_else(|| "${env:AWS_ROLE_ARN}".into());
        let role_arn = self.secret(&format!("{path}.role_arn"), &role_arn);
        if let Some(arn) = &role_arn {
            if !arn.expose().starts_with("arn:") {
                self.problem(
                    format!("{path}.role_arn"),
                    "is not an ARN (arn:aws:iam::ACCOUNT:role/NAME)",
                );
            }
        }
        let file = raw
            .web_identity_token_file
            .take()
            .unwrap_or_else(|| "${env:AWS_WEB_IDENTITY_TOKEN_FILE}".into());
        let token_file = self.secret(&format!("{path}.web_identity_token_file"), &file);
        let default_sts = format!(
            "https://sts.{}.amazonaws.com/",
            region.unwrap_or("us-east-1")
        );
        let sts_url = raw.sts_url.take().unwrap_or(default_sts);
        let sts_url = self.endpoint_url(
            &format!("{path}.sts_url"),
            Some(&sts_url),
            "https://sts.us-east-1.amazonaws.com/",
            "the web identity token",
        );
        let session_name = raw
            .role_session_name
            .take()
            .unwrap_or_else(|| "countersign".into());
        let valid_name = (2..=64).contains(&session_name.len())
            && session_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"=,.@-_".contains(&b));
        if !valid_name {
            self.problem(
                format!("{path}.role_session_name"),
                "must be 2 to 64 letters, digits or =,.@-_",
            );
        }
        Some(AwsKeys::WebIdentity(WebIdentity {
            role_arn: role_arn?.expose().to_string(),
            token_file: std::path::PathBuf::from(token_file?.expose()),
            sts_url: sts_url?,
            session_name,
        }))
    }
}

impl Checker<'_> {
    /// Keys that belong to another `keys` source are refused by name.
    fn foreign_keys(&mut self, path: &str, keys: &str, present: &[(&str, bool)]) {
        for (key, set) in present {
            if *set {
                self.problem(
                    format!("{path}.{key}"),
                    format!("does not go with keys = \"{keys}\"; remove it"),
                );
            }
        }
    }

    /// An environment variable's value when it is set and not empty.
    fn env_var(&mut self, name: &str) -> Option<String> {
        self.secrets
            .resolve(&format!("${{env:{name}}}"))
            .ok()
            .map(|s| s.expose().to_string())
            .filter(|s| !s.is_empty())
    }

    /// `keys = "container"`: the URL and authorization token default to
    /// the variables ECS and EKS Pod Identity set, as AWS's SDKs read them.
    fn container(&mut self, path: &str, raw: &mut RawAwsSigV4) -> Option<AwsKeys> {
        self.foreign_keys(
            path,
            "container",
            &[
                ("access_key_id", raw.access_key_id.is_some()),
                ("secret_access_key", raw.secret_access_key.is_some()),
                ("session_token", raw.session_token.is_some()),
                ("role_arn", raw.role_arn.is_some()),
                (
                    "web_identity_token_file",
                    raw.web_identity_token_file.is_some(),
                ),
                ("sts_url", raw.sts_url.is_some()),
                ("role_session_name", raw.role_session_name.is_some()),
            ],
        );
        let url_path = format!("{path}.container_url");
        let url = match raw.container_url.take() {
            Some(text) => self
                .secret(&url_path, &text)
                .map(|s| s.expose().to_string()),
            None => match self.env_var("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
                Some(full) => Some(full),
                None => self
                    .env_var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
                    .map(|rel| format!("http://169.254.170.2{rel}")),
            },
        };
        let url = match url {
            Some(u) => self.endpoint_url(
                &url_path,
                Some(&u),
                "http://169.254.170.23/v1/credentials",
                "container_token",
            ),
            None => {
                self.problem(
                    &url_path,
                    "missing, and neither AWS_CONTAINER_CREDENTIALS_FULL_URI nor AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is set",
                );
                None
            }
        };
        let file = raw
            .container_token_file
            .take()
            .or_else(|| self.env_var("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"));
        let token = match file {
            Some(f) => self
                .secret(&format!("{path}.container_token_file"), &f)
                .map(|p| ContainerToken::File(std::path::PathBuf::from(p.expose()))),
            None => match raw.container_token.take() {
                Some(t) => self
                    .secret(&format!("{path}.container_token"), &t)
                    .map(ContainerToken::Value),
                None => self
                    .env_var("AWS_CONTAINER_AUTHORIZATION_TOKEN")
                    .map(|t| ContainerToken::Value(super::super::Secret::new(t))),
            },
        };
        Some(AwsKeys::Container(ContainerEndpoint { url: url?, token }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::{AwsKeys, AwsPayload, CredentialConfig};
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
