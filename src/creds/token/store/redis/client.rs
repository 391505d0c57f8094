//! Clients for the shared store's servers: user, password and TLS material
//! from their own `[store]` keys (never from a url), and Redis errors as
//! messages.

use crate::config::{Secret, StoreConfig};

/// A client for `config`'s url: user, password and TLS material from their
/// own keys, never from the url.
pub fn for_url(config: &StoreConfig) -> redis::RedisResult<redis::Client> {
    use redis::IntoConnectionInfo as _;
    let info = config.url.as_str().into_connection_info()?;
    let info = with_auth(info, &config.username, &config.password);
    if !config.is_tls() {
        return redis::Client::open(info);
    }
    // redis-rs builds its rustls config from the process default.
    crate::pki::provider::install();
    redis::Client::build_with_tls(info, certificates(config))
}

/// `info` with `username` and `password`, if set.
pub fn with_auth(
    info: redis::ConnectionInfo,
    username: &Option<Secret>,
    password: &Option<Secret>,
) -> redis::ConnectionInfo {
    let mut settings = info.redis_settings().clone();
    if let Some(user) = username {
        settings = settings.set_username(user.expose());
    }
    if let Some(password) = password {
        settings = settings.set_password(password.expose());
    }
    info.set_redis_settings(settings)
}

/// The trust roots and client certificate of `config`, for TLS.
pub fn certificates(config: &StoreConfig) -> redis::TlsCertificates {
    redis::TlsCertificates {
        client_tls: config
            .client_identity
            .as_ref()
            .map(|(cert, key)| redis::ClientTlsConfig {
                client_cert: cert.clone(),
                client_key: key.expose().to_vec(),
            }),
        root_cert: config.ca_pem.clone(),
    }
}

/// A Redis error as a message: its kind and text (Redis never echoes a
/// value or a password in them).
pub fn describe(e: &redis::RedisError) -> String {
    e.to_string()
}
