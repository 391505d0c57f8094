//! `type = "hmac"`: a declarative HMAC signature. A string to sign made of
//! named parts in order, joined by a separator; an algorithm and an
//! encoding; and header templates that put the parts and the signature
//! into named headers. Recipes (`recipe = "line-pay-v3"`) are written in
//! the same keys (config/validate/hmac/recipes.rs).

use http::HeaderName;

use super::Secret;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HmacConfig {
    pub secret: Secret,
    pub api_key: Option<Secret>,
    pub algorithm: HmacAlgorithm,
    pub encoding: Encoding,
    pub separator: String,
    /// The string to sign, in order.
    pub sign: Vec<Part>,
    pub timestamp: TimestampFormat,
    pub nonce: NonceFormat,
    /// Set when `body_digest` is used.
    pub body_digest: Option<BodyDigestSpec>,
    /// What `content_type` and `body_digest` stand for when the request
    /// has no body (PayPay's `empty`); `None`: the Content-Type sent, and
    /// the digest of no bytes.
    pub no_body: Option<String>,
    pub headers: Vec<(HeaderName, Template)>,
}

/// A value of the request or of the credential, by the name the string to
/// sign and the header templates give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Method,
    Path,
    Query,
    PathWithQuery,
    Body,
    BodyDigest,
    Timestamp,
    Nonce,
    ContentType,
    ApiKey,
    Secret,
    Signature,
}

impl Field {
    pub const ALL: [(&'static str, Field); 12] = [
        ("method", Field::Method),
        ("path", Field::Path),
        ("query", Field::Query),
        ("path_with_query", Field::PathWithQuery),
        ("body", Field::Body),
        ("body_digest", Field::BodyDigest),
        ("timestamp", Field::Timestamp),
        ("nonce", Field::Nonce),
        ("content_type", Field::ContentType),
        ("api_key", Field::ApiKey),
        ("secret", Field::Secret),
        ("signature", Field::Signature),
    ];

    pub fn named(name: &str) -> Option<Field> {
        Field::ALL.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    pub fn name(self) -> &'static str {
        Field::ALL
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("?", |(n, _)| n)
    }
}

/// One part of the string to sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Field(Field),
    Text(String),
}

/// A header value: literal text and `{field}` placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(pub Vec<Piece>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Field(Field),
}

impl Template {
    pub fn fields(&self) -> impl Iterator<Item = Field> + '_ {
        self.0.iter().filter_map(|p| match p {
            Piece::Field(f) => Some(*f),
            Piece::Text(_) => None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HmacAlgorithm {
    Sha256,
    Sha512,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Base64,
    Hex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampFormat {
    /// Unix time in whole seconds.
    Unix,
    /// Unix time in milliseconds.
    UnixMillis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceFormat {
    /// A random (version 4) UUID, lowercase.
    Uuid,
    /// This many lowercase hex digits.
    Hex(usize),
    /// This many letters and digits.
    Alphanumeric(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyDigestSpec {
    pub algorithm: DigestAlgorithm,
    /// Whether the Content-Type is hashed before the body (PayPay).
    pub content_type_first: bool,
    pub encoding: Encoding,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestAlgorithm {
    Md5,
    Sha256,
}
