//! `countersign token`: the state of an OAuth2 credential's token (expiry,
//! age, scope), fetching one for client_credentials, or a key from an
//! `issued-key` credential's issuer; the token itself only with `--reveal`.
//! Grants that rotate a refresh token are only inspected: fetching here
//! would spend the refresh token the running countersign holds. With
//! `[store]` set, every credential that fetches tokens is only inspected,
//! in the shared store (`shared`): the fleet renews under its lease.

mod shared;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use super::EXIT_BAD_CONFIG;
use crate::config::{self, Config, CredentialConfig, Grant, OAuth2Config};
use crate::creds::{Credential, TokenRegistry};
use crate::egress::{EgressPolicy, OwnAddrs};
use crate::upstream::UpstreamSettings;

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// Path to proxy.toml.
    #[arg(long, short, default_value = "proxy.toml", env = "COUNTERSIGN_CONFIG")]
    config: PathBuf,
    /// The credential's name ([credential.NAME]).
    #[arg(long)]
    credential: String,
    /// Also print the access token itself.
    #[arg(long)]
    reveal: bool,
}

pub fn token(args: TokenArgs) -> ExitCode {
    match token_inner(&args) {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err((code, message)) => {
            eprintln!("countersign token: {message}");
            ExitCode::from(code)
        }
    }
}

type Failure = (u8, String);

fn token_inner(args: &TokenArgs) -> Result<Vec<String>, Failure> {
    let config = config::load(&args.config).map_err(|e| (EXIT_BAD_CONFIG, e.to_string()))?;
    let name = &args.credential;
    if let (Some(store), Some(credential)) = (&config.store, config.credentials.get(name)) {
        if matches!(
            credential,
            CredentialConfig::OAuth2(_) | CredentialConfig::IssuedKey(_)
        ) {
            if args.reveal {
                return Err((
                    2,
                    "--reveal: with [store] set, `countersign token` only reads the shared store and never prints a token (the replicas renew under the fleet's lease; a fetch here would be one more renewal)".into(),
                ));
            }
            let mut lines = heading(name, credential);
            lines.extend(shared::state(store, name, credential)?);
            return Ok(lines);
        }
    }
    match config.credentials.get(name) {
        Some(credential @ CredentialConfig::OAuth2(oauth)) => {
            let mut lines = heading(name, credential);
            if !matches!(oauth.grant, Grant::ClientCredentials) {
                lines.extend(stored_state(oauth));
                return Ok(lines);
            }
            lines.extend(fetch(&config, name, args.reveal)?);
            Ok(lines)
        }
        Some(credential @ CredentialConfig::IssuedKey(_)) => {
            let mut lines = heading(name, credential);
            lines.extend(fetch(&config, name, args.reveal)?);
            Ok(lines)
        }
        Some(_) => Err((2, format!("credential `{name}` does not fetch tokens"))),
        None => Err((2, format!("no credential named `{name}` in the config"))),
    }
}

/// What credential `name` is and where it gets its tokens.
fn heading(name: &str, credential: &CredentialConfig) -> Vec<String> {
    match credential {
        CredentialConfig::OAuth2(oauth) => {
            let mut lines = vec![
                format!("credential: {name} (oauth2, {})", grant_name(&oauth.grant)),
                match (&oauth.token_url, &oauth.issuer) {
                    (Some(url), _) => format!("token endpoint: {url}"),
                    (None, issuer) => format!(
                        "token endpoint: from the discovery document of {}",
                        issuer.as_deref().unwrap_or("?")
                    ),
                },
            ];
            if let Some((_, scope)) = oauth.params.iter().find(|(k, _)| k == "scope") {
                lines.push(format!("scope: {}", scope.expose()));
            }
            lines
        }
        CredentialConfig::IssuedKey(issued) => vec![
            format!("credential: {name} (issued-key)"),
            format!("issuing endpoint: {}", issued.issue_url),
        ],
        _ => vec![format!("credential: {name}")],
    }
}

/// Builds credential `name` as `run` would, has it fetch a token (or key)
/// for a request, and describes what it got.
fn fetch(config: &Config, name: &str, reveal: bool) -> Result<Vec<String>, Failure> {
    let settings = UpstreamSettings {
        connect_timeout: config.proxy.connect_timeout,
        response_timeout: config.proxy.response_timeout,
        idle_timeout: config.proxy.idle_timeout,
        max_idle: config.proxy.idle_connections,
    };
    let egress = Arc::new(EgressPolicy::new(
        config.egress.clone(),
        OwnAddrs::default(),
    ));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| (1, format!("cannot start the runtime: {e}")))?;
    rt.block_on(async {
        let tokens = TokenRegistry::new();
        let cred = Credential::build(name, &config.credentials[name], &tokens, settings, &egress)
            .map_err(|p| (EXIT_BAD_CONFIG, p.to_string()))?;
        let (mut parts, ()) = http::Request::new(()).into_parts();
        let fetched = cred
            .apply(
                &mut parts,
                crate::creds::BodyDigest::Absent,
                &Default::default(),
            )
            .await;
        let stats = cred.token_stats().unwrap_or_default();
        tokens.shutdown().await;
        fetched.map_err(|e| (1, format!("no token: {e}")))?;
        let mut lines = vec!["state: valid".to_string()];
        if let Some(left) = stats.expires_in {
            lines.push(format!("expires in: {}s", left.as_secs()));
        }
        if let Some(age) = stats.age {
            lines.push(format!("age: {}s", age.as_secs()));
        }
        if let Credential::OAuth2(o) = &cred {
            if let Some(jkt) = o.dpop_thumbprint() {
                // The key dies with this process: the token shows that the
                // server binds tokens to it, and is no use to anyone.
                lines.push(format!(
                    "token_type: DPoP (bound to key {jkt}, which this command discards)"
                ));
            }
        }
        match (reveal, cred.reveal()) {
            (true, Some(token)) => lines.push(format!("token: {token}")),
            _ => lines.push("token: (hidden; --reveal prints it)".into()),
        }
        Ok(lines)
    })
}

fn grant_name(grant: &Grant) -> &'static str {
    match grant {
        Grant::ClientCredentials => "client_credentials",
        Grant::RefreshToken { .. } => "refresh_token",
        Grant::AuthorizationCode(_) => "authorization_code",
    }
}

/// What is on disk for a grant that rotates refresh tokens; nothing is fetched.
fn stored_state(oauth: &OAuth2Config) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(store) = &oauth.token_store {
        let encrypted = if store.key.is_some() {
            "encrypted"
        } else {
            "plain"
        };
        let what = match (&oauth.grant, store.path.exists()) {
            (Grant::AuthorizationCode(_), true) => {
                let sessions = std::fs::read_dir(&store.path)
                    .map(|d| d.count())
                    .unwrap_or(0);
                format!("{sessions} session(s) stored")
            }
            (_, true) => "a refresh token is stored".to_string(),
            (_, false) => "nothing stored yet".to_string(),
        };
        lines.push(format!(
            "token store: {} ({encrypted}; {what})",
            store.path.display()
        ));
    }
    lines.push("not fetched: this grant rotates refresh tokens, and fetching here would spend the one the running countersign holds; see GET /status on its control listener for expiry and age".into());
    lines
}
