//! The `private_key_jwt` keys of an `oauth2` credential: the PKCS#8 PEM
//! file, the algorithm, and a check that ring can sign with that key for it.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;

use crate::config::raw::RawOAuth2;
use crate::config::validate::Checker;
use crate::config::{JwtKey, SecretBytes, SigningAlg};

impl Checker<'_> {
    pub(super) fn jwt_key(
        &mut self,
        path: &str,
        raw: &RawOAuth2,
        default_audience: Option<&str>,
    ) -> Option<JwtKey> {
        let alg = match raw.signing_alg.as_deref() {
            Some("RS256") => Some(SigningAlg::Rs256),
            Some("PS256") => Some(SigningAlg::Ps256),
            Some("ES256") => Some(SigningAlg::Es256),
            Some(_) => {
                self.problem(
                    format!("{path}.signing_alg"),
                    "is not supported; use \"RS256\", \"PS256\" or \"ES256\"",
                );
                None
            }
            None => {
                self.problem(
                    format!("{path}.signing_alg"),
                    "missing; use \"RS256\", \"PS256\" or \"ES256\"",
                );
                None
            }
        };
        let key_path = format!("{path}.private_key_file");
        let pkcs8 = match raw.private_key_file.as_deref() {
            Some(file) => self.private_key(&key_path, file),
            None => {
                self.problem(&key_path, "missing; a PKCS#8 PEM private key file");
                None
            }
        };
        if let (Some(der), Some(alg)) = (&pkcs8, alg) {
            if let Err(e) = key_suits(der.expose(), alg) {
                self.problem(&key_path, e);
            }
        }
        let audience = match (&raw.assertion_audience, default_audience) {
            (Some(a), _) => a.clone(),
            (None, Some(u)) => u.to_string(),
            (None, None) => String::new(),
        };
        Some(JwtKey {
            pkcs8: pkcs8?,
            alg: alg?,
            kid: raw.kid.clone(),
            audience,
        })
    }

    /// Reads a PKCS#8 PEM key (also jws-detached's and http-signature's
    /// `private_key_file`). Messages name the file, never its content.
    pub(in crate::config::validate) fn private_key(
        &mut self,
        path: &str,
        file: &str,
    ) -> Option<SecretBytes> {
        let full = self.base_dir.join(file);
        self.other_files.push(full.clone());
        let pem = match crate::files::read(&full) {
            Ok(pem) => pem,
            Err(e) => {
                self.problem(path, crate::files::cannot_read("the key file", &full, &e));
                return None;
            }
        };
        match PrivateKeyDer::from_pem_slice(&pem) {
            Ok(PrivateKeyDer::Pkcs8(der)) => Some(SecretBytes::new(der.secret_pkcs8_der())),
            Ok(_) => {
                self.problem(
                    path,
                    format!("`{}` is not a PKCS#8 key (BEGIN PRIVATE KEY); convert it with `openssl pkcs8 -topk8 -nocrypt`", full.display()),
                );
                None
            }
            Err(_) => {
                self.problem(
                    path,
                    format!("`{}` holds no PEM private key", full.display()),
                );
                None
            }
        }
    }
}

/// Whether ring accepts `pkcs8` for `alg` (RSA of 2048 to 8192 bits, or
/// P-256). Also used by jws-detached.
pub(in crate::config::validate) fn key_suits(pkcs8: &[u8], alg: SigningAlg) -> Result<(), String> {
    match alg {
        SigningAlg::Rs256 | SigningAlg::Ps256 => ring::signature::RsaKeyPair::from_pkcs8(pkcs8)
            .map(|_| ())
            .map_err(|e| format!("is not an RSA key usable for {} ({e})", alg.as_str())),
        SigningAlg::Es256 => ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8,
            crate::random::generator(),
        )
        .map(|_| ())
        .map_err(|e| format!("is not a P-256 EC key usable for ES256 ({e})")),
    }
}
