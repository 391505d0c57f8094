//! How countersign proves the client's identity at the token endpoint:
//! `client_secret_basic` (RFC 6749 section 2.3.1: form-encode id and secret,
//! then base64 of `id:secret`), `client_secret_post`, `private_key_jwt`
//! (RFC 7523 assertion, fresh per token request), or the TLS client
//! certificate (RFC 8705 `tls_client_auth` and
//! `self_signed_tls_client_auth`: only `client_id` in the form).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};

use super::jwt::{AssertionSigner, SignError};
use crate::config::{ClientAuth, Secret};
use crate::creds::form::{self, Form};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

#[derive(Debug)]
pub enum ClientAuthenticator {
    /// The ready `Authorization: Basic ...` value, marked sensitive.
    Basic(HeaderValue),
    Post(Secret),
    Jwt(Box<AssertionSigner>),
    /// The TLS layer presents the certificate; the form names the client.
    Tls,
}

impl ClientAuthenticator {
    pub fn new(config: &ClientAuth, client_id: &str) -> Result<ClientAuthenticator, String> {
        Ok(match config {
            ClientAuth::SecretBasic(secret) => {
                let pair = format!(
                    "{}:{}",
                    form::encode(client_id),
                    form::encode(secret.expose())
                );
                let mut value = HeaderValue::from_str(&format!("Basic {}", BASE64.encode(pair)))
                    .map_err(|_| "the Basic credentials are not a valid header".to_string())?;
                value.set_sensitive(true);
                ClientAuthenticator::Basic(value)
            }
            ClientAuth::SecretPost(secret) => ClientAuthenticator::Post(secret.clone()),
            ClientAuth::PrivateKeyJwt(key) => {
                ClientAuthenticator::Jwt(Box::new(AssertionSigner::new(key)?))
            }
            ClientAuth::TlsClientAuth { .. } => ClientAuthenticator::Tls,
        })
    }

    /// Whether `authenticate` puts `client_id` in the form (every method
    /// but Basic), so a form that already names the client must not.
    pub fn names_client(&self) -> bool {
        !matches!(self, ClientAuthenticator::Basic(_))
    }

    /// Adds the client's proof to a token request. `now` is Unix seconds.
    pub fn authenticate(
        &self,
        client_id: &str,
        now: u64,
        form: &mut Form,
        headers: &mut HeaderMap,
    ) -> Result<(), SignError> {
        match self {
            ClientAuthenticator::Basic(value) => {
                headers.insert(AUTHORIZATION, value.clone());
            }
            ClientAuthenticator::Post(secret) => {
                form.push("client_id", client_id);
                form.push("client_secret", secret.expose());
            }
            ClientAuthenticator::Jwt(signer) => {
                let assertion = signer.assertion(client_id, now)?;
                form.push("client_id", client_id);
                form.push("client_assertion_type", ASSERTION_TYPE);
                form.push("client_assertion", assertion.expose());
            }
            ClientAuthenticator::Tls => form.push("client_id", client_id),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_form_encodes_id_and_secret_before_base64() {
        let auth =
            ClientAuthenticator::new(&ClientAuth::SecretBasic(Secret::new("p@ss w:rd")), "id:1")
                .unwrap();
        let mut headers = HeaderMap::new();
        let mut form = Form::default();
        auth.authenticate("id:1", 0, &mut form, &mut headers)
            .unwrap();
        let value = headers[AUTHORIZATION].to_str().unwrap();
        let decoded = BASE64
            .decode(value.strip_prefix("Basic ").unwrap())
            .unwrap();
        assert_eq!(decoded, b"id%3A1:p%40ss+w%3Ard");
        assert!(headers[AUTHORIZATION].is_sensitive());
        assert_eq!(form.into_string(), "");
        assert!(!auth.names_client());
    }

    #[test]
    fn post_puts_id_and_secret_in_the_body() {
        let auth =
            ClientAuthenticator::new(&ClientAuth::SecretPost(Secret::new("s&t")), "c").unwrap();
        let mut form = Form::default();
        auth.authenticate("c", 0, &mut form, &mut HeaderMap::new())
            .unwrap();
        assert_eq!(form.into_string(), "client_id=c&client_secret=s%26t");
        assert!(auth.names_client());
    }
}
