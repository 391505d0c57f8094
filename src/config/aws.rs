//! `type = "aws-sigv4"`: AWS Signature Version 4, with static keys or keys
//! obtained by web identity (IRSA) or the container endpoint; SigV4A as
//! an option.

use std::path::PathBuf;

use http::Uri;

use super::Secret;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSigV4Config {
    pub service: String,
    pub region: String,
    pub keys: AwsKeys,
    pub payload: AwsPayload,
    /// Whether `x-amz-content-sha256` is sent (S3 requires it).
    pub content_sha256: bool,
    pub algorithm: AwsAlgorithm,
}

/// Which signature: HMAC for one region, or ECDSA for a set of regions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwsAlgorithm {
    /// `AWS4-HMAC-SHA256`, scoped to `region`.
    SigV4,
    /// `AWS4-ECDSA-P256-SHA256` (SigV4A): the signature is good in every
    /// region of the set, sent as `X-Amz-Region-Set` (regions joined by
    /// commas, or `*`).
    SigV4A { region_set: String },
}

/// Where the access key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwsKeys {
    Static(StaticKeys),
    WebIdentity(WebIdentity),
    Container(ContainerEndpoint),
}

/// `keys = "container"`: the ECS / EKS Pod Identity credentials endpoint,
/// asked with a GET (and its authorization token, when the platform gives
/// one), renewed on the token lifecycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEndpoint {
    pub url: Uri,
    pub token: Option<ContainerToken>,
}

/// What goes in the endpoint request's `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerToken {
    /// Read afresh for every request: the platform rotates it.
    File(PathBuf),
    Value(Secret),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticKeys {
    pub access_key_id: Secret,
    pub secret_access_key: Secret,
    /// Temporary credentials' token, sent as `x-amz-security-token`.
    pub session_token: Option<Secret>,
}

/// `keys = "web-identity"`: STS `AssumeRoleWithWebIdentity` with the
/// token the platform writes to a file (EKS IRSA), renewed on the token
/// lifecycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebIdentity {
    pub role_arn: String,
    /// Read afresh for every exchange: the platform rotates it.
    pub token_file: PathBuf,
    pub sts_url: Uri,
    pub session_name: String,
}

/// What the signature says of the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsPayload {
    /// Its SHA-256, computed while it is spooled.
    Signed,
    /// `UNSIGNED-PAYLOAD` (S3 only): the body streams through unread.
    Unsigned,
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` (S3 only): the body streams
    /// through in signed `aws-chunked` chunks.
    Streaming,
}
