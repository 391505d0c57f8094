//! The key of an `http-signature` credential: the HMAC secret (a secret
//! reference, as text, base64 or hex), or a PKCS#8 PEM private key file,
//! checked here to be one ring can sign with for the algorithm.

use base64::Engine as _;

use super::super::super::raw::RawHttpSignature;
use super::super::super::{HttpSigAlgorithm, HttpSigKey, SecretBytes};
use super::super::Checker;

/// The DER of the OID 1.2.840.113549.1.1.10, id-RSASSA-PSS.
const RSASSA_PSS_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];

impl Checker<'_> {
    pub(super) fn http_sig_key(
        &mut self,
        path: &str,
        alg: HttpSigAlgorithm,
        raw: &RawHttpSignature,
    ) -> Option<HttpSigKey> {
        let file_key = format!("{path}.private_key_file");
        let secret_key = format!("{path}.secret");
        if alg == HttpSigAlgorithm::HmacSha256 {
            if raw.private_key_file.is_some() {
                self.problem(
                    &file_key,
                    "is for the asymmetric algorithms; hmac-sha256 takes `secret`",
                );
            }
            let Some(text) = raw.secret.as_deref() else {
                self.problem(
                    &secret_key,
                    "missing; hmac-sha256 needs the shared secret, e.g. \"${env:PARTNER_HMAC_SECRET}\"",
                );
                return None;
            };
            let secret = self.secret(&secret_key, text)?;
            let text = secret.expose();
            let bytes = match raw.secret_encoding.as_deref() {
                None | Some("text") => Some(text.as_bytes().to_vec()),
                Some("base64") => base64::engine::general_purpose::STANDARD
                    .decode(text.trim())
                    .ok(),
                Some("hex") => hex_decode(text.trim()),
                Some(_) => {
                    self.problem(
                        format!("{path}.secret_encoding"),
                        "must be \"text\", \"base64\" or \"hex\"",
                    );
                    return None;
                }
            };
            return match bytes {
                Some(b) if !b.is_empty() => Some(HttpSigKey::Hmac(SecretBytes::new(b))),
                _ => {
                    self.problem(
                        &secret_key,
                        format!(
                            "is not valid {} (secret_encoding)",
                            raw.secret_encoding.as_deref().unwrap_or("text")
                        ),
                    );
                    None
                }
            };
        }
        if raw.secret.is_some() {
            self.problem(
                &secret_key,
                format!(
                    "is for hmac-sha256; {} takes `private_key_file`",
                    alg.as_str()
                ),
            );
        }
        if raw.secret_encoding.is_some() {
            self.problem(format!("{path}.secret_encoding"), "is for hmac-sha256");
        }
        let Some(file) = raw.private_key_file.as_deref() else {
            self.problem(
                &file_key,
                format!(
                    "missing; {} needs a PKCS#8 PEM private key file",
                    alg.as_str()
                ),
            );
            return None;
        };
        let der = self.private_key(&file_key, file)?;
        match suits(der.expose(), alg) {
            Ok(Form::Pkcs8) => Some(HttpSigKey::Pkcs8(der)),
            Ok(Form::RsaPkcs1(inner)) => Some(HttpSigKey::RsaPkcs1(SecretBytes::new(inner))),
            Err(e) => {
                self.problem(&file_key, e);
                None
            }
        }
    }
}

enum Form {
    Pkcs8,
    /// The RSAPrivateKey inside an RSASSA-PSS PKCS#8 wrapper.
    RsaPkcs1(Vec<u8>),
}

/// Whether ring can sign `alg` with `pkcs8`; the message says what the key
/// is not (never anything of its content).
fn suits(pkcs8: &[u8], alg: HttpSigAlgorithm) -> Result<Form, String> {
    use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair};
    let name = alg.as_str();
    match alg {
        HttpSigAlgorithm::HmacSha256 => Err("hmac-sha256 takes no key file".into()),
        HttpSigAlgorithm::Ed25519 => Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
            .map(|_| Form::Pkcs8)
            .map_err(|e| format!("is not an Ed25519 key usable for {name} ({e})")),
        HttpSigAlgorithm::EcdsaP256Sha256 => EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8,
            crate::random::generator(),
        )
        .map(|_| Form::Pkcs8)
        .map_err(|e| format!("is not a P-256 EC key usable for {name} ({e})")),
        HttpSigAlgorithm::RsaPssSha512 | HttpSigAlgorithm::RsaV15Sha256 => {
            match RsaKeyPair::from_pkcs8(pkcs8) {
                Ok(_) => Ok(Form::Pkcs8),
                Err(e) => match pss_only(pkcs8) {
                    Some(_) if alg == HttpSigAlgorithm::RsaV15Sha256 => Err(format!(
                        "is an RSASSA-PSS-only key; it cannot sign {name} (use rsa-pss-sha512, or an rsaEncryption key)"
                    )),
                    Some(inner) => RsaKeyPair::from_der(inner)
                        .map(|_| Form::RsaPkcs1(inner.to_vec()))
                        .map_err(|e| format!("is not an RSA key usable for {name} ({e})")),
                    None => Err(format!("is not an RSA key usable for {name} ({e})")),
                },
            }
        }
    }
}

/// The RSAPrivateKey of a PKCS#8 key whose algorithm is id-RSASSA-PSS
/// (what `openssl genpkey -algorithm RSA-PSS` writes, and RFC 9421's
/// test-key-rsa-pss); `None` for anything else.
fn pss_only(der: &[u8]) -> Option<&[u8]> {
    let (tag, body, _) = tlv(der)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, _version, rest) = tlv(body)?;
    if tag != 0x02 {
        return None;
    }
    let (tag, alg_id, rest) = tlv(rest)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, oid, _) = tlv(alg_id)?;
    if tag != 0x06 || oid != RSASSA_PSS_OID {
        return None;
    }
    let (tag, key, _) = tlv(rest)?;
    (tag == 0x04).then_some(key)
}

/// One DER tag-length-value: (tag, value, what follows).
fn tlv(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}
