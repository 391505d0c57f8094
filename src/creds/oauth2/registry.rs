//! Token managers outlive snapshots: the registry (owned by the App) hands
//! each snapshot build the manager for a credential's exact content, keyed by
//! a hash of that content. An unchanged credential keeps its manager, and so
//! its token, across reloads; any change (a rotated secret, a new scope)
//! makes a new manager, so the change takes effect at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use sha2::{Digest, Sha256};

use super::endpoint::Endpoint;
use super::lifecycle::TokenManager;
use super::sessions::SessionManager;
use crate::config::{ClientAuth, Grant, IssuedKeyConfig, OAuth2Config};
use crate::egress::EgressPolicy;
use crate::upstream::UpstreamSettings;

#[derive(Debug, Default)]
pub struct TokenRegistry {
    /// Weak: a manager lives as long as some snapshot uses it.
    managers: Mutex<HashMap<[u8; 32], Weak<TokenManager>>>,
    /// Authorization-code credentials, by the same kind of key.
    sessions: Mutex<HashMap<[u8; 32], Weak<SessionManager>>>,
    /// Set by `shutdown`: a stopped App starts no new renewals.
    closed: AtomicBool,
}

impl TokenRegistry {
    pub fn new() -> TokenRegistry {
        TokenRegistry::default()
    }

    /// The manager for OAuth2 credential `name` with this content, started
    /// if new. Errors are `(key, message)` under `credential.NAME`.
    pub fn manager(
        &self,
        name: &str,
        config: &OAuth2Config,
        settings: UpstreamSettings,
        egress: &Arc<EgressPolicy>,
    ) -> Result<Arc<TokenManager>, (&'static str, String)> {
        self.get_or_start(fingerprint(name, config, settings), || {
            TokenManager::start(name, config, settings, Arc::clone(egress))
        })
    }

    /// The manager for issued-key credential `name` with this content.
    pub fn issued(
        &self,
        name: &str,
        config: &IssuedKeyConfig,
        settings: UpstreamSettings,
        egress: &Arc<EgressPolicy>,
    ) -> Result<Arc<TokenManager>, (&'static str, String)> {
        let key = crate::creds::issued::fingerprint(name, config, settings);
        self.get_or_start(key, || {
            TokenManager::start_issued(name, config, settings, Arc::clone(egress))
        })
    }

    fn get_or_start(
        &self,
        key: [u8; 32],
        start: impl FnOnce() -> Result<TokenManager, (&'static str, String)>,
    ) -> Result<Arc<TokenManager>, (&'static str, String)> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(("", "countersign is stopping".to_string()));
        }
        let mut managers = self.managers.lock().unwrap_or_else(|p| p.into_inner());
        managers.retain(|_, m| m.strong_count() > 0);
        if let Some(m) = managers.get(&key).and_then(Weak::upgrade) {
            return Ok(m);
        }
        let manager = Arc::new(start()?);
        managers.insert(key, Arc::downgrade(&manager));
        Ok(manager)
    }

    /// The session manager of an authorization-code credential, kept (with
    /// its sessions and pending authorizations) while the content is unchanged.
    pub fn sessions(
        &self,
        name: &str,
        config: &OAuth2Config,
        settings: UpstreamSettings,
        egress: &Arc<EgressPolicy>,
    ) -> Result<Arc<SessionManager>, (&'static str, String)> {
        let Grant::AuthorizationCode(flow) = &config.grant else {
            return Err(("grant", "not an authorization_code credential".into()));
        };
        if self.closed.load(Ordering::SeqCst) {
            return Err(("", "countersign is stopping".to_string()));
        }
        let key = fingerprint(name, config, settings);
        let mut all = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|_, m| m.strong_count() > 0);
        if let Some(m) = all.get(&key).and_then(Weak::upgrade) {
            return Ok(m);
        }
        let endpoint = Endpoint::new(config, settings, Arc::clone(egress)).map_err(|e| ("", e))?;
        let manager = Arc::new(SessionManager::new(name, config, flow, endpoint)?);
        all.insert(key, Arc::downgrade(&manager));
        Ok(manager)
    }

    /// Stops every manager's renewals and waits for token requests under
    /// way to finish, so a rotated refresh token is stored before exit.
    pub async fn shutdown(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let live: Vec<Arc<TokenManager>> = {
            let managers = self.managers.lock().unwrap_or_else(|p| p.into_inner());
            managers.values().filter_map(Weak::upgrade).collect()
        };
        let sessions: Vec<Arc<SessionManager>> = {
            let all = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
            all.values().filter_map(Weak::upgrade).collect()
        };
        for m in &live {
            m.stop();
        }
        for s in &sessions {
            s.stop();
        }
        for m in &live {
            m.stopped().await;
        }
        for s in &sessions {
            s.stopped().await;
        }
    }
}

/// A SHA-256 over tagged, length-prefixed fields, so that no two different
/// credentials can feed the same bytes.
#[derive(Default)]
pub struct Fingerprint(Sha256);

impl Fingerprint {
    pub fn feed(&mut self, tag: &str, bytes: &[u8]) {
        for part in [tag.as_bytes(), bytes] {
            self.0.update((part.len() as u64).to_le_bytes());
            self.0.update(part);
        }
    }

    /// The trust roots, client certificate and upstream timeouts every
    /// token source's connections are made with.
    pub fn connection(
        &mut self,
        roots: &[rustls_pki_types::CertificateDer<'static>],
        identity: Option<&crate::pki::identity::ClientIdentity>,
        s: UpstreamSettings,
    ) {
        // A rotated client certificate is a new credential: new connections.
        for cert in identity.iter().flat_map(|id| id.key.cert.iter()) {
            self.feed("client_cert", cert.as_ref());
        }
        for root in roots {
            self.feed("ca", root.as_ref());
        }
        for d in [s.connect_timeout, s.response_timeout, s.idle_timeout] {
            self.feed("timeout", &d.as_nanos().to_le_bytes());
        }
    }

    pub fn finish(self) -> [u8; 32] {
        self.0.finalize().into()
    }
}

/// Every field of an OAuth2 credential.
fn fingerprint(name: &str, c: &OAuth2Config, s: UpstreamSettings) -> [u8; 32] {
    let mut h = Fingerprint::default();
    let mut feed = |tag: &str, bytes: &[u8]| h.feed(tag, bytes);
    feed("name", name.as_bytes());
    feed("token_url", c.token_url.to_string().as_bytes());
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
            feed("authorize_url", flow.authorize_url.to_string().as_bytes());
            feed("redirect_uri", flow.redirect_uri.as_bytes());
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
        ClientAuth::TlsClientAuth => feed("tls", b""),
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
    feed("refresh_at", &c.refresh_at.to_le_bytes());
    feed("wait", &c.wait_for_token.as_nanos().to_le_bytes());
    h.connection(&c.ca_roots, c.client_identity.as_ref(), s);
    h.finish()
}
