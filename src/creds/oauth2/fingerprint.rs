//! What makes two OAuth2 credentials the same for the token registry: every
//! field that shapes their tokens. An unchanged credential keeps its token
//! (and its sessions) across reloads; any change gets a new one at once.

use crate::config::{ClientAuth, Grant, OAuth2Config};
use crate::creds::token::Fingerprint;
use crate::upstream::UpstreamSettings;

/// Every field of an OAuth2 credential.
pub fn fingerprint(name: &str, c: &OAuth2Config, s: UpstreamSettings) -> [u8; 32] {
    let mut h = Fingerprint::default();
    let mut feed = |tag: &str, bytes: &[u8]| h.feed(tag, bytes);
    feed("name", name.as_bytes());
    feed(
        "token_url",
        c.token_url
            .as_ref()
            .map_or(String::new(), |u| u.to_string())
            .as_bytes(),
    );
    feed("issuer", c.issuer.as_deref().unwrap_or("").as_bytes());
    feed("client_id", c.client_id.as_bytes());
    match &c.grant {
        Grant::ClientCredentials => feed("grant", b"client_credentials"),
        Grant::RefreshToken { seed } => {
            feed("grant", b"refresh_token");
            feed(
                "seed",
                seed.as_ref().map_or(&b""[..], |s| s.expose().as_bytes()),
            );
        }
        Grant::AuthorizationCode(flow) => {
            feed("grant", b"authorization_code");
            feed(
                "authorize_url",
                flow.authorize_url
                    .as_ref()
                    .map_or(String::new(), |u| u.to_string())
                    .as_bytes(),
            );
            feed("redirect_uri", flow.redirect_uri.as_bytes());
            let fapi = &flow.fapi;
            feed(
                "fapi",
                format!(
                    "{} {} {} {:?}",
                    fapi.request_object.is_some(),
                    fapi.par,
                    fapi.hybrid,
                    fapi.response_mode
                )
                .as_bytes(),
            );
            if let Some(key) = &fapi.request_object {
                feed("request_object_key", key.pkcs8.expose());
                feed("request_object_alg", key.alg.as_str().as_bytes());
                feed(
                    "request_object_kid",
                    key.kid.as_deref().unwrap_or("").as_bytes(),
                );
                feed("request_object_aud", key.audience.as_bytes());
                feed(
                    "request_object_lifetime",
                    &fapi.request_object_lifetime.as_millis().to_be_bytes(),
                );
            }
            feed("session_header", flow.session_header.as_str().as_bytes());
            feed(
                "session_param",
                flow.session_param.as_deref().unwrap_or("").as_bytes(),
            );
            feed(
                "authorize_secret",
                flow.authorize_secret
                    .as_ref()
                    .map_or("", |s| s.expose())
                    .as_bytes(),
            );
            for fact in &flow.session_facts {
                feed("session_fact", fact.as_bytes());
            }
            feed(
                "revocation_url",
                flow.revocation_url
                    .as_ref()
                    .map_or(String::new(), |u| u.to_string())
                    .as_bytes(),
            );
        }
    }
    match &c.client_auth {
        ClientAuth::SecretBasic(secret) => feed("basic", secret.expose().as_bytes()),
        ClientAuth::SecretPost(secret) => feed("post", secret.expose().as_bytes()),
        ClientAuth::PrivateKeyJwt(k) => {
            feed("jwt", k.pkcs8.expose());
            feed("alg", k.alg.as_str().as_bytes());
            feed("kid", k.kid.as_deref().unwrap_or("").as_bytes());
            feed("aud", k.audience.as_bytes());
        }
        ClientAuth::TlsClientAuth { self_signed } => feed("tls", &[u8::from(*self_signed)]),
    }
    for (name, value) in &c.params {
        feed("param", name.as_bytes());
        feed("value", value.expose().as_bytes());
    }
    if let Some(store) = &c.token_store {
        feed("store", store.path.as_os_str().as_encoded_bytes());
        feed(
            "store_key",
            store.key.as_ref().map_or(&[][..], |k| k.expose()),
        );
    }
    // A token bound to a key or certificate is useless without it.
    feed("dpop", c.dpop.map_or("", |a| a.as_str()).as_bytes());
    feed("certificate_bound", &[u8::from(c.certificate_bound)]);
    feed("refresh_at", &c.refresh_at.to_le_bytes());
    feed("wait", &c.wait_for_token.as_nanos().to_le_bytes());
    h.shared_store(c.shared_store.as_deref());
    h.connection(&c.ca_roots, c.client_identity.as_ref(), s);
    h.finish()
}
