//! PayPay OPA-Auth: HMAC-SHA256 over path, method, nonce, epoch, content type
//! and base64(MD5(content type ++ body)). SCHEMES.md section 1 has the rules;
//! the unit test below is the published example.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, EXPECT};
use http::request::Parts;
use http::HeaderValue;
use sha2::Sha256;

use super::{BodyDigest, BodyHash, CredError, SignParams};
use crate::config::Secret;
use crate::random::RandomError;

/// Stands for both the content type and the body hash when there is no body.
const EMPTY: &str = "empty";

#[derive(Debug)]
pub struct PayPayOpa {
    api_key: Secret,
    /// HMAC-SHA256 keyed with `api_secret` once: each request clones the
    /// keyed state instead of hashing the key into its pads again.
    keyed: KeyedMac,
    nonce_length: usize,
}

/// An HMAC already keyed with a secret; `Debug` never shows its state.
#[derive(Clone)]
struct KeyedMac(Hmac<Sha256>);

impl std::fmt::Debug for KeyedMac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyedMac(<redacted>)")
    }
}

impl KeyedMac {
    fn new(secret: &str) -> KeyedMac {
        KeyedMac(
            Hmac::<Sha256>::new_from_slice(secret.as_bytes())
                .expect("invariant: HMAC accepts keys of any length"),
        )
    }
}

impl PayPayOpa {
    pub fn new(api_key: Secret, api_secret: Secret, nonce_length: usize) -> Self {
        PayPayOpa {
            api_key,
            keyed: KeyedMac::new(api_secret.expose()),
            nonce_length,
        }
    }

    /// A hash of the body for this credential alone.
    pub fn body_hash(&self, parts: &Parts) -> BodyHash {
        let mut hash = BodyHash::default();
        self.want_body(parts, &mut hash);
        hash
    }

    /// Asks `hash` for the MD5 this scheme signs, which starts with the
    /// Content-Type bytes exactly as they will be sent.
    pub fn want_body(&self, parts: &Parts, hash: &mut BodyHash) {
        let ct = parts.headers.get(CONTENT_TYPE);
        hash.want_md5(ct.map_or(&[][..], |v| v.as_bytes()));
    }

    /// Refuses what cannot be signed before any byte of the body is read,
    /// so that an app that sent `Expect: 100-continue` gets its 400 rather
    /// than `100 Continue`: several Content-Types, or a body announced (by
    /// a nonzero Content-Length, or by the expectation itself, which RFC
    /// 9110 allows only with content) without one.
    pub fn refuse_early(&self, parts: &Parts) -> Result<(), CredError> {
        let declared = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let announced = parts.headers.contains_key(EXPECT) || declared.is_some_and(|n| n > 0);
        signed_content_type(parts, announced).map(|_| ())
    }

    pub fn apply(
        &self,
        parts: &mut Parts,
        digest: BodyDigest,
        params: &SignParams,
    ) -> Result<(), CredError> {
        let has_body = digest.md5().is_some();
        let content_type = signed_content_type(parts, has_body)?;
        let nonce = match &params.nonce {
            Some(n) => n.clone(),
            None => random_nonce(self.nonce_length)?,
        };
        let epoch = params.epoch.unwrap_or_else(unix_now);
        let input = SignInput {
            path: parts.uri.path(),
            method: parts.method.as_str(),
            nonce: &nonce,
            epoch,
            content_type,
            digest: digest.md5(),
        };
        let header = authorization_keyed(self.api_key.expose(), self.keyed.clone(), &input);
        // Handed over, not copied: the header is built once, in its own
        // buffer, and checked where it lies.
        let mut value = HeaderValue::from_maybe_shared(bytes::Bytes::from(header))
            .map_err(|_| CredError::Request("the request path cannot be signed".into()))?;
        value.set_sensitive(true);
        parts.headers.insert(AUTHORIZATION, value);
        Ok(())
    }
}

/// The Content-Type the signature covers: none without a body, and with
/// one, exactly one header.
fn signed_content_type(parts: &Parts, has_body: bool) -> Result<Option<&[u8]>, CredError> {
    if parts.headers.get_all(CONTENT_TYPE).iter().count() > 1 {
        return Err(CredError::Request(
            "paypay-opa signs one Content-Type, and this request has several; send one".into(),
        ));
    }
    match (has_body, parts.headers.get(CONTENT_TYPE)) {
        (false, _) => Ok(None),
        (true, Some(ct)) => Ok(Some(ct.as_bytes())),
        (true, None) => Err(CredError::Request(
            "paypay-opa signs the Content-Type of a request with a body, and this request has none; send one (e.g. application/json)".into(),
        )),
    }
}

/// Everything the MAC covers.
pub struct SignInput<'a> {
    pub path: &'a str,
    pub method: &'a str,
    pub nonce: &'a str,
    pub epoch: u64,
    /// `None` when there is no body.
    pub content_type: Option<&'a [u8]>,
    /// MD5 of content type ++ body; `None` when there is no body.
    pub digest: Option<[u8; 16]>,
}

/// `hmac OPA-Auth:<key>:<mac>:<nonce>:<epoch>:<body hash or "empty">`,
/// written into one buffer of the right size: the base64 of the digest and
/// the epoch are made on the stack, fed to the MAC and copied once.
fn authorization_keyed(api_key: &str, keyed: KeyedMac, input: &SignInput<'_>) -> String {
    // base64 of a 16-byte MD5: 24 characters.
    let mut hash_buf = [0u8; 24];
    let body_hash: &[u8] = match input.digest {
        None => EMPTY.as_bytes(),
        Some(d) => {
            let n = BASE64
                .encode_slice(d, &mut hash_buf)
                .expect("invariant: 24 bytes hold the base64 of 16");
            &hash_buf[..n]
        }
    };
    let content_type: &[u8] = match input.digest {
        None => EMPTY.as_bytes(),
        Some(_) => input.content_type.unwrap_or_default(),
    };
    let mut epoch_buf = [0u8; 20];
    let epoch = decimal(input.epoch, &mut epoch_buf);
    let mut mac = keyed.0;
    for (i, part) in [
        input.path.as_bytes(),
        input.method.as_bytes(),
        input.nonce.as_bytes(),
        epoch.as_bytes(),
        content_type,
        body_hash,
    ]
    .iter()
    .enumerate()
    {
        if i > 0 {
            mac.update(b"\n");
        }
        mac.update(part);
    }
    let mac = mac.finalize().into_bytes();
    // base64 of a 32-byte HMAC-SHA256: 44 characters.
    let mut mac_buf = [0u8; 44];
    let n = BASE64
        .encode_slice(mac, &mut mac_buf)
        .expect("invariant: 44 bytes hold the base64 of 32");
    let pieces: [&[u8]; 9] = [
        b"hmac OPA-Auth:",
        api_key.as_bytes(),
        b":",
        &mac_buf[..n],
        b":",
        input.nonce.as_bytes(),
        b":",
        epoch.as_bytes(),
        b":",
    ];
    let len = pieces.iter().map(|p| p.len()).sum::<usize>() + body_hash.len();
    let mut out = Vec::with_capacity(len);
    for piece in pieces {
        out.extend_from_slice(piece);
    }
    out.extend_from_slice(body_hash);
    String::from_utf8(out).expect("invariant: every piece is UTF-8")
}

/// `n` in decimal, written at the end of `buf`.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &str {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[at..]).expect("invariant: ASCII digits")
}

pub(super) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Alphanumeric characters from the OS CSPRNG, without modulo bias.
pub(super) fn random_nonce(len: usize) -> Result<String, RandomError> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        // About what is still missing (3% of bytes are rejected below).
        let want = (len - out.len() + 4).min(buf.len());
        let buf = &mut buf[..want];
        crate::random::fill_public(buf)?;
        for &b in buf.iter() {
            // 248 = 4 * 62: bytes at or above it would favour the first letters.
            if b < 248 && out.len() < len {
                out.push(ALPHABET[(b % 62) as usize] as char);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_neither_the_secret_nor_the_keyed_state() {
        let opa = PayPayOpa::new(Secret::new("key-id"), Secret::new("Pr0dSecret"), 8);
        let shown = format!("{opa:?}");
        assert!(!shown.contains("Pr0dSecret"), "{shown}");
        assert!(shown.contains("KeyedMac(<redacted>)"), "{shown}");
    }
    use md5::{Digest as _, Md5};

    const BODY: &str = r#"{"sampleRequestBodyKey1":"sampleRequestBodyValue1","sampleRequestBodyKey2":"sampleRequestBodyValue2"}"#;

    #[test]
    fn published_example() {
        let mut md5 = Md5::new();
        md5.update(b"application/json;charset=UTF-8;");
        md5.update(BODY.as_bytes());
        let input = SignInput {
            path: "/v2/codes",
            method: "POST",
            nonce: "acd028",
            epoch: 1579843452,
            content_type: Some(b"application/json;charset=UTF-8;"),
            digest: Some(md5.finalize().into()),
        };
        assert_eq!(
            authorization_keyed(
                "APIKeyGenerated",
                KeyedMac::new("APIKeySecretGenerated"),
                &input
            ),
            "hmac OPA-Auth:APIKeyGenerated:NW1jKIMnzR7tEhMWtcJcaef+nFVBt7jjAGcVuxHhchc=:acd028:1579843452:1j0FnY4flNp5CtIKa7x9MQ=="
        );
    }

    #[test]
    fn no_body_uses_empty_for_type_and_hash() {
        let input = SignInput {
            path: "/v2/codes/payments/x",
            method: "GET",
            nonce: "n",
            epoch: 1,
            content_type: Some(b"application/json"),
            digest: None,
        };
        let header = authorization_keyed("k", KeyedMac::new("s"), &input);
        assert!(header.ends_with(":n:1:empty"), "{header}");
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s").unwrap();
        mac.update(b"/v2/codes/payments/x\nGET\nn\n1\nempty\nempty");
        let expected = BASE64.encode(mac.finalize().into_bytes());
        assert_eq!(header, format!("hmac OPA-Auth:k:{expected}:n:1:empty"));
    }

    #[test]
    fn decimal_matches_display() {
        for n in [0, 7, 10, 1579843452, u64::MAX] {
            assert_eq!(decimal(n, &mut [0; 20]), n.to_string());
        }
    }

    #[test]
    fn nonces_are_alphanumeric_and_distinct() {
        let a = random_nonce(8).unwrap();
        let b = random_nonce(8).unwrap();
        assert_eq!(a.len(), 8);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn body_hash_covers_content_type_then_body() {
        let (mut parts, _) = http::Request::builder()
            .header(CONTENT_TYPE, "application/json;charset=UTF-8;")
            .body(())
            .unwrap()
            .into_parts();
        let p = PayPayOpa::new(Secret::new("k"), Secret::new("s"), 8);
        let mut h = p.body_hash(&parts);
        for chunk in BODY.as_bytes().chunks(7) {
            h.update(chunk);
        }
        let digest = h.finish();
        assert_eq!(
            digest.md5(),
            Some(
                BASE64
                    .decode("1j0FnY4flNp5CtIKa7x9MQ==")
                    .unwrap()
                    .try_into()
                    .unwrap()
            )
        );
        parts.uri = "https://h/v2/codes?x=1".parse().unwrap();
        parts.method = http::Method::POST;
        let params = SignParams {
            nonce: Some("acd028".into()),
            epoch: Some(1579843452),
        };
        p.apply(&mut parts, digest, &params).unwrap();
        let auth = parts.headers[AUTHORIZATION].to_str().unwrap();
        assert!(auth.ends_with(":acd028:1579843452:1j0FnY4flNp5CtIKa7x9MQ=="));
    }
}
