//! `keys = "container"`: the ECS task / EKS Pod Identity credentials
//! endpoint. A GET (with the platform's authorization token, read afresh
//! each time, when there is one) answers
//! `{"AccessKeyId", "SecretAccessKey", "Token", "Expiration"}`; the keys
//! live on the token lifecycle like web identity's.

use std::sync::Arc;

use http::header::{ACCEPT, AUTHORIZATION};
use http::{HeaderMap, HeaderValue};

use super::web_identity::{now_unix, pack, Keys, REFRESH_AT, WAIT_FOR_KEYS};
use crate::config::{ContainerEndpoint, ContainerToken};
use crate::creds::form_post::{FormEndpoint, PostError, Reach};
use crate::creds::token::{
    Fetch, Fingerprint, NewToken, SourceError, TokenManager, TokenRegistry, TokenSource,
};
use crate::egress::EgressPolicy;
use crate::upstream::UpstreamSettings;

struct Source {
    endpoint: FormEndpoint,
    token: Option<ContainerToken>,
}

impl TokenSource for Source {
    fn fetch<'a>(&'a self, _label: &'a str) -> Fetch<'a> {
        Box::pin(self.ask())
    }

    fn noun(&self) -> &'static str {
        "AWS credentials"
    }
}

impl Source {
    async fn ask(&self) -> Result<NewToken, SourceError> {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let token = match &self.token {
            None => None,
            Some(ContainerToken::Value(t)) => Some(t.expose().to_string()),
            Some(ContainerToken::File(f)) => {
                Some(tokio::fs::read_to_string(f).await.map_err(|e| {
                    SourceError::new(format!(
                        "cannot read the container authorization token file {}: {}",
                        f.display(),
                        e.kind()
                    ))
                })?)
            }
        };
        if let Some(t) = token {
            let mut v = HeaderValue::from_str(t.trim()).map_err(|_| {
                SourceError::new("the container authorization token is not a valid header value")
            })?;
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
        }
        let (status, body) = self.endpoint.get(headers).await.map_err(|e| {
            SourceError::new(match e {
                PostError::Timeout(d) => {
                    format!("the container credentials endpoint did not answer within {d:?}")
                }
                PostError::Transport(e) => format!(
                    "the container credentials request failed: {}",
                    crate::causes::chain(&e)
                ),
                PostError::Body => "reading the container credentials failed".to_string(),
            })
        })?;
        if !status.is_success() {
            return Err(SourceError::new(format!(
                "the container credentials endpoint answered {status}"
            )));
        }
        parse(&body, now_unix())
    }
}

fn parse(body: &[u8], now: i64) -> Result<NewToken, SourceError> {
    let json: serde_json::Value = serde_json::from_slice(body)
        .map_err(|_| SourceError::new("the container credentials endpoint's answer is not JSON"))?;
    let field = |name: &'static str| {
        json.get(name).and_then(|v| v.as_str()).ok_or_else(|| {
            SourceError::new(format!(
                "the container credentials endpoint's answer has no string `{name}`"
            ))
        })
    };
    let keys = Keys {
        access_key_id: field("AccessKeyId")?,
        secret_access_key: field("SecretAccessKey")?,
        session_token: field("Token")?,
    };
    pack(
        "the container credentials endpoint",
        &keys,
        field("Expiration")?,
        now,
    )
}

/// The manager of credential `name`'s keys, kept by `tokens` across
/// reloads while the endpoint settings are unchanged.
pub fn manager(
    name: &str,
    config: &ContainerEndpoint,
    tokens: &TokenRegistry,
    settings: UpstreamSettings,
    egress: &Arc<EgressPolicy>,
) -> Result<Arc<TokenManager>, (&'static str, String)> {
    let mut h = Fingerprint::default();
    h.feed("kind", b"aws-sigv4/container");
    h.feed("name", name.as_bytes());
    h.feed("url", config.url.to_string().as_bytes());
    match &config.token {
        None => h.feed("token", b""),
        Some(ContainerToken::File(f)) => h.feed("token_file", f.as_os_str().as_encoded_bytes()),
        Some(ContainerToken::Value(v)) => h.feed("token", v.expose().as_bytes()),
    }
    h.connection(&[], None, settings);
    let egress = Arc::clone(egress);
    tokens.keep(h.finish(), || {
        let reach = Reach {
            url: &config.url,
            url_key: "container_url",
            roots: &[],
            identity: None,
        };
        let endpoint =
            FormEndpoint::new(reach, settings, egress).map_err(|e| ("container_url", e))?;
        let source = Source {
            endpoint,
            token: config.token.clone(),
        };
        Ok(TokenManager::start(
            name,
            Box::new(source),
            REFRESH_AT,
            WAIT_FOR_KEYS,
            None,
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_answer_gives_keys_and_their_lifetime() {
        // The shape AWS documents for the ECS task credentials endpoint.
        let body = br#"{
            "AccessKeyId": "ACCESS_KEY_ID",
            "Expiration": "2014-10-24T23:00:23Z",
            "RoleArn": "TASK_ROLE_ARN",
            "SecretAccessKey": "SECRET_ACCESS_KEY",
            "Token": "SECURITY_TOKEN_STRING"
        }"#;
        let token = parse(body, 1414191623 - 600).unwrap();
        assert_eq!(token.lifetime.as_secs(), 600);
        let keys = Keys::unpack(&token.value).unwrap();
        assert_eq!(keys.access_key_id, "ACCESS_KEY_ID");
        assert_eq!(keys.secret_access_key, "SECRET_ACCESS_KEY");
        assert_eq!(keys.session_token, "SECURITY_TOKEN_STRING");
        let e = parse(b"{\"AccessKeyId\": \"x\"}", 0).err().unwrap();
        assert!(e.message().contains("no string `SecretAccessKey`"), "{e}");
        let e = parse(b"<html>", 0).err().unwrap();
        assert!(e.message().contains("not JSON"), "{e}");
    }
}
