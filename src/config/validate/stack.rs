//! Routes that name several credentials (`credential = ["a", "b"]`): each
//! is applied in order, so two must not write the same header (the second
//! would silently replace the first: two bearer tokens, two signatures in
//! `Authorization`), `aws-sigv4`, which signs every header and the
//! query, must come last, and an `http-signature` must come after every
//! credential that writes a header it covers.

use std::collections::BTreeMap;

use super::super::{
    AwsAlgorithm, AwsPayload, Component, CredentialConfig, KeyPlacement, RouteConfig,
};
use super::Checker;

/// The headers (lowercase) and query parameters a credential writes.
fn writes(c: &CredentialConfig) -> (Vec<String>, Vec<String>) {
    let auth = || vec!["authorization".to_string()];
    match c {
        CredentialConfig::PayPayOpa { .. } => (auth(), vec![]),
        CredentialConfig::OAuth2(o) => match o.dpop {
            Some(_) => (vec!["authorization".into(), "dpop".into()], vec![]),
            None => (auth(), vec![]),
        },
        CredentialConfig::Header { headers } => (
            headers
                .iter()
                .map(|(n, _)| n.as_str().to_string())
                .collect(),
            vec![],
        ),
        CredentialConfig::IssuedKey(k) => match &k.placement {
            KeyPlacement::Header { name, .. } => (vec![name.as_str().to_string()], vec![]),
            KeyPlacement::Query { name } => (vec![], vec![name.clone()]),
        },
        CredentialConfig::AwsSigV4(a) => {
            let mut headers = [
                "authorization",
                "x-amz-date",
                "x-amz-security-token",
                "x-amz-content-sha256",
            ]
            .map(str::to_string)
            .to_vec();
            if matches!(a.algorithm, AwsAlgorithm::SigV4A { .. }) {
                headers.push("x-amz-region-set".into());
            }
            if a.payload == AwsPayload::Streaming {
                headers.push("x-amz-decoded-content-length".into());
            }
            (headers, vec![])
        }
        CredentialConfig::JwsDetached(j) => {
            let mut headers = vec!["x-jws-signature".to_string()];
            if j.interaction_id {
                headers.push("x-fapi-interaction-id".to_string());
            }
            (headers, vec![])
        }
        CredentialConfig::Hmac(h) => (
            h.headers
                .iter()
                .map(|(n, _)| n.as_str().to_string())
                .collect(),
            vec![],
        ),
        CredentialConfig::HttpSignature(h) => {
            let mut headers = vec!["signature".to_string(), "signature-input".to_string()];
            if h.content_digest.is_some() {
                headers.push("content-digest".into());
            }
            (headers, vec![])
        }
    }
}

/// The headers an http-signature credential covers (it writes
/// content-digest itself, before it signs).
fn covers(c: &CredentialConfig) -> Vec<&str> {
    match c {
        CredentialConfig::HttpSignature(h) => h
            .components
            .iter()
            .filter_map(|c| match c {
                Component::Header(name) if name != "content-digest" => Some(name.as_str()),
                _ => None,
            })
            .collect(),
        _ => vec![],
    }
}

impl Checker<'_> {
    pub(super) fn stacks(
        &mut self,
        routes: &[(usize, RouteConfig)],
        credentials: &BTreeMap<String, CredentialConfig>,
    ) {
        for (i, route) in routes {
            let path = format!("route[{i}].credential");
            let names = &route.credential;
            if names.len() < 2 {
                continue;
            }
            let mut owner: BTreeMap<String, &str> = BTreeMap::new();
            for (j, name) in names.iter().enumerate() {
                if names[..j].contains(name) {
                    self.problem(&path, format!("names `{name}` twice"));
                    continue;
                }
                let Some(config) = credentials.get(name) else {
                    continue;
                };
                if matches!(config, CredentialConfig::AwsSigV4(_)) && j + 1 < names.len() {
                    self.problem(
                        &path,
                        format!("`{name}` (aws-sigv4) signs every header and the query, so it must come last in the list"),
                    );
                }
                for later in &names[j + 1..] {
                    let Some(after) = credentials.get(later) else {
                        continue;
                    };
                    let written = writes(after).0;
                    for header in covers(config) {
                        if written.iter().any(|w| w == header) {
                            self.problem(
                                &path,
                                format!("`{name}` (http-signature) covers the header `{header}`, which `{later}` writes after it; put `{name}` after `{later}`"),
                            );
                        }
                    }
                }
                let (headers, params) = writes(config);
                let keys = headers
                    .into_iter()
                    .map(|h| (format!("header `{h}`"), h))
                    .chain(
                        params
                            .into_iter()
                            .map(|p| (format!("query parameter `{p}`"), p)),
                    );
                for (what, key) in keys {
                    let key = format!("{what}:{key}");
                    match owner.get(&key) {
                        Some(first) => self.problem(
                            &path,
                            format!("`{first}` and `{name}` both write the {what}; the second would replace the first, so they cannot be stacked"),
                        ),
                        None => {
                            owner.insert(key, name);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::validate;

    const CREDS: &str = r#"
[credential.key]
type = "header"
headers = { "X-Api-Key" = "k" }

[credential.paypay]
type = "paypay-opa"
api_key = "a"
api_secret = "s"

[credential.bearer1]
type = "header"
bearer = "t1"

[credential.bearer2]
type = "header"
bearer = "t2"

[credential.sig]
type = "http-signature"
algorithm = "hmac-sha256"
secret = "s"
components = ["@method", "authorization"]

[credential.sig2]
type = "http-signature"
algorithm = "hmac-sha256"
secret = "s"
label = "other"
components = ["@method"]

[credential.aws]
type = "aws-sigv4"
service = "execute-api"
region = "eu-west-1"
access_key_id = "AKID"
secret_access_key = "secret"

[credential.aws4a]
type = "aws-sigv4"
service = "s3"
region = "eu-west-1"
algorithm = "sigv4a"
region_set = "*"
access_key_id = "AKID"
secret_access_key = "secret"

[credential.s3stream]
type = "aws-sigv4"
service = "s3"
region = "eu-west-1"
payload = "streaming"
access_key_id = "AKID"
secret_access_key = "secret"

[credential.regions]
type = "header"
headers = { "X-Amz-Region-Set" = "us-east-1" }

[credential.decoded]
type = "header"
headers = { "X-Amz-Decoded-Content-Length" = "5" }
"#;

    fn check(credential: &str) -> Result<Vec<String>, String> {
        let toml = format!(
            "{CREDS}\n[[route]]\nname = \"r\"\nhosts = [\"a.test\"]\nupstream = \"https://a.test\"\ncredential = {credential}\n"
        );
        let dir = tempfile::tempdir().unwrap();
        validate(&toml, dir.path())
            .map(|c| c.routes[0].credential.clone())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn one_name_and_lists_are_accepted_in_order() {
        assert_eq!(check("\"paypay\"").unwrap(), ["paypay"]);
        assert_eq!(check("[\"key\", \"paypay\"]").unwrap(), ["key", "paypay"]);
        assert_eq!(check("[\"key\", \"aws\"]").unwrap(), ["key", "aws"]);
    }

    #[test]
    fn a_header_that_sigv4a_or_the_streaming_payload_writes_is_refused() {
        let e = check("[\"regions\", \"aws4a\"]").unwrap_err();
        assert!(
            e.contains("`regions` and `aws4a` both write the header `x-amz-region-set`"),
            "{e}"
        );
        let e = check("[\"decoded\", \"s3stream\"]").unwrap_err();
        assert!(
            e.contains(
                "`decoded` and `s3stream` both write the header `x-amz-decoded-content-length`"
            ),
            "{e}"
        );
        // Plain SigV4 with a signed payload writes neither.
        assert_eq!(check("[\"regions\", \"aws\"]").unwrap(), ["regions", "aws"]);
        assert_eq!(check("[\"decoded\", \"aws\"]").unwrap(), ["decoded", "aws"]);
    }

    #[test]
    fn two_credentials_that_write_authorization_are_refused() {
        let e = check("[\"bearer1\", \"bearer2\"]").unwrap_err();
        assert!(
            e.contains("route[0].credential: `bearer1` and `bearer2` both write the header `authorization`"),
            "{e}"
        );
        let e = check("[\"bearer1\", \"paypay\"]").unwrap_err();
        assert!(e.contains("`bearer1` and `paypay` both write"), "{e}");
    }

    #[test]
    fn aws_sigv4_must_come_last_and_names_must_be_known_and_distinct() {
        let e = check("[\"aws\", \"key\"]").unwrap_err();
        assert!(
            e.contains("`aws` (aws-sigv4) signs every header and the query, so it must come last"),
            "{e}"
        );
        let e = check("[\"key\", \"key\"]").unwrap_err();
        assert!(e.contains("names `key` twice"), "{e}");
        let e = check("[\"key\", \"nope\"]").unwrap_err();
        assert!(e.contains("`nope` names no credential defined here"), "{e}");
        let e = check("[]").unwrap_err();
        assert!(e.contains("is an empty list"), "{e}");
    }

    #[test]
    fn http_signature_comes_after_what_writes_a_header_it_covers() {
        assert_eq!(check("[\"bearer1\", \"sig\"]").unwrap(), ["bearer1", "sig"]);
        assert_eq!(check("[\"sig\", \"key\"]").unwrap(), ["sig", "key"]);
        let e = check("[\"sig\", \"bearer1\"]").unwrap_err();
        assert!(
            e.contains("`sig` (http-signature) covers the header `authorization`, which `bearer1` writes after it; put `sig` after `bearer1`"),
            "{e}"
        );
        let e = check("[\"sig\", \"sig2\"]").unwrap_err();
        assert!(
            e.contains("`sig` and `sig2` both write the header `signature`"),
            "{e}"
        );
    }
}
