//! Rules for the OpenID Connect and FAPI keys of an `oauth2` credential:
//! `issuer` (discovery), and for the authorization-code flow
//! `request_object` (with its `request_object_audience` and
//! `request_object_lifetime`), `par`, `response_type` and `response_mode`
//! (JARM's `jwt` and `form_post.jwt` included). Each of the last needs the
//! `issuer`: it is the request object's default audience, and its
//! discovery document names the PAR endpoint and the keys ID tokens are
//! checked with.

use std::time::Duration;

use super::super::super::raw::RawOAuth2;
use super::super::super::units::parse_duration;
use super::super::super::{
    FapiFlow, ResponseMode, SigningAlg, REQUEST_OBJECT_LIFETIME, REQUEST_OBJECT_LIFETIME_MAX,
};
use super::super::Checker;

impl Checker<'_> {
    pub(super) fn fapi_flow(&mut self, path: &str, raw: &RawOAuth2) -> Option<FapiFlow> {
        let mut ok = true;
        let issuer = raw.issuer.as_deref();
        // False (after saying so) when the issuer is missing.
        let has_issuer = |me: &mut Self, key: &str, why: &str| {
            if issuer.is_none() {
                me.problem(
                    format!("{path}.issuer"),
                    format!("missing; {key} needs the provider's issuer ({why})"),
                );
            }
            issuer.is_some()
        };
        let request_object = match raw.request_object.as_deref() {
            None | Some("none") => None,
            Some("signed") => {
                ok &= has_issuer(
                    self,
                    "request_object = \"signed\"",
                    "the request object's audience",
                );
                let key = self.jwt_key(path, raw, issuer);
                if let Some(k) = &key {
                    if k.alg == SigningAlg::Rs256 {
                        self.problem(
                            format!("{path}.signing_alg"),
                            "must be \"PS256\" or \"ES256\" to sign request objects (FAPI 1.0 Advanced section 8.6)",
                        );
                        ok = false;
                    }
                }
                // The audience is the issuer unless set, whatever the
                // assertions use.
                let audience = self.request_audience(path, raw, issuer);
                ok &= audience.is_some();
                key.map(|mut k| {
                    k.audience = audience.unwrap_or_default();
                    k
                })
            }
            Some(_) => {
                self.problem(
                    format!("{path}.request_object"),
                    "is not supported; use \"signed\" (RFC 9101, signed with the credential's key) or \"none\"",
                );
                ok = false;
                None
            }
        };
        if raw.request_object.as_deref() == Some("signed") && request_object.is_none() {
            ok = false;
        }
        let signed = raw.request_object.as_deref() == Some("signed");
        // Read only for a signed request, so a key set without one has
        // one problem: that it is not used.
        let request_object_lifetime = if signed {
            self.request_lifetime(path, raw)
        } else {
            Some(REQUEST_OBJECT_LIFETIME)
        };
        ok &= request_object_lifetime.is_some();
        if !signed {
            for (key, set) in [
                (
                    "request_object_audience",
                    raw.request_object_audience.is_some(),
                ),
                (
                    "request_object_lifetime",
                    raw.request_object_lifetime.is_some(),
                ),
            ] {
                if set {
                    self.problem(
                        format!("{path}.{key}"),
                        "is only used with request_object = \"signed\"",
                    );
                    ok = false;
                }
            }
        }
        let par = raw.par.unwrap_or(false);
        if par {
            ok &= has_issuer(
                self,
                "par = true",
                "its discovery document names the PAR endpoint",
            );
        }
        let hybrid = match raw.response_type.as_deref() {
            None | Some("code") => false,
            Some("code id_token") => {
                ok &= has_issuer(
                    self,
                    "response_type = \"code id_token\"",
                    "the ID token's issuer, and its keys",
                );
                let openid = raw
                    .scope
                    .as_deref()
                    .is_some_and(|s| s.split(' ').any(|w| w == "openid"));
                if !openid {
                    self.problem(
                        format!("{path}.scope"),
                        "must include \"openid\" for response_type = \"code id_token\"",
                    );
                    ok = false;
                }
                true
            }
            Some(_) => {
                self.problem(
                    format!("{path}.response_type"),
                    "is not supported; use \"code\" or \"code id_token\"",
                );
                ok = false;
                false
            }
        };
        let response_mode = match (raw.response_mode.as_deref(), hybrid) {
            (None, _) | (Some("query"), false) | (Some("fragment"), true) => ResponseMode::Default,
            (Some("form_post"), _) => ResponseMode::FormPost,
            (Some("jwt"), _) => ResponseMode::Jwt,
            (Some("form_post.jwt"), _) => ResponseMode::FormPostJwt,
            (Some("query"), true) => {
                self.problem(
                    format!("{path}.response_mode"),
                    "cannot be \"query\" with an ID token in the response (OAuth 2.0 Multiple Response Types section 5); use \"fragment\" or \"form_post\"",
                );
                ok = false;
                ResponseMode::Default
            }
            (Some(_), _) => {
                self.problem(
                    format!("{path}.response_mode"),
                    "is not supported; use \"query\" (code), \"fragment\" (code id_token), \"form_post\", or JARM's \"jwt\" or \"form_post.jwt\"",
                );
                ok = false;
                ResponseMode::Default
            }
        };
        if response_mode.is_jarm() {
            ok &= has_issuer(
                self,
                "a JWT response_mode (JARM)",
                "the response's issuer, and its keys",
            );
        }
        ok.then_some(FapiFlow {
            request_object,
            request_object_lifetime: request_object_lifetime.unwrap_or(REQUEST_OBJECT_LIFETIME),
            par,
            hybrid,
            response_mode,
        })
    }

    /// `request_object_audience`, else the issuer: the request object's
    /// `aud` (RFC 9101 section 4: the provider's issuer identifier; some
    /// banks ask for another value). `None` after a problem.
    fn request_audience(
        &mut self,
        path: &str,
        raw: &RawOAuth2,
        issuer: Option<&str>,
    ) -> Option<String> {
        match raw.request_object_audience.as_deref() {
            None => issuer.map(String::from),
            Some(a) if !a.is_empty() && !a.chars().any(|c| c.is_whitespace() || c.is_control()) => {
                Some(a.to_string())
            }
            Some(_) => {
                self.problem(
                    format!("{path}.request_object_audience"),
                    "must be a non-empty string without spaces or control characters, e.g. the provider's issuer identifier",
                );
                None
            }
        }
    }

    /// `request_object_lifetime`: more than zero, at most 60 minutes.
    /// `None` after a problem.
    fn request_lifetime(&mut self, path: &str, raw: &RawOAuth2) -> Option<Duration> {
        let Some(text) = raw.request_object_lifetime.as_deref() else {
            return Some(REQUEST_OBJECT_LIFETIME);
        };
        let key = format!("{path}.request_object_lifetime");
        match parse_duration(text) {
            Ok(d) if d.as_secs() == 0 => {
                self.problem(key, "must be at least 1s");
                None
            }
            Ok(d) if d > REQUEST_OBJECT_LIFETIME_MAX => {
                self.problem(
                    key,
                    "must be at most 60m: FAPI 1.0 Advanced allows no more than 60 minutes between a request object's nbf and exp",
                );
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                self.problem(key, e);
                None
            }
        }
    }

    /// The issuer identifier: an absolute URL without query or fragment
    /// (OpenID Connect Discovery 1.0 section 4.3), compared byte for byte
    /// with the document's `issuer`. `Some(None)` when not set.
    pub(super) fn issuer(&mut self, path: &str, value: Option<&str>) -> Option<Option<String>> {
        let Some(text) = value else {
            return Some(None);
        };
        let key = format!("{path}.issuer");
        let uri = self.endpoint_url(
            &key,
            Some(text),
            "https://auth.example.com",
            "client authentication",
        )?;
        if uri.query().is_some() || text.contains('#') {
            self.problem(
                key,
                "must not have a query or fragment (OpenID Connect Discovery section 4.3)",
            );
            return None;
        }
        Some(Some(text.to_string()))
    }
}

#[cfg(test)]
mod tests;
