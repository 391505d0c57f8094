//! Rules for `type = "aws-sigv4"`.

use super::super::raw::{RawAwsSigV4, RawRegionSet};
use super::super::{
    AwsAlgorithm, AwsKeys, AwsPayload, AwsSigV4Config, CredentialConfig, StaticKeys,
};
use super::Checker;

mod temporary;
#[cfg(test)]
mod tests;

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
            Some("streaming") if s3 || service.is_none() => AwsPayload::Streaming,
            Some(p @ ("unsigned" | "streaming")) => {
                self.problem(
                    format!("{path}.payload"),
                    format!("\"{p}\" is accepted by S3 only; use \"signed\""),
                );
                AwsPayload::Signed
            }
            Some(_) => {
                self.problem(
                    format!("{path}.payload"),
                    "must be \"signed\", \"unsigned\" or \"streaming\"",
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
        let algorithm = self.aws_algorithm(path, &mut raw, region.as_deref(), payload)?;
        Some(CredentialConfig::AwsSigV4(Box::new(AwsSigV4Config {
            service: service?,
            region: region?,
            keys: keys?,
            payload,
            content_sha256,
            algorithm,
        })))
    }
}

/// A region of a SigV4A region set: a region name, or one with `*` for
/// any part (`*`, `us-*`).
fn region_pattern(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'*')
}

impl Checker<'_> {
    /// `algorithm` and SigV4A's `region_set` (by default the one `region`).
    fn aws_algorithm(
        &mut self,
        path: &str,
        raw: &mut RawAwsSigV4,
        region: Option<&str>,
        payload: AwsPayload,
    ) -> Option<AwsAlgorithm> {
        match raw.algorithm.as_deref() {
            None | Some("sigv4") => {
                if raw.region_set.is_some() {
                    self.problem(
                        format!("{path}.region_set"),
                        "is for algorithm = \"sigv4a\"; remove it, or set algorithm",
                    );
                }
                Some(AwsAlgorithm::SigV4)
            }
            Some("sigv4a") => {
                if payload == AwsPayload::Streaming {
                    self.problem(
                        format!("{path}.payload"),
                        "\"streaming\" is not offered with algorithm = \"sigv4a\"; use \"signed\" or \"unsigned\"",
                    );
                }
                let regions = match raw.region_set.take() {
                    None => vec![region?.to_string()],
                    Some(RawRegionSet::One(r)) => vec![r],
                    Some(RawRegionSet::Many(list)) => list,
                };
                if regions.is_empty() || !regions.iter().all(|r| region_pattern(r)) {
                    self.problem(
                        format!("{path}.region_set"),
                        "must be \"*\" or a list of regions (lowercase letters, digits, `-`, `*`), e.g. [\"us-east-1\", \"us-west-2\"]",
                    );
                    return None;
                }
                Some(AwsAlgorithm::SigV4A {
                    region_set: regions.join(","),
                })
            }
            Some(_) => {
                self.problem(
                    format!("{path}.algorithm"),
                    "must be \"sigv4\" or \"sigv4a\"",
                );
                None
            }
        }
    }

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
}
