//! Credentials: what a route adds to a request so the upstream accepts it.
//! Each kind lives in its own module behind the small interface below; the
//! proxy asks whether the body is needed, feeds it through the hash the
//! credential starts, and then lets the credential write its headers.

mod header;
mod paypay;

use http::request::Parts;
use http::HeaderName;

use crate::config::CredentialConfig;

pub use paypay::{BodyDigest, BodyHash, PayPayOpa};

/// A credential built from its validated config.
#[derive(Debug)]
pub enum Credential {
    PayPayOpa(PayPayOpa),
    Header(header::StaticHeaders),
}

/// Values fixed by the caller instead of drawn at signing time, so that
/// `countersign sign` can reproduce a known signature.
#[derive(Debug, Default, Clone)]
pub struct SignParams {
    pub nonce: Option<String>,
    pub epoch: Option<u64>,
}

/// Why a credential could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum CredError {
    /// The request lacks something the scheme signs; the app must send it.
    #[error("{0}")]
    Request(String),
}

impl Credential {
    pub fn from_config(config: &CredentialConfig) -> Credential {
        match config {
            CredentialConfig::PayPayOpa {
                api_key,
                api_secret,
                nonce_length,
            } => Credential::PayPayOpa(PayPayOpa::new(
                api_key.clone(),
                api_secret.clone(),
                *nonce_length,
            )),
            CredentialConfig::Header { headers } => {
                Credential::Header(header::StaticHeaders::new(headers.clone()))
            }
        }
    }

    /// The short type name used in logs and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Credential::PayPayOpa(_) => "paypay-opa",
            Credential::Header(_) => "header",
        }
    }

    /// Whether the credential can sign now. Static kinds always can; kinds
    /// that fetch a token are ready once they hold one.
    pub fn is_ready(&self) -> bool {
        match self {
            Credential::PayPayOpa(_) | Credential::Header(_) => true,
        }
    }

    /// Headers this credential writes; any the app sent are removed first so
    /// they are replaced, never duplicated.
    pub fn header_names(&self) -> Vec<HeaderName> {
        match self {
            Credential::PayPayOpa(_) => vec![http::header::AUTHORIZATION],
            Credential::Header(h) => h.names(),
        }
    }

    /// Starts the hash of the body when the scheme signs it; `None` means the
    /// body may stream straight through.
    pub fn body_hash(&self, parts: &Parts) -> Option<BodyHash> {
        match self {
            Credential::PayPayOpa(p) => Some(p.body_hash(parts)),
            Credential::Header(_) => None,
        }
    }

    /// Writes the credential's headers. `digest` is what `body_hash` was fed
    /// (or `BodyDigest::Absent` for kinds that do not need the body). Nothing
    /// may change the request after this returns.
    pub async fn apply(
        &self,
        parts: &mut Parts,
        digest: BodyDigest,
        params: &SignParams,
    ) -> Result<(), CredError> {
        match self {
            Credential::PayPayOpa(p) => p.apply(parts, digest, params),
            Credential::Header(h) => {
                h.apply(parts);
                Ok(())
            }
        }
    }
}
