//! Rules for `[credential.NAME]` tables with `type = "oauth2"`: every key is
//! checked and every problem reported at its own key path.

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine as _;
use http::Uri;

use super::super::raw::RawOAuth2;
use super::super::{
    ClientAuth, CredentialConfig, Grant, OAuth2Config, SecretBytes, TokenStoreConfig,
};
use super::Checker;

/// Form parameters countersign sets itself; `extra_params` may not override them.
const RESERVED_PARAMS: &[&str] = &[
    "grant_type",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "refresh_token",
    "scope",
    "audience",
    "resource",
];

impl Checker<'_> {
    pub(super) fn oauth2(&mut self, path: &str, raw: RawOAuth2) -> Option<CredentialConfig> {
        let issuer = self.issuer(path, raw.issuer.as_deref());
        let token_url = self.token_url(path, raw.token_url.as_deref(), issuer.as_ref());
        let client_id = self.required_secret(path, "client_id", raw.client_id.as_deref());
        let grant = self.grant(path, &raw);
        let client_identity =
            self.client_identity(path, raw.client_cert.clone(), raw.client_key.clone());
        // RFC 7523 lets `aud` be the token endpoint; FAPI wants the issuer,
        // and a discovered token endpoint is only known at run time.
        let audience = match (token_url.as_ref(), issuer.as_ref()) {
            (Some(Some(u)), _) => Some(u.to_string()),
            (_, Some(Some(i))) => Some(i.clone()),
            _ => None,
        };
        let client_auth = self.client_auth(path, &raw, audience.as_deref());
        if matches!(client_auth, Some(ClientAuth::TlsClientAuth { .. }))
            && client_identity.is_none()
        {
            self.problem(
                format!("{path}.client_cert"),
                "missing; tls_client_auth proves the client with its certificate (set client_cert and client_key)",
            );
        }
        let (dpop, certificate_bound) =
            self.sender_constraint(path, &raw, grant.as_ref(), client_identity.is_some());
        let params = self.token_params(path, &raw);
        let token_store = self.token_store(path, &raw, grant.as_ref());
        let ca_roots = match raw.ca_file.as_deref() {
            Some(f) => self.ca_file(&format!("{path}.ca_file"), f),
            None => Vec::new(),
        };
        let refresh_at = match raw.refresh_at {
            None => 0.8,
            Some(f) if f > 0.0 && f < 1.0 => f,
            Some(_) => {
                self.problem(
                    format!("{path}.refresh_at"),
                    "must be a fraction of the token lifetime between 0 and 1, e.g. 0.8",
                );
                0.8
            }
        };
        let wait_for_token = self.duration(
            &format!("{path}.wait_for_token"),
            raw.wait_for_token,
            std::time::Duration::from_secs(5),
        );
        Some(CredentialConfig::OAuth2(Box::new(OAuth2Config {
            token_url: token_url?,
            issuer: issuer?,
            grant: grant?,
            client_id: client_id?.expose().to_string(),
            client_auth: client_auth?,
            params: params?,
            token_store: token_store?,
            shared_store: self.shared_store.clone(),
            ca_roots,
            client_identity,
            refresh_at,
            wait_for_token,
            dpop,
            certificate_bound,
        })))
    }

    /// Two credentials rotating one refresh token would present stale ones.
    pub(super) fn distinct_token_stores(
        &mut self,
        credentials: &BTreeMap<String, CredentialConfig>,
    ) {
        let mut seen: BTreeMap<PathBuf, &str> = BTreeMap::new();
        for (name, c) in credentials {
            let CredentialConfig::OAuth2(o) = c else {
                continue;
            };
            let Some(store) = &o.token_store else {
                continue;
            };
            let path = std::path::absolute(&store.path).unwrap_or_else(|_| store.path.clone());
            if let Some(first) = seen.insert(path, name) {
                self.problem(
                    format!("credential.{name}.token_store"),
                    format!("is also the token_store of credential `{first}`; each credential needs its own store"),
                );
            }
        }
    }

    fn required_secret(
        &mut self,
        path: &str,
        key: &str,
        value: Option<&str>,
    ) -> Option<super::super::Secret> {
        match value {
            Some(v) => self.secret(&format!("{path}.{key}"), v),
            None => {
                self.problem(format!("{path}.{key}"), "missing");
                None
            }
        }
    }

    /// `None` on a problem; `Some(None)` when discovery names it.
    fn token_url(
        &mut self,
        path: &str,
        value: Option<&str>,
        issuer: Option<&Option<String>>,
    ) -> Option<Option<Uri>> {
        if value.is_none() && matches!(issuer, Some(Some(_))) {
            return Some(None);
        }
        if value.is_none() && issuer.is_none() {
            // The issuer's own problem is reported; this one would repeat it.
            return None;
        }
        self.endpoint_url(
            &format!("{path}.token_url"),
            value,
            "https://auth.example.com/oauth2/token, or set `issuer` to discover it",
            "client_id and client_secret",
        )
        .map(Some)
    }

    fn grant(&mut self, path: &str, raw: &RawOAuth2) -> Option<Grant> {
        let seed = raw
            .refresh_token
            .as_deref()
            .and_then(|t| self.secret(&format!("{path}.refresh_token"), t));
        match raw.grant.as_deref() {
            Some("client_credentials") => {
                if raw.refresh_token.is_some() {
                    self.problem(
                        format!("{path}.refresh_token"),
                        "is only used with grant = \"refresh_token\"",
                    );
                }
                self.no_code_flow_keys(path, raw);
                Some(Grant::ClientCredentials)
            }
            Some("refresh_token") => {
                self.no_code_flow_keys(path, raw);
                Some(Grant::RefreshToken { seed })
            }
            Some("authorization_code") => {
                if raw.refresh_token.is_some() {
                    self.problem(
                        format!("{path}.refresh_token"),
                        "is not used with grant = \"authorization_code\": each session gets its own",
                    );
                }
                self.code_flow(path, raw)
                    .map(|f| Grant::AuthorizationCode(Box::new(f)))
            }
            Some(_) => {
                self.problem(
                    format!("{path}.grant"),
                    "is not supported; use \"client_credentials\", \"refresh_token\" or \"authorization_code\"",
                );
                None
            }
            None => {
                self.problem(
                    format!("{path}.grant"),
                    "missing; use \"client_credentials\", \"refresh_token\" or \"authorization_code\"",
                );
                None
            }
        }
    }

    fn client_auth(
        &mut self,
        path: &str,
        raw: &RawOAuth2,
        audience: Option<&str>,
    ) -> Option<ClientAuth> {
        let method = raw.client_auth.as_deref().unwrap_or("client_secret_basic");
        // A signed request object uses the same key (validated there).
        let jwt = method == "private_key_jwt" || raw.request_object.as_deref() == Some("signed");
        if !jwt {
            for (key, set) in [
                ("private_key_file", raw.private_key_file.is_some()),
                ("signing_alg", raw.signing_alg.is_some()),
                ("kid", raw.kid.is_some()),
                ("assertion_audience", raw.assertion_audience.is_some()),
            ] {
                if set {
                    self.problem(
                        format!("{path}.{key}"),
                        "is only used with client_auth = \"private_key_jwt\" or request_object = \"signed\"",
                    );
                }
            }
        }
        match method {
            "client_secret_basic" | "client_secret_post" => {
                let secret =
                    self.required_secret(path, "client_secret", raw.client_secret.as_deref())?;
                Some(if method == "client_secret_basic" {
                    ClientAuth::SecretBasic(secret)
                } else {
                    ClientAuth::SecretPost(secret)
                })
            }
            "tls_client_auth" | "self_signed_tls_client_auth" => {
                if raw.client_secret.is_some() {
                    self.problem(
                        format!("{path}.client_secret"),
                        format!("is not used with client_auth = \"{method}\"; remove it"),
                    );
                }
                Some(ClientAuth::TlsClientAuth {
                    self_signed: method == "self_signed_tls_client_auth",
                })
            }
            "private_key_jwt" => {
                if raw.client_secret.is_some() {
                    self.problem(
                        format!("{path}.client_secret"),
                        "is not used with client_auth = \"private_key_jwt\"; remove it",
                    );
                }
                self.jwt_key(path, raw, audience)
                    .map(ClientAuth::PrivateKeyJwt)
            }
            _ => {
                self.problem(
                    format!("{path}.client_auth"),
                    "is not supported; use \"client_secret_basic\", \"client_secret_post\", \"private_key_jwt\", \"tls_client_auth\" or \"self_signed_tls_client_auth\"",
                );
                None
            }
        }
    }

    fn token_params(
        &mut self,
        path: &str,
        raw: &RawOAuth2,
    ) -> Option<Vec<(String, super::super::Secret)>> {
        let mut params = Vec::new();
        let mut ok = true;
        let named = [
            ("scope", &raw.scope),
            ("audience", &raw.audience),
            ("resource", &raw.resource),
        ];
        for (key, value) in named {
            if let Some(v) = value {
                match self.secret(&format!("{path}.{key}"), v) {
                    Some(s) => params.push((key.to_string(), s)),
                    None => ok = false,
                }
            }
        }
        let extra = self.secret_table(&format!("{path}.extra_params"), &raw.extra_params, |key| {
            (key.is_empty() || RESERVED_PARAMS.contains(&key))
                .then_some("is set by countersign itself and cannot be an extra parameter")
        });
        params.extend(extra.unwrap_or_else(|| {
            ok = false;
            Vec::new()
        }));
        ok.then_some(params)
    }

    fn token_store(
        &mut self,
        path: &str,
        raw: &RawOAuth2,
        grant: Option<&Grant>,
    ) -> Option<Option<TokenStoreConfig>> {
        let key = raw
            .store_key
            .as_deref()
            .and_then(|k| self.store_key(&format!("{path}.store_key"), k));
        // An unknown grant is reported once, at `grant`, not again here.
        let grant = grant?;
        if let Grant::AuthorizationCode(_) = grant {
            return self.session_store(path, raw, key);
        }
        let refresh = matches!(grant, Grant::RefreshToken { .. });
        match (&raw.token_store, refresh) {
            (None, true) if self.shared_store.is_some() => Some(None),
            (None, true) => {
                self.problem(
                    format!("{path}.token_store"),
                    "missing; the refresh_token grant needs a file that keeps the current refresh token across restarts",
                );
                None
            }
            (Some(_), false) => {
                self.problem(
                    format!("{path}.token_store"),
                    "is only used with grant = \"refresh_token\"",
                );
                None
            }
            (None, false) => {
                if raw.store_key.is_some() {
                    self.problem(format!("{path}.store_key"), "is only used with token_store");
                }
                Some(None)
            }
            (Some(file), true) => {
                let full = self.base_dir.join(file);
                let dir_ok = full.parent().is_some_and(|d| d.is_dir()) && !full.is_dir();
                if !dir_ok {
                    self.problem(
                        format!("{path}.token_store"),
                        "must name a file in an existing folder",
                    );
                    return None;
                }
                if raw.store_key.is_some() && key.is_none() {
                    return None;
                }
                Some(Some(TokenStoreConfig { path: full, key }))
            }
        }
    }

    pub(super) fn store_key(&mut self, path: &str, text: &str) -> Option<SecretBytes> {
        let secret = self.secret(path, text)?;
        let decoded = base64::engine::general_purpose::STANDARD.decode(secret.expose().trim());
        match decoded {
            Ok(bytes) if bytes.len() == 32 => Some(SecretBytes::new(bytes)),
            _ => {
                self.problem(
                    path,
                    "must be 32 random bytes in base64 (e.g. from `openssl rand -base64 32`)",
                );
                None
            }
        }
    }
}

mod code_flow;
mod fapi;
pub(super) mod key;
#[cfg(test)]
mod recipes;
mod sender;
#[cfg(test)]
mod tests;
