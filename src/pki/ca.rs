//! The local CA that signs interception leaf certificates: loaded from files,
//! or created by `countersign ca init`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls_pki_types::CertificateDer;

use super::{check_expiry, read_certs};

pub struct LocalCa {
    pub issuer: Issuer<'static, KeyPair>,
    pub cert: CertificateDer<'static>,
    pub not_after: SystemTime,
}

impl std::fmt::Debug for LocalCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCa")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl LocalCa {
    pub fn load(cert_file: &Path, key_file: &Path) -> Result<LocalCa, String> {
        let cert = read_certs(cert_file)?.remove(0);
        let not_after = check_expiry(&cert, cert_file)?;
        let key_pem = crate::file::read_text(key_file)
            .map_err(|e| crate::file::cannot_read("the CA key file", key_file, &e))?;
        let key = KeyPair::from_pem(&key_pem)
            .map_err(|_| format!("`{}` holds no usable PEM private key", key_file.display()))?;
        let spki_matches = x509_parser::parse_x509_certificate(&cert)
            .map(|(_, c)| {
                c.public_key().raw == rcgen::PublicKeyData::subject_public_key_info(&key).as_slice()
            })
            .unwrap_or(false);
        if !spki_matches {
            return Err(format!(
                "the key in `{}` does not match the CA certificate in `{}`",
                key_file.display(),
                cert_file.display()
            ));
        }
        let issuer = Issuer::from_ca_cert_der(&cert, key)
            .map_err(|e| format!("`{}` cannot be used as a CA: {e}", cert_file.display()))?;
        Ok(LocalCa {
            issuer,
            cert,
            not_after,
        })
    }
}

/// Files written by `ca init`.
pub struct CaFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Creates a new CA (ECDSA P-256, valid 10 years) in `dir`: `ca.pem` and
/// `ca-key.pem` (mode 0600). Existing files are never overwritten.
pub fn init(dir: &Path) -> Result<CaFiles, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
    let files = CaFiles {
        cert: dir.join("ca.pem"),
        key: dir.join("ca-key.pem"),
    };
    for f in [&files.cert, &files.key] {
        if f.exists() {
            return Err(format!(
                "`{}` already exists; refusing to overwrite it",
                f.display()
            ));
        }
    }
    let mut params = CertificateParams::new(Vec::new()).map_err(|e| e.to_string())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params
        .distinguished_name
        .push(DnType::CommonName, "countersign local interception CA");
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(3650);
    let key = KeyPair::generate().map_err(|e| e.to_string())?;
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    write_private(&files.key, key.serialize_pem().as_bytes())?;
    std::fs::write(&files.cert, cert.pem())
        .map_err(|e| format!("cannot write `{}`: {e}", files.cert.display()))?;
    Ok(files)
}

/// Creates `path` with mode 0600 from the start (never world-readable).
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot create `{}`: {e}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("cannot write `{}`: {e}", path.display()))
}
