//! `countersign store migrate`: copies what the file stores hold (each
//! refresh_token credential's `token_store` file, each authorization_code
//! credential's session folder) into the shared store `[store]` names,
//! without presenting any token, so a single-replica setup moves to
//! several replicas without anyone consenting again. Prints what it copied
//! (where from, which Redis key), never a token.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::EXIT_BAD_CONFIG;
use crate::config::{self, Config, CredentialConfig, Grant};
use crate::creds::token::store::{FileStore, FileTokenStore, RedisTokenStore, StoredGrant};

#[derive(Debug, Args)]
pub struct StoreArgs {
    #[command(subcommand)]
    command: StoreCommand,
}

#[derive(Debug, Subcommand)]
enum StoreCommand {
    /// Copy the token_store files into the [store] Redis (no token is spent).
    Migrate(MigrateArgs),
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Path to proxy.toml: its [store] and the token_store of each credential.
    #[arg(long, short, default_value = "proxy.toml", env = "COUNTERSIGN_CONFIG")]
    config: PathBuf,
    /// Overwrite Redis keys that already hold a value, and copy items
    /// Redis records as lost (their files' tokens may be spent).
    #[arg(long)]
    force: bool,
}

pub fn store(args: StoreArgs) -> ExitCode {
    let StoreCommand::Migrate(args) = args.command;
    match migrate(&args) {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err((code, message)) => {
            eprintln!("countersign store migrate: {message}");
            ExitCode::from(code)
        }
    }
}

type Failure = (u8, String);

/// One stored grant to copy.
struct Item {
    /// What it is, for the report: credential, or credential and session file.
    what: String,
    /// The Redis key it goes to.
    key: String,
    grant: StoredGrant,
}

fn migrate(args: &MigrateArgs) -> Result<Vec<String>, Failure> {
    let config = config::load(&args.config).map_err(|e| (EXIT_BAD_CONFIG, e.to_string()))?;
    let Some(shared) = config.store.clone() else {
        return Err((
            2,
            format!(
                "{} has no [store] section; add the [store] to copy into (see docs/replicas.md), keeping each credential's token_store to copy from",
                args.config.display()
            ),
        ));
    };
    let redis = RedisTokenStore::open(&shared).map_err(|e| (1, e.to_string()))?;
    let nothing = |e: &dyn std::fmt::Display| (1, format!("{e}; nothing was copied"));
    redis.ping().map_err(|e| nothing(&e))?;
    let (items, mut lines) = plan(&config, &redis).map_err(|e| (1, e))?;
    let (mut taken, mut recorded) = (Vec::new(), Vec::new());
    for item in &items {
        let version = redis.version_named(&item.key).map_err(|e| nothing(&e))?;
        if version > 0 {
            taken.push(format!("{} ({})", item.key, item.what));
        }
        if redis
            .records_named(&item.key)
            .map_err(|e| nothing(&e))?
            .any()
        {
            recorded.push(format!("{} ({})", item.key, item.what));
        }
    }
    // A key holding a value says more than its records.
    if !taken.is_empty() && !args.force {
        return Err((
            1,
            format!(
                "these Redis keys already hold a value: {}; nothing was copied. A replica may have rotated them since; --force overwrites them with the files' tokens",
                taken.join(", ")
            ),
        ));
    }
    if !recorded.is_empty() && !args.force {
        return Err((
            1,
            format!("{}; nothing was copied", refused_recorded(&recorded)),
        ));
    }
    for item in &items {
        match redis.import(&item.key, &item.grant, args.force) {
            Ok(Ok(version)) => lines.push(format!(
                "copied {} -> {} (version {version})",
                item.what, item.key
            )),
            Ok(Err(_)) => {
                return Err((
                    1,
                    format!(
                        "{} was written by someone else while copying; {} not copied (run again to see what is left)",
                        item.key, item.what
                    ),
                ))
            }
            Err(e) => return Err((1, format!("{e} ({} not copied)", item.what))),
        }
    }
    lines.push(format!(
        "{} item(s) copied into {}. With [store] set, countersign reads and writes Redis only; the token_store files are no longer read or written (remove token_store from the config, and the files once every replica runs on Redis).",
        items.len(),
        shared.url
    ));
    Ok(lines)
}

/// Why items with a record of a loss (or of spent seeds) are not copied,
/// and what `--force` would risk.
fn refused_recorded(recorded: &[String]) -> String {
    format!(
        "Redis records these items as lost with its data (or their refresh tokens as spent): {}. The files' refresh tokens are most likely spent: the replicas rotated them on Redis after the files went stale, and presenting a spent one makes a server with reuse detection revoke the whole grant. Have a person authorize again instead (a credential: set the new refresh_token and reload every replica; a session: the app authorizes it again). --force copies them anyway, at that risk, and keeps the record of spent refresh tokens",
        recorded.join(", ")
    )
}

/// What the files hold, and lines for what holds nothing. Reads every file
/// before anything is written: a damaged one stops the migration.
fn plan(config: &Config, redis: &RedisTokenStore) -> Result<(Vec<Item>, Vec<String>), String> {
    let mut items = Vec::new();
    let mut lines = Vec::new();
    let mut folders: Vec<(PathBuf, &str)> = Vec::new();
    for (name, credential) in &config.credentials {
        let CredentialConfig::OAuth2(oauth) = credential else {
            continue;
        };
        let Some(files) = &oauth.token_store else {
            continue;
        };
        let failed = |e: &dyn std::fmt::Display| format!("{e}; nothing was copied");
        match &oauth.grant {
            Grant::ClientCredentials => {}
            Grant::RefreshToken { .. } => match FileStore::new(files).load() {
                Ok(Some(grant)) => items.push(Item {
                    what: format!("credential `{name}` ({})", files.path.display()),
                    key: redis.key_name(name, None),
                    grant,
                }),
                Ok(None) => lines.push(format!(
                    "credential `{name}`: nothing stored in {}; its configured refresh_token seeds Redis on first use",
                    files.path.display()
                )),
                Err(e) => return Err(failed(&e)),
            },
            Grant::AuthorizationCode(_) => {
                let folder = std::fs::canonicalize(&files.path).unwrap_or(files.path.clone());
                if let Some((_, other)) = folders.iter().find(|(f, _)| *f == folder) {
                    return Err(format!(
                        "credentials `{other}` and `{name}` keep their sessions in one folder ({}), so a session file cannot be told apart; nothing was copied",
                        folder.display()
                    ));
                }
                folders.push((folder, name));
                let found = FileTokenStore::new(files)
                    .session_files()
                    .map_err(|e| failed(&e))?;
                if found.is_empty() {
                    lines.push(format!(
                        "credential `{name}`: no session in {}",
                        files.path.display()
                    ));
                }
                for (hash, file) in found {
                    let Some(grant) = file.load().map_err(|e| failed(&e))? else {
                        continue;
                    };
                    items.push(Item {
                        what: format!("a session of `{name}` ({})", file.path().display()),
                        key: redis.key_name(name, Some(&hash)),
                        grant,
                    });
                }
            }
        }
    }
    Ok((items, lines))
}
