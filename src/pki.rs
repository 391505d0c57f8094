//! Certificates and keys from files: client identities for mutual TLS, the
//! local CA that HTTPS interception mints leaf certificates from, and the
//! health checks (unreadable, mismatched, expired) run at load.

pub mod ca;
pub mod identity;
pub mod leaf;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A certificate closer than this to its end is logged as a warning.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(14 * 24 * 3600);

/// Reads every certificate in a PEM file; the message names the file.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = crate::file::read(path)
        .map_err(|e| crate::file::cannot_read("the certificate file", path, &e))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("`{}` is not valid PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("`{}` holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

/// Reads the first private key (PKCS#8, PKCS#1 RSA or SEC1 EC) in a PEM file.
/// The message names the file and never quotes its content.
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let pem =
        crate::file::read(path).map_err(|e| crate::file::cannot_read("the key file", path, &e))?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|_| {
        format!(
            "`{}` holds no PEM private key (PKCS#8, RSA or EC)",
            path.display()
        )
    })
}

/// When the certificate stops being valid.
pub fn not_after(cert: &CertificateDer<'_>) -> Result<SystemTime, String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert)
        .map_err(|e| format!("cannot parse the certificate: {e}"))?;
    let ts = parsed.validity().not_after.timestamp();
    Ok(UNIX_EPOCH + Duration::from_secs(u64::try_from(ts).unwrap_or(0)))
}

/// Refuses an expired certificate, warns about one close to expiry.
pub fn check_expiry(cert: &CertificateDer<'_>, path: &Path) -> Result<SystemTime, String> {
    let end = not_after(cert).map_err(|e| format!("`{}`: {e}", path.display()))?;
    let now = SystemTime::now();
    match end.duration_since(now) {
        Err(_) => Err(format!(
            "the certificate in `{}` expired {} ago",
            path.display(),
            human(now.duration_since(end).unwrap_or_default())
        )),
        Ok(left) => {
            if left < EXPIRY_WARNING {
                tracing::warn!(file = %path.display(), expires_in = %human(left), "certificate expires soon");
            }
            Ok(end)
        }
    }
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}
