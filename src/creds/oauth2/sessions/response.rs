//! What the provider answers, for FAPI flows: where the answer arrives
//! (the URL fragment, or a cross-site `form_post`), the JARM `response`
//! it may come wrapped in (`creds::oauth2::jarm`), and the check of a
//! hybrid answer's ID token before the code is exchanged
//! (`creds::oauth2::id_token`).

use super::super::discovery::DiscoveryError;
use super::super::endpoint::unix_now;
use super::super::id_token::{self, IdTokenError};
use super::super::jarm::{self, JarmError};
use super::{SessionError, SessionManager};

impl SessionManager {
    /// Whether the provider's answer arrives as a cross-site POST
    /// (`response_mode = "form_post"`): the binding cookie must then be
    /// `SameSite=None` (and so `Secure`) to come with it.
    pub fn cross_site_callback(&self) -> bool {
        self.flow.fapi.response_mode.is_form_post()
    }

    /// Whether the answer must be a JARM `response`.
    pub fn jarm_callback(&self) -> bool {
        self.flow.fapi.response_mode.is_jarm()
    }

    /// The parameters of a JARM `response`, checked (`jarm`).
    pub async fn open_response(
        &self,
        response: &str,
    ) -> Result<serde_json::Map<String, serde_json::Value>, SessionError> {
        let discovery = self
            .endpoint
            .discovery()
            .ok_or(SessionError::Jarm(JarmError::Keys(
                DiscoveryError::Missing("jwks_uri"),
            )))?;
        jarm::open(
            response,
            discovery.issuer(),
            &self.config.client_id,
            unix_now(),
            |kid, alg| async move { discovery.key(kid.as_deref(), &alg).await },
        )
        .await
        .map_err(SessionError::Jarm)
    }

    /// Whether the answer comes in the URL fragment, which only a page
    /// can post back (`code id_token` in the default mode).
    pub fn fragment_callback(&self) -> bool {
        self.flow.fapi.hybrid && !self.cross_site_callback()
    }

    /// An ID token, checked against the provider's keys and this
    /// authorization's nonce (and the response's code and state, for the
    /// one that came with it; see `id_token::Expected`); its claims.
    pub(super) async fn check_id_token(
        &self,
        token: &str,
        code: Option<&str>,
        state: Option<&str>,
        nonce: Option<&str>,
        intent: Option<&str>,
    ) -> Result<id_token::Claims, SessionError> {
        let discovery =
            self.endpoint
                .discovery()
                .ok_or(SessionError::IdToken(IdTokenError::Keys(
                    DiscoveryError::Missing("jwks_uri"),
                )))?;
        let expected = id_token::Expected {
            issuer: discovery.issuer(),
            client_id: &self.config.client_id,
            nonce,
            code,
            state,
            now: unix_now(),
        };
        let claims = id_token::validate(token, &expected, |kid, alg| async move {
            discovery.key(kid.as_deref(), &alg).await
        })
        .await
        .map_err(SessionError::IdToken)?;
        if let Some(intent) = intent {
            claims.check_intent(intent).map_err(SessionError::IdToken)?;
        }
        Ok(claims)
    }
}
