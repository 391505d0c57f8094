//! `type = "aws-sigv4"`: AWS Signature Version 4 with static credentials.

use super::Secret;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSigV4Config {
    pub service: String,
    pub region: String,
    pub access_key_id: Secret,
    pub secret_access_key: Secret,
    /// Temporary credentials' token, sent as `x-amz-security-token`.
    pub session_token: Option<Secret>,
    pub payload: AwsPayload,
    /// Whether `x-amz-content-sha256` is sent (S3 requires it).
    pub content_sha256: bool,
}

/// What the signature says of the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsPayload {
    /// Its SHA-256, computed while it is spooled.
    Signed,
    /// `UNSIGNED-PAYLOAD` (S3 only): the body streams through unread.
    Unsigned,
}
