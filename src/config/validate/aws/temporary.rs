//! `keys = "web-identity"` and `keys = "container"`: temporary keys an
//! aws-sigv4 credential obtains itself, their settings defaulting to the
//! variables EKS and ECS set, as AWS's SDKs read them.

use super::super::super::raw::RawAwsSigV4;
use super::super::super::{AwsKeys, ContainerEndpoint, ContainerToken, Secret, WebIdentity};
use super::super::Checker;

impl Checker<'_> {
    /// `keys = "web-identity"`: the role and token file default to the
    /// variables EKS sets for IRSA, the STS endpoint to the region's.
    pub(super) fn web_identity(
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

    /// Keys that belong to another `keys` source are refused by name.
    pub(super) fn foreign_keys(&mut self, path: &str, keys: &str, present: &[(&str, bool)]) {
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
    pub(super) fn env_var(&mut self, name: &str) -> Option<String> {
        self.secrets
            .resolve(&format!("${{env:{name}}}"))
            .ok()
            .map(|s| s.expose().to_string())
            .filter(|s| !s.is_empty())
    }

    /// `keys = "container"`: the URL and authorization token default to
    /// the variables ECS and EKS Pod Identity set, as AWS's SDKs read them.
    pub(super) fn container(&mut self, path: &str, raw: &mut RawAwsSigV4) -> Option<AwsKeys> {
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
                    .map(|t| ContainerToken::Value(Secret::new(t))),
            },
        };
        Some(AwsKeys::Container(ContainerEndpoint { url: url?, token }))
    }
}
