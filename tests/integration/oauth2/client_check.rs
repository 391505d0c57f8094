//! Client authentication as the test's authorization server checks it:
//! Basic with form-encoded id and secret (RFC 6749 section 2.3.1), post, and
//! private_key_jwt assertions verified with ring (RFC 7523).

use crate::handler_server::decode;
use std::collections::{HashMap, HashSet};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::signature;

/// How a registered client must authenticate.
#[derive(Clone)]
pub enum ClientCheck {
    Basic(String),
    Post(String),
    /// Public key (ring's form), JWS alg, expected `aud`.
    Jwt(Vec<u8>, &'static str, String),
    /// RFC 8705 tls_client_auth: the server's TLS layer has verified the
    /// client certificate; the form names the client and carries no secret.
    Tls,
}

/// Authenticates the client of a token request, as an authorization server
/// does; the error is the OAuth error code.
pub fn check(
    clients: &HashMap<String, ClientCheck>,
    jtis: &mut HashSet<String>,
    form: &HashMap<String, String>,
    authorization: Option<&str>,
) -> Result<(), &'static str> {
    if let Some(basic) = authorization.and_then(|a| a.strip_prefix("Basic ")) {
        let pair = String::from_utf8(STANDARD.decode(basic).map_err(|_| "invalid_client")?)
            .map_err(|_| "invalid_client")?;
        let (id, secret) = pair.split_once(':').ok_or("invalid_client")?;
        let (id, secret) = (decode(id), decode(secret));
        return match clients.get(&id) {
            Some(ClientCheck::Basic(want))
                if *want == secret && !form.contains_key("client_secret") =>
            {
                Ok(())
            }
            _ => Err("invalid_client"),
        };
    }
    let id = form.get("client_id").ok_or("invalid_client")?;
    match clients.get(id).cloned() {
        Some(ClientCheck::Post(want)) if form.get("client_secret") == Some(&want) => Ok(()),
        Some(ClientCheck::Tls)
            if !form.contains_key("client_secret") && !form.contains_key("client_assertion") =>
        {
            Ok(())
        }
        Some(ClientCheck::Jwt(key, alg, aud)) => {
            if form.get("client_assertion_type").map(String::as_str)
                != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
            {
                return Err("invalid_client");
            }
            let jwt = form.get("client_assertion").ok_or("invalid_client")?;
            let claims = verify_jwt(jwt, &key, alg).ok_or("invalid_client")?;
            let fresh = claims["jti"]
                .as_str()
                .is_some_and(|j| jtis.insert(j.to_string()));
            let lifetime = claims["exp"]
                .as_u64()
                .zip(claims["iat"].as_u64())
                .map(|(e, i)| e - i);
            let good = claims["iss"] == id.as_str()
                && claims["sub"] == id.as_str()
                && claims["aud"] == aud.as_str()
                && lifetime == Some(60)
                && fresh;
            good.then_some(()).ok_or("invalid_client")
        }
        _ => Err("invalid_client"),
    }
}

/// Checks the JWS signature and header; returns the claims.
fn verify_jwt(jwt: &str, key: &[u8], alg: &str) -> Option<serde_json::Value> {
    let (input, sig) = jwt.rsplit_once('.')?;
    let (header, claims) = input.split_once('.')?;
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    if header["alg"] != alg {
        return None;
    }
    let verifier: &dyn signature::VerificationAlgorithm = match alg {
        "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
        "PS256" => &signature::RSA_PSS_2048_8192_SHA256,
        _ => &signature::ECDSA_P256_SHA256_FIXED,
    };
    signature::UnparsedPublicKey::new(verifier, key)
        .verify(input.as_bytes(), &URL_SAFE_NO_PAD.decode(sig).ok()?)
        .ok()?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).ok()?).ok()
}
