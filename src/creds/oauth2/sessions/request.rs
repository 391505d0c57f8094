//! The authorization request the browser carries to the provider, in the
//! form the credential asks for:
//!
//! - plain: the parameters in the query of the authorization endpoint;
//! - `request_object = "signed"` (RFC 9101, FAPI 1.0 Advanced section
//!   5.2.2): every parameter repeated inside a JWT signed with the
//!   credential's key (`iss` = client_id, `aud` = `request_object_audience`
//!   or the issuer, `iat`, `nbf`, `exp` `request_object_lifetime` on (5
//!   minutes unless set, at most FAPI's 60), a fresh `jti`), with the
//!   app's consent id as the essential `openbanking_intent_id` claim; the
//!   query keeps `client_id`, `response_type` and `scope`, which OpenID
//!   Connect requires outside the object too;
//! - `par = true` (RFC 9126): the parameters (or the request object) are
//!   POSTed to the PAR endpoint with the client's authentication, and the
//!   browser carries only `client_id` and the `request_uri` answered;
//! - `dpop = true` (RFC 9449 section 10): `dpop_jkt`, the thumbprint of the
//!   credential's DPoP key, among the parameters (pushed or signed with
//!   the rest), which binds the code to that key; the code exchange then
//!   carries a proof signed with it. Left out with `[store]`, where the
//!   replica that takes the callback (its own key) may not be the one
//!   that started the authorization.

use serde_json::{json, Map, Value};

use super::super::discovery::{DiscoveryError, Wanted};
use super::super::endpoint::unix_now;
use super::super::jwt::{self, AssertionSigner};
use super::{SessionError, SessionManager};
use crate::config::Secret;
use crate::creds::form::Form;

/// RFC 9101 section 4: the explicit type of a request object.
const REQUEST_OBJECT_TYPE: &str = "oauth-authz-req+jwt";

/// What one authorization asks for, made by `start`.
pub struct Asked<'a> {
    pub state: &'a str,
    pub code_challenge: &'a str,
    /// Sent when an ID token is asked for (hybrid, or a signed request).
    pub nonce: Option<&'a str>,
    /// The app's consent id (UK open banking's intent id).
    pub intent: Option<&'a str>,
}

impl SessionManager {
    /// The authorization parameters, in the order sent.
    pub(super) fn parameters(&self, asked: &Asked<'_>) -> Vec<(&'static str, String)> {
        let fapi = &self.flow.fapi;
        let mut p = vec![
            ("response_type", self.response_type().to_string()),
            ("client_id", self.config.client_id.clone()),
            ("redirect_uri", self.flow.redirect_uri.clone()),
        ];
        if let Some(scope) = self.scope() {
            p.push(("scope", scope.to_string()));
        }
        p.push(("state", asked.state.to_string()));
        if let Some(nonce) = asked.nonce {
            p.push(("nonce", nonce.to_string()));
        }
        if let Some(mode) = fapi.response_mode.parameter() {
            p.push(("response_mode", mode.to_string()));
        }
        p.push(("code_challenge", asked.code_challenge.to_string()));
        p.push(("code_challenge_method", "S256".to_string()));
        // RFC 9449 section 10: binds the code to this process's key, so
        // only a proof signed with it can exchange the code. Not with
        // [store]: another replica (another key) may take the callback.
        let jkt = self.endpoint.dpop_thumbprint();
        if let Some(jkt) = jkt.filter(|_| self.config.shared_store.is_none()) {
            p.push(("dpop_jkt", jkt.to_string()));
        }
        p
    }

    pub(super) fn response_type(&self) -> &'static str {
        if self.flow.fapi.hybrid {
            "code id_token"
        } else {
            "code"
        }
    }

    fn scope(&self) -> Option<&str> {
        self.config
            .params
            .iter()
            .find(|(name, _)| name == "scope")
            .map(|(_, v)| v.expose())
    }

    /// Where the browser goes: the authorization endpoint with the
    /// request, pushed first when `par` is set.
    pub(super) async fn location(
        &self,
        authorization_endpoint: &http::Uri,
        asked: &Asked<'_>,
    ) -> Result<String, SessionError> {
        let params = self.parameters(asked);
        let signed = match &self.request_signer {
            Some(signer) => Some(request_object(
                signer,
                &self.config.client_id,
                &params,
                asked.intent,
                unix_now(),
                self.flow.fapi.request_object_lifetime.as_secs(),
            )?),
            None => None,
        };
        let mut query = Form::default();
        if self.flow.fapi.par {
            let mut form = Form::default();
            match &signed {
                Some(object) => form.push("request", object.expose()),
                // `client_id` once: the client authentication adds it
                // (but for Basic), and a server refuses it twice.
                None => params
                    .iter()
                    .filter(|(k, _)| *k != "client_id" || !self.endpoint.auth_names_client())
                    .for_each(|(k, v)| form.push(k, v)),
            }
            let request_uri = self.push(form).await?;
            query.push("client_id", &self.config.client_id);
            query.push("request_uri", &request_uri);
        } else if let Some(object) = &signed {
            for (name, value) in &params {
                if matches!(*name, "client_id" | "response_type" | "scope") {
                    query.push(name, value);
                }
            }
            query.push("request", object.expose());
        } else {
            params.iter().for_each(|(k, v)| query.push(k, v));
        }
        let base = authorization_endpoint.to_string();
        let sep = if base.contains('?') { '&' } else { '?' };
        Ok(format!("{base}{sep}{}", query.into_string()))
    }

    /// The configured `authorize_url`, or the discovered one; with an
    /// `issuer`, first a check that the provider offers what this
    /// authorization asks for (before the ticket is spent).
    pub(super) async fn authorization_endpoint(&self) -> Result<http::Uri, SessionError> {
        let missing = || SessionError::Discovery(DiscoveryError::Missing("authorization_endpoint"));
        let meta = match self.endpoint.discovery() {
            Some(d) => Some(d.metadata().await.map_err(SessionError::Discovery)?),
            None => None,
        };
        if let Some(meta) = &meta {
            let fapi = &self.flow.fapi;
            let wanted = Wanted {
                response_type: self.response_type(),
                response_mode: fapi.response_mode.parameter(),
                request_alg: fapi.request_object.as_ref().map(|k| k.alg.as_str()),
                par: fapi.par,
            };
            meta.offers(&wanted).map_err(SessionError::NotOffered)?;
        }
        match (&self.flow.authorize_url, meta) {
            (Some(url), _) => Ok(url.clone()),
            (None, Some(meta)) => meta.authorization_endpoint.clone().ok_or_else(missing),
            (None, None) => Err(missing()),
        }
    }

    /// RFC 9126 section 2: POST to the PAR endpoint, read `request_uri`.
    async fn push(&self, form: Form) -> Result<String, SessionError> {
        let missing = || {
            SessionError::Discovery(DiscoveryError::Missing(
                "pushed_authorization_request_endpoint",
            ))
        };
        let discovery = self.endpoint.discovery().ok_or_else(missing)?;
        let meta = discovery
            .metadata()
            .await
            .map_err(SessionError::Discovery)?;
        let url = meta
            .par_endpoint(self.endpoint.mtls())
            .ok_or_else(missing)?;
        let (status, body) = self
            .endpoint
            .post_authenticated(url, form)
            .await
            .map_err(SessionError::Par)?;
        let doc: Option<Value> = serde_json::from_slice(&body).ok();
        if !status.is_success() {
            let code = doc
                .as_ref()
                .and_then(|d| d.get("error"))
                .and_then(Value::as_str)
                .map(|c| {
                    let safe: String = c
                        .chars()
                        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .take(40)
                        .collect();
                    format!(" ({safe})")
                })
                .unwrap_or_default();
            return Err(SessionError::ParRefused(status, code));
        }
        doc.as_ref()
            .and_then(|d| d.get("request_uri"))
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty())
            .map(String::from)
            .ok_or(SessionError::ParRefused(status, " (no request_uri)".into()))
    }
}

/// The signed request object carrying `params` (RFC 9101 section 4),
/// valid from `now` for `lifetime` seconds (`aud` is the signer's).
pub fn request_object(
    signer: &AssertionSigner,
    client_id: &str,
    params: &[(&'static str, String)],
    intent: Option<&str>,
    now: u64,
    lifetime: u64,
) -> Result<Secret, jwt::SignError> {
    let mut claims = Map::new();
    for (name, value) in params {
        claims.insert((*name).to_string(), json!(value));
    }
    claims.insert("iss".into(), json!(client_id));
    claims.insert("aud".into(), json!(signer.audience()));
    claims.insert("iat".into(), json!(now));
    claims.insert("nbf".into(), json!(now));
    claims.insert("exp".into(), json!(now + lifetime));
    claims.insert("jti".into(), json!(jwt::jti()?));
    if let Some(intent) = intent {
        // UK open banking: the consent is named in the ID token's claims
        // (essential), and in the userinfo claims as its examples show.
        let asked = json!({ "openbanking_intent_id": { "value": intent, "essential": true } });
        claims.insert(
            "claims".into(),
            json!({ "id_token": asked, "userinfo": asked }),
        );
    }
    signer.compact(REQUEST_OBJECT_TYPE, &Value::Object(claims))
}

#[cfg(test)]
mod tests;
