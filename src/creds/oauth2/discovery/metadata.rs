//! Reading an OpenID Provider's configuration document (OpenID Connect
//! Discovery 1.0 section 3, RFC 8414): the endpoints countersign uses, the
//! RFC 8705 `mtls_endpoint_aliases`, and the algorithms the provider says
//! it supports. The document's `issuer` must be exactly the configured one
//! (section 4.3), or a document served elsewhere could redirect the flow.

use bytes::Bytes;
use http::{StatusCode, Uri};
use serde_json::Value;

use super::DiscoveryError;

/// What countersign takes from a discovery document.
#[derive(Debug, Clone, Default)]
pub struct Metadata {
    pub issuer: String,
    pub authorization_endpoint: Option<Uri>,
    pub token_endpoint: Option<Uri>,
    /// RFC 9126 `pushed_authorization_request_endpoint`.
    pub par_endpoint: Option<Uri>,
    pub jwks_uri: Option<Uri>,
    /// RFC 8705 section 5: where a client holding a certificate goes.
    pub mtls_token_endpoint: Option<Uri>,
    pub mtls_par_endpoint: Option<Uri>,
    /// RFC 7009 (named in discovery by RFC 8414), and its mTLS alias.
    pub revocation_endpoint: Option<Uri>,
    pub mtls_revocation_endpoint: Option<Uri>,
    pub id_token_signing_algs: Vec<String>,
    pub request_object_signing_algs: Vec<String>,
    pub response_types: Vec<String>,
    pub response_modes: Vec<String>,
    /// `require_pushed_authorization_requests` (RFC 9126 section 5).
    pub requires_par: bool,
}

impl Metadata {
    /// The token endpoint a client with (`mtls`) or without a certificate
    /// uses.
    pub fn token_endpoint(&self, mtls: bool) -> Option<&Uri> {
        mtls.then_some(self.mtls_token_endpoint.as_ref())
            .flatten()
            .or(self.token_endpoint.as_ref())
    }

    /// Whether the provider offers what an authorization asks for, by
    /// what its document lists (a list it leaves out allows anything);
    /// what it lacks, said with the key to change.
    pub fn offers(&self, wanted: &Wanted<'_>) -> Result<(), String> {
        let lacks =
            |list: &[String], value: &str| !list.is_empty() && !list.iter().any(|v| v == value);
        if lacks(&self.response_types, wanted.response_type) {
            return Err(format!(
                "the provider does not offer response_type `{}` (it lists {}); change `response_type`",
                wanted.response_type,
                listed(&self.response_types)
            ));
        }
        if let Some(mode) = wanted
            .response_mode
            .filter(|m| lacks(&self.response_modes, m))
        {
            return Err(format!(
                "the provider does not offer response_mode `{mode}` (it lists {}); change `response_mode`",
                listed(&self.response_modes)
            ));
        }
        if let Some(alg) = wanted
            .request_alg
            .filter(|a| lacks(&self.request_object_signing_algs, a))
        {
            return Err(format!(
                "the provider does not take request objects signed with {alg} (it lists {}); change `signing_alg`",
                listed(&self.request_object_signing_algs)
            ));
        }
        if self.requires_par && !wanted.par {
            return Err(
                "the provider requires pushed authorization requests; set `par = true`".into(),
            );
        }
        if wanted.par && self.par_endpoint.is_none() {
            return Err(
                "the provider names no pushed_authorization_request_endpoint; remove `par = true`"
                    .into(),
            );
        }
        Ok(())
    }

    /// The PAR endpoint, likewise.
    pub fn par_endpoint(&self, mtls: bool) -> Option<&Uri> {
        mtls.then_some(self.mtls_par_endpoint.as_ref())
            .flatten()
            .or(self.par_endpoint.as_ref())
    }

    /// The revocation endpoint, its mTLS alias with a client certificate.
    pub fn revocation_endpoint(&self, mtls: bool) -> Option<&Uri> {
        mtls.then_some(self.mtls_revocation_endpoint.as_ref())
            .flatten()
            .or(self.revocation_endpoint.as_ref())
    }
}

/// What an authorization asks of the provider.
pub struct Wanted<'a> {
    pub response_type: &'a str,
    /// The `response_mode` parameter sent, if any.
    pub response_mode: Option<&'a str>,
    /// The request object's `alg`, when one is signed.
    pub request_alg: Option<&'a str>,
    pub par: bool,
}

/// A provider's list, cut to safe characters, for a message.
fn listed(values: &[String]) -> String {
    values
        .iter()
        .map(|v| format!("`{}`", shown(v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads the answer to `GET ISSUER/.well-known/openid-configuration`.
pub fn parse(issuer: &str, status: StatusCode, body: &Bytes) -> Result<Metadata, DiscoveryError> {
    if !status.is_success() {
        return Err(DiscoveryError::Status(status));
    }
    let Ok(Value::Object(doc)) = serde_json::from_slice::<Value>(body) else {
        return Err(DiscoveryError::NotJson);
    };
    let found = doc.get("issuer").and_then(Value::as_str).unwrap_or("");
    if found != issuer {
        return Err(DiscoveryError::WrongIssuer(shown(found)));
    }
    let url = |map: &serde_json::Map<String, Value>, name: &'static str| match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_str()
            .and_then(|t| t.parse::<Uri>().ok())
            .filter(|u| matches!(u.scheme_str(), Some("https" | "http")) && u.authority().is_some())
            .map(Some)
            .ok_or(DiscoveryError::BadField(name)),
    };
    let names = |name: &str| -> Vec<String> {
        doc.get(name)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    };
    let empty = serde_json::Map::new();
    let aliases = match doc.get("mtls_endpoint_aliases") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(m)) => m,
        Some(_) => return Err(DiscoveryError::BadField("mtls_endpoint_aliases")),
    };
    Ok(Metadata {
        issuer: found.to_string(),
        authorization_endpoint: url(&doc, "authorization_endpoint")?,
        token_endpoint: url(&doc, "token_endpoint")?,
        par_endpoint: url(&doc, "pushed_authorization_request_endpoint")?,
        jwks_uri: url(&doc, "jwks_uri")?,
        mtls_token_endpoint: url(aliases, "token_endpoint")?,
        mtls_par_endpoint: url(aliases, "pushed_authorization_request_endpoint")?,
        revocation_endpoint: url(&doc, "revocation_endpoint")?,
        mtls_revocation_endpoint: url(aliases, "revocation_endpoint")?,
        id_token_signing_algs: names("id_token_signing_alg_values_supported"),
        request_object_signing_algs: names("request_object_signing_alg_values_supported"),
        response_types: names("response_types_supported"),
        response_modes: names("response_modes_supported"),
        requires_par: doc
            .get("require_pushed_authorization_requests")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// A provider-chosen string, cut to something safe to put in an error.
fn shown(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(120)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUER: &str = "https://bank.test/as";

    fn read(body: &str) -> Result<Metadata, DiscoveryError> {
        parse(ISSUER, StatusCode::OK, &Bytes::from(body.to_string()))
    }

    #[test]
    fn the_endpoints_aliases_and_algorithms_are_read() {
        let m = read(
            r#"{"issuer":"https://bank.test/as",
                "authorization_endpoint":"https://bank.test/as/auth",
                "token_endpoint":"https://bank.test/as/token",
                "pushed_authorization_request_endpoint":"https://bank.test/as/par",
                "revocation_endpoint":"https://bank.test/as/revoke",
                "jwks_uri":"https://bank.test/as/jwks",
                "mtls_endpoint_aliases":{"token_endpoint":"https://mtls.bank.test/token",
                    "pushed_authorization_request_endpoint":"https://mtls.bank.test/par",
                    "revocation_endpoint":"https://mtls.bank.test/revoke"},
                "id_token_signing_alg_values_supported":["PS256","ES256"],
                "request_object_signing_alg_values_supported":["PS256"],
                "response_types_supported":["code id_token"],
                "require_pushed_authorization_requests":true}"#,
        )
        .unwrap();
        assert_eq!(
            m.token_endpoint(false).unwrap(),
            "https://bank.test/as/token"
        );
        assert_eq!(
            m.token_endpoint(true).unwrap(),
            "https://mtls.bank.test/token"
        );
        assert_eq!(m.par_endpoint(false).unwrap(), "https://bank.test/as/par");
        assert_eq!(m.par_endpoint(true).unwrap(), "https://mtls.bank.test/par");
        assert_eq!(
            m.revocation_endpoint(false).unwrap(),
            "https://bank.test/as/revoke"
        );
        assert_eq!(
            m.revocation_endpoint(true).unwrap(),
            "https://mtls.bank.test/revoke"
        );
        assert_eq!(m.jwks_uri.unwrap(), "https://bank.test/as/jwks");
        assert_eq!(m.id_token_signing_algs, ["PS256", "ES256"]);
        assert_eq!(m.request_object_signing_algs, ["PS256"]);
        assert_eq!(m.response_types, ["code id_token"]);
        assert!(m.requires_par);
        let m = read(r#"{"issuer":"https://bank.test/as","token_endpoint":"https://bank.test/t"}"#)
            .unwrap();
        assert_eq!(
            m.token_endpoint(true).unwrap(),
            "https://bank.test/t",
            "without an alias a client with a certificate uses the plain endpoint"
        );
        assert!(m.par_endpoint(false).is_none());
        assert!(m.revocation_endpoint(true).is_none());
    }

    #[test]
    fn what_the_provider_lacks_is_named_with_the_key_to_change() {
        let m = read(
            r#"{"issuer":"https://bank.test/as",
                "pushed_authorization_request_endpoint":"https://bank.test/as/par",
                "response_types_supported":["code","code id_token"],
                "response_modes_supported":["query","fragment","form_post"],
                "request_object_signing_alg_values_supported":["PS256"],
                "require_pushed_authorization_requests":true}"#,
        )
        .unwrap();
        let wanted = |response_type, response_mode, request_alg, par| Wanted {
            response_type,
            response_mode,
            request_alg,
            par,
        };
        assert!(m
            .offers(&wanted("code id_token", None, Some("PS256"), true))
            .is_ok());
        for (w, key) in [
            (wanted("code token", None, None, true), "response_type"),
            (wanted("code", Some("jwt"), None, true), "response_mode"),
            (wanted("code", None, Some("ES256"), true), "signing_alg"),
            (wanted("code", None, None, false), "par = true"),
        ] {
            let e = m.offers(&w).unwrap_err();
            assert!(e.contains(key), "{e}");
        }
        // A document that lists nothing allows anything but PAR it lacks.
        let bare = read(r#"{"issuer":"https://bank.test/as"}"#).unwrap();
        assert!(bare
            .offers(&wanted("code", Some("jwt"), Some("ES256"), false))
            .is_ok());
        assert!(bare
            .offers(&wanted("code", None, None, true))
            .unwrap_err()
            .contains("remove `par = true`"));
    }

    #[test]
    fn another_issuer_is_refused_even_a_near_one() {
        for other in [
            "https://bank.test/as/",
            "https://evil.test/as",
            "HTTPS://bank.test/as",
        ] {
            let e = read(&format!(r#"{{"issuer":"{other}"}}"#)).unwrap_err();
            assert!(
                matches!(&e, DiscoveryError::WrongIssuer(i) if i == other),
                "{other}: {e}"
            );
            assert!(e.to_string().contains(other));
        }
        assert!(matches!(
            read("{}"),
            Err(DiscoveryError::WrongIssuer(i)) if i.is_empty()
        ));
    }

    #[test]
    fn broken_documents_are_named() {
        assert!(matches!(read("<html>"), Err(DiscoveryError::NotJson)));
        assert!(matches!(read("[]"), Err(DiscoveryError::NotJson)));
        assert!(matches!(
            read(r#"{"issuer":"https://bank.test/as","token_endpoint":"/token"}"#),
            Err(DiscoveryError::BadField("token_endpoint"))
        ));
        assert!(matches!(
            read(r#"{"issuer":"https://bank.test/as","jwks_uri":7}"#),
            Err(DiscoveryError::BadField("jwks_uri"))
        ));
        assert!(matches!(
            parse(ISSUER, StatusCode::NOT_FOUND, &Bytes::new()),
            Err(DiscoveryError::Status(s)) if s == StatusCode::NOT_FOUND
        ));
    }
}
