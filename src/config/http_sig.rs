//! The validated settings of an `http-signature` credential (RFC 9421 HTTP
//! Message Signatures, with an RFC 9530 `Content-Digest` of the body): the
//! algorithm and its key, what the signature covers, and its parameters.
//! Only `validate` makes these; `creds::httpsig` signs with them.

use std::time::Duration;

use super::SecretBytes;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSigConfig {
    pub algorithm: HttpSigAlgorithm,
    /// Already checked to suit `algorithm`.
    pub key: HttpSigKey,
    /// The `keyid` parameter: a printable ASCII string.
    pub keyid: Option<String>,
    /// The dictionary key of the signature in `Signature-Input` and
    /// `Signature` (an RFC 8941 key; `sig1` by default).
    pub label: String,
    /// What the signature covers, in this order; distinct.
    pub components: Vec<Component>,
    /// Whether `created` (the signing time) is sent; on by default.
    pub created: bool,
    /// `expires` is `created` plus this.
    pub expires: Option<Duration>,
    /// Whether a fresh random `nonce` is sent with every signature.
    pub nonce: bool,
    /// The `tag` parameter (the application the signature is for).
    pub tag: Option<String>,
    /// Whether the `alg` parameter is sent; off by default, as RFC 9421
    /// section 7.3.6 suggests (the verifier knows the key's algorithm).
    pub alg_param: bool,
    /// The `Content-Digest` countersign computes while the body streams
    /// through the spool; set exactly when `content-digest` is covered.
    pub content_digest: Option<DigestAlg>,
}

/// The RFC 9421 algorithms countersign signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HttpSigAlgorithm {
    HmacSha256,
    Ed25519,
    EcdsaP256Sha256,
    RsaPssSha512,
    RsaV15Sha256,
}

impl HttpSigAlgorithm {
    pub const ALL: [HttpSigAlgorithm; 5] = [
        HttpSigAlgorithm::HmacSha256,
        HttpSigAlgorithm::Ed25519,
        HttpSigAlgorithm::EcdsaP256Sha256,
        HttpSigAlgorithm::RsaPssSha512,
        HttpSigAlgorithm::RsaV15Sha256,
    ];

    /// The name in RFC 9421's algorithm registry (section 6.2.2).
    pub fn as_str(self) -> &'static str {
        match self {
            HttpSigAlgorithm::HmacSha256 => "hmac-sha256",
            HttpSigAlgorithm::Ed25519 => "ed25519",
            HttpSigAlgorithm::EcdsaP256Sha256 => "ecdsa-p256-sha256",
            HttpSigAlgorithm::RsaPssSha512 => "rsa-pss-sha512",
            HttpSigAlgorithm::RsaV15Sha256 => "rsa-v1_5-sha256",
        }
    }
}

/// The signing key, as ring takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpSigKey {
    /// The shared HMAC secret.
    Hmac(SecretBytes),
    /// A PKCS#8 private key (DER).
    Pkcs8(SecretBytes),
    /// An RSA private key (PKCS#1 DER), unwrapped from a PKCS#8 file that
    /// marks it RSASSA-PSS only, which ring does not read as PKCS#8.
    RsaPkcs1(SecretBytes),
}

/// One covered component (RFC 9421 section 2).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Component {
    Method,
    TargetUri,
    Authority,
    Scheme,
    Path,
    Query,
    RequestTarget,
    /// `"@query-param";name="..."`: one query parameter's value. The name
    /// is kept as written (percent-encoded, the form-urlencoded way).
    QueryParam(String),
    /// A header field, lowercase; `content-digest` is one.
    Header(String),
}

impl Component {
    /// The component name as it appears, quoted, in the signature base.
    pub fn name(&self) -> &str {
        match self {
            Component::Method => "@method",
            Component::TargetUri => "@target-uri",
            Component::Authority => "@authority",
            Component::Scheme => "@scheme",
            Component::Path => "@path",
            Component::Query => "@query",
            Component::RequestTarget => "@request-target",
            Component::QueryParam(_) => "@query-param",
            Component::Header(name) => name,
        }
    }

    /// The component identifier as the signature carries it: the name as
    /// an RFC 8941 string, with `;name="..."` for a query parameter.
    pub fn identifier(&self) -> String {
        match self {
            Component::QueryParam(param) => format!("\"@query-param\";name=\"{param}\""),
            other => format!("\"{}\"", other.name()),
        }
    }

    /// The derived component called `name` (with its `@`), if countersign
    /// knows it.
    pub fn derived(name: &str) -> Option<Component> {
        Some(match name {
            "@method" => Component::Method,
            "@target-uri" => Component::TargetUri,
            "@authority" => Component::Authority,
            "@scheme" => Component::Scheme,
            "@path" => Component::Path,
            "@query" => Component::Query,
            "@request-target" => Component::RequestTarget,
            _ => return None,
        })
    }
}

/// The RFC 9530 digest algorithm of `Content-Digest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestAlg {
    Sha256,
    Sha512,
}

impl DigestAlg {
    /// The key in the `Content-Digest` dictionary.
    pub fn as_str(self) -> &'static str {
        match self {
            DigestAlg::Sha256 => "sha-256",
            DigestAlg::Sha512 => "sha-512",
        }
    }
}
