//! The validated settings of an `oauth2` credential: where tokens come from,
//! how the client proves who it is, and where a refresh token is kept.
//! Only `validate` makes these; `creds::oauth2` turns them into a running
//! token manager.

use std::path::PathBuf;
use std::time::Duration;

use http::Uri;
use rustls_pki_types::CertificateDer;

use super::{Secret, SecretBytes};
use crate::pki::identity::ClientIdentity;

#[derive(Debug, Clone)]
pub struct OAuth2Config {
    /// Absolute `http` or `https` URL of the token endpoint; `None` when it
    /// comes from the `issuer`'s discovery document.
    pub token_url: Option<Uri>,
    /// The OpenID Provider's issuer identifier (`issuer`): its
    /// `.well-known/openid-configuration` names the endpoints not set
    /// explicitly, the PAR endpoint and the JWKS ID tokens are checked with.
    pub issuer: Option<String>,
    pub grant: Grant,
    pub client_id: String,
    pub client_auth: ClientAuth,
    /// `scope`, `audience`, `resource` and `extra_params`, in that order, as
    /// form parameters of every token request.
    pub params: Vec<(String, Secret)>,
    /// The files of the refresh_token and authorization_code grants
    /// (required for them without `[store]`; with it, what `store migrate`
    /// copies from).
    pub token_store: Option<TokenStoreConfig>,
    /// `[store]`, when set: where state is kept instead of `token_store`.
    pub shared_store: Option<std::sync::Arc<super::StoreConfig>>,
    /// Extra trust roots for the token endpoint, from `ca_file`.
    pub ca_roots: Vec<CertificateDer<'static>>,
    /// Client certificate presented to the token endpoint (mutual TLS, as
    /// UK open banking requires; and the proof for `tls_client_auth`).
    pub client_identity: Option<ClientIdentity>,
    /// Fraction of a token's lifetime after which it is renewed (0 < x < 1).
    pub refresh_at: f64,
    /// How long a request may wait for a first (or fresh) token.
    pub wait_for_token: Duration,
    /// `dpop = true`: tokens are DPoP-bound (RFC 9449) to a key countersign
    /// generates, with this algorithm.
    pub dpop: Option<DpopAlg>,
    /// `certificate_bound = true`: tokens are bound to `client_identity`
    /// (RFC 8705), so every route using them must present that certificate.
    pub certificate_bound: bool,
}

/// The algorithm of the DPoP key countersign generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DpopAlg {
    Es256,
    EdDsa,
}

impl DpopAlg {
    /// The JWS `alg` name.
    pub fn as_str(self) -> &'static str {
        match self {
            DpopAlg::Es256 => "ES256",
            DpopAlg::EdDsa => "EdDSA",
        }
    }
}

#[derive(Debug, Clone)]
pub enum Grant {
    ClientCredentials,
    /// `seed` is the configured `refresh_token`; once the server rotates it,
    /// the store holds the current one.
    RefreshToken {
        seed: Option<Secret>,
    },
    /// Per-user sessions: a person authorizes through the admin listener,
    /// the code is exchanged (with PKCE), and each session keeps its own
    /// tokens; `token_store` is then a folder with one file per session.
    AuthorizationCode(Box<CodeFlow>),
}

/// The authorization-code flow's settings.
#[derive(Debug, Clone)]
pub struct CodeFlow {
    /// The provider's authorization endpoint; `None` when it comes from
    /// the `issuer`'s discovery document.
    pub authorize_url: Option<Uri>,
    /// Registered with the provider; must reach countersign's admin path
    /// `/oauth2/NAME/callback`.
    pub redirect_uri: String,
    /// The request header that names the user's session; stripped before
    /// the request is forwarded.
    pub session_header: http::HeaderName,
    /// A query parameter that may name the session instead (the GMO
    /// appliance's `sessionId`); removed before forwarding.
    pub session_param: Option<String>,
    /// When set, `POST /oauth2/NAME/authorize` must carry
    /// `Authorization: Bearer <secret>`: only the app may start one.
    pub authorize_secret: Option<super::Secret>,
    /// Top-level fields of the token response the app may read back with
    /// `GET /oauth2/NAME/sessions/ID` (Korea open banking's `user_seq_no`);
    /// never a token (validation refuses those).
    pub session_facts: Vec<String>,
    /// RFC 7009 revocation endpoint: `DELETE /oauth2/NAME/sessions/ID`
    /// revokes the session's refresh token there before forgetting it.
    pub revocation_url: Option<Uri>,
    /// FAPI: signed request objects, PAR, the hybrid response.
    pub fapi: FapiFlow,
}

/// How the authorization request is sent and the response read back
/// (FAPI 1.0 Advanced, UK open banking). The default is the plain flow.
#[derive(Debug, Clone)]
pub struct FapiFlow {
    /// `request_object = "signed"`: the parameters go in a JWT (RFC 9101)
    /// signed with this key (PS256 or ES256; `audience` is
    /// `request_object_audience`, by default the issuer).
    pub request_object: Option<JwtKey>,
    /// `request_object_lifetime`: `exp` - `nbf` of each request object
    /// (5 minutes by default, at most 60 as FAPI 1.0 Advanced allows).
    pub request_object_lifetime: std::time::Duration,
    /// `par = true`: pushed to the provider's PAR endpoint (RFC 9126)
    /// first, and the browser carries only the `request_uri`.
    pub par: bool,
    /// `response_type = "code id_token"` (the hybrid flow): an ID token
    /// comes with the code and is checked before the code is exchanged.
    pub hybrid: bool,
    pub response_mode: ResponseMode,
}

/// A request object's lifetime when `request_object_lifetime` is not set.
pub const REQUEST_OBJECT_LIFETIME: std::time::Duration = std::time::Duration::from_secs(300);
/// The longest `request_object_lifetime`: FAPI 1.0 Advanced section
/// 5.2.2-13 allows at most 60 minutes between `nbf` and `exp`.
pub const REQUEST_OBJECT_LIFETIME_MAX: std::time::Duration = std::time::Duration::from_secs(3600);

impl Default for FapiFlow {
    fn default() -> FapiFlow {
        FapiFlow {
            request_object: None,
            request_object_lifetime: REQUEST_OBJECT_LIFETIME,
            par: false,
            hybrid: false,
            response_mode: ResponseMode::Default,
        }
    }
}

/// Where the provider puts its answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ResponseMode {
    /// The provider's default: the query for `code`, the fragment for
    /// `code id_token` (nothing is sent).
    #[default]
    Default,
    /// `form_post`: the provider's page POSTs the answer to the callback.
    FormPost,
    /// `jwt` (JARM): the answer is one signed JWT, `response`, where the
    /// default mode would put it (query, or fragment for `code id_token`).
    Jwt,
    /// `form_post.jwt`: that JWT, POSTed by the provider's page.
    FormPostJwt,
}

impl ResponseMode {
    /// The `response_mode` parameter sent, if any.
    pub fn parameter(self) -> Option<&'static str> {
        match self {
            ResponseMode::Default => None,
            ResponseMode::FormPost => Some("form_post"),
            ResponseMode::Jwt => Some("jwt"),
            ResponseMode::FormPostJwt => Some("form_post.jwt"),
        }
    }

    /// The provider POSTs from its own page (another site).
    pub fn is_form_post(self) -> bool {
        matches!(self, ResponseMode::FormPost | ResponseMode::FormPostJwt)
    }

    /// The answer is a JARM `response`.
    pub fn is_jarm(self) -> bool {
        matches!(self, ResponseMode::Jwt | ResponseMode::FormPostJwt)
    }
}

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone)]
pub enum ClientAuth {
    /// RFC 6749 section 2.3.1, HTTP Basic with form-encoded id and secret.
    SecretBasic(Secret),
    /// `client_id` and `client_secret` as form parameters.
    SecretPost(Secret),
    /// RFC 7523 client assertion signed with the client's private key.
    PrivateKeyJwt(JwtKey),
    /// RFC 8705 section 2: the TLS client certificate is the proof; only
    /// `client_id` goes in the form. `self_signed` (section 2.2) changes
    /// nothing on the client's side; it is kept for the fingerprint.
    TlsClientAuth { self_signed: bool },
}

#[derive(Debug, Clone)]
pub struct JwtKey {
    /// PKCS#8 DER of the private key, already checked to suit `alg`.
    pub pkcs8: SecretBytes,
    pub alg: SigningAlg,
    pub kid: Option<String>,
    /// The `aud` claim; `token_url` unless `assertion_audience` is set.
    pub audience: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlg {
    Rs256,
    Ps256,
    Es256,
}

impl SigningAlg {
    /// The JWS `alg` name.
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::Rs256 => "RS256",
            SigningAlg::Ps256 => "PS256",
            SigningAlg::Es256 => "ES256",
        }
    }
}

/// The durable home of a refresh token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenStoreConfig {
    pub path: PathBuf,
    /// 32-byte AES-256-GCM key; the file is plain JSON (mode 0600) without it.
    pub key: Option<SecretBytes>,
}
