//! The settings of an hmac template: encodings, the nonce, the body digest.

use super::super::super::{BodyDigestSpec, DigestAlgorithm, Encoding, NonceFormat};
use super::super::Checker;
use super::RawBodyDigest;

impl Checker<'_> {
    pub(super) fn encoding(&mut self, path: &str, raw: Option<&str>) -> Encoding {
        match raw {
            None | Some("base64") => Encoding::Base64,
            Some("hex") => Encoding::Hex,
            Some(_) => {
                self.problem(path, "must be \"base64\" or \"hex\"");
                Encoding::Base64
            }
        }
    }

    pub(super) fn nonce_format(
        &mut self,
        path: &str,
        raw: Option<&str>,
        length: Option<i64>,
    ) -> NonceFormat {
        let length = match length {
            None => None,
            Some(n @ 8..=64) => Some(n as usize),
            Some(_) => {
                self.problem(format!("{path}.nonce_length"), "must be between 8 and 64");
                None
            }
        };
        match raw {
            None | Some("hex") => NonceFormat::Hex(length.unwrap_or(32)),
            Some("alphanumeric") => NonceFormat::Alphanumeric(length.unwrap_or(16)),
            Some("uuid") => {
                if length.is_some() {
                    self.problem(
                        format!("{path}.nonce_length"),
                        "does not apply to nonce = \"uuid\" (always 36 characters)",
                    );
                }
                NonceFormat::Uuid
            }
            Some(_) => {
                self.problem(
                    format!("{path}.nonce"),
                    "must be \"uuid\", \"hex\" or \"alphanumeric\"",
                );
                NonceFormat::Uuid
            }
        }
    }

    pub(super) fn body_digest(
        &mut self,
        path: &str,
        raw: &RawBodyDigest,
    ) -> Option<BodyDigestSpec> {
        let algorithm = match raw.algorithm.as_deref() {
            Some("md5") => Some(DigestAlgorithm::Md5),
            Some("sha256") => Some(DigestAlgorithm::Sha256),
            Some(_) => {
                self.problem(format!("{path}.algorithm"), "must be \"md5\" or \"sha256\"");
                None
            }
            None => {
                self.problem(
                    format!("{path}.algorithm"),
                    "missing; \"md5\" or \"sha256\"",
                );
                None
            }
        };
        let content_type_first = match raw.over.as_deref() {
            None | Some("body") => false,
            Some("content-type-and-body") => true,
            Some(_) => {
                self.problem(
                    format!("{path}.over"),
                    "must be \"body\" or \"content-type-and-body\"",
                );
                false
            }
        };
        let encoding = self.encoding(&format!("{path}.encoding"), raw.encoding.as_deref());
        Some(BodyDigestSpec {
            algorithm: algorithm?,
            content_type_first,
            encoding,
        })
    }
}
