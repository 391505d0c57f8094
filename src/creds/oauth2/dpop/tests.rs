use super::*;
use http::{HeaderMap, StatusCode};
use ring::signature::UnparsedPublicKey;

/// Verifies a proof as a resource server would, with only the key its
/// header carries; returns (header, claims).
fn verify(proof: &HeaderValue) -> (Value, Value) {
    let text = proof.to_str().unwrap();
    let (input, sig) = text.rsplit_once('.').unwrap();
    let (h, c) = input.split_once('.').unwrap();
    let parse = |p: &str| -> Value { serde_json::from_slice(&B64.decode(p).unwrap()).unwrap() };
    let (header, claims) = (parse(h), parse(c));
    let jwk = &header["jwk"];
    let x = B64.decode(jwk["x"].as_str().unwrap()).unwrap();
    let (alg, public): (&dyn signature::VerificationAlgorithm, Vec<u8>) =
        match header["alg"].as_str().unwrap() {
            "ES256" => {
                let y = B64.decode(jwk["y"].as_str().unwrap()).unwrap();
                let mut point = vec![4u8];
                point.extend(x);
                point.extend(y);
                (&signature::ECDSA_P256_SHA256_FIXED, point)
            }
            "EdDSA" => (&signature::ED25519, x),
            other => panic!("unexpected alg {other}"),
        };
    UnparsedPublicKey::new(alg, public)
        .verify(input.as_bytes(), &B64.decode(sig).unwrap())
        .expect("the proof verifies with the key in its own header");
    (header, claims)
}

#[test]
fn each_algorithm_signs_a_proof_its_jwk_verifies() {
    for alg in [DpopAlg::Es256, DpopAlg::EdDsa] {
        let dpop = Dpop::generate(alg).unwrap();
        let uri: Uri = "https://API.bank.test:443/v1/accounts?from=2024#frag"
            .parse()
            .unwrap();
        let proof = dpop
            .proof(&Method::GET, &uri, Some("at-123"), 1_700_000_000)
            .unwrap();
        assert!(proof.is_sensitive());
        let (header, claims) = verify(&proof);
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["alg"], alg.as_str());
        assert!(header["jwk"].get("d").is_none(), "never the private key");
        assert_eq!(claims["htm"], "GET");
        assert_eq!(claims["htu"], "https://api.bank.test/v1/accounts");
        assert_eq!(claims["iat"], 1_700_000_000u64);
        // ath: base64url(SHA-256("at-123")), computed here independently.
        let expected = B64.encode(Sha256::digest(b"at-123"));
        assert_eq!(claims["ath"], expected.as_str());
        assert_eq!(
            B64.decode(claims["jti"].as_str().unwrap()).unwrap().len(),
            16
        );
        assert!(claims.get("nonce").is_none());
        // The thumbprint is over the required members, in order.
        let members: Vec<&String> = header["jwk"].as_object().unwrap().keys().collect();
        let mut sorted = members.clone();
        sorted.sort();
        assert_eq!(members, sorted);
        assert_eq!(dpop.thumbprint(), thumbprint(&header["jwk"]));
    }
}

#[test]
fn a_token_request_proof_has_no_ath_and_each_proof_a_fresh_jti() {
    let dpop = Dpop::generate(DpopAlg::Es256).unwrap();
    let uri: Uri = "https://as.test/token".parse().unwrap();
    let a = verify(&dpop.proof(&Method::POST, &uri, None, 1).unwrap()).1;
    let b = verify(&dpop.proof(&Method::POST, &uri, None, 1).unwrap()).1;
    assert!(a.get("ath").is_none());
    assert_eq!(a["htm"], "POST");
    assert_ne!(a["jti"], b["jti"]);
}

#[test]
fn the_thumbprint_follows_rfc_7638() {
    // RFC 7638 section 3.1's canonical form, for an EC key: members in
    // lexicographic order, no whitespace.
    let jwk = json!({ "crv": "P-256", "kty": "EC", "x": "AAA", "y": "BBB" });
    let text = r#"{"crv":"P-256","kty":"EC","x":"AAA","y":"BBB"}"#;
    assert_eq!(
        thumbprint(&jwk),
        B64.encode(Sha256::digest(text.as_bytes()))
    );
}

#[test]
fn htu_keeps_a_port_that_is_not_the_default() {
    let u = |s: &str| htu(&s.parse().unwrap());
    assert_eq!(
        u("http://127.0.0.1:8080/a/b?x=1"),
        "http://127.0.0.1:8080/a/b"
    );
    assert_eq!(u("http://h:80/"), "http://h/");
    assert_eq!(u("https://h"), "https://h/");
}

#[test]
fn a_servers_nonce_goes_in_its_next_proofs_only() {
    let dpop = Dpop::generate(DpopAlg::Es256).unwrap();
    let rs: Uri = "https://rs.test/v1/x".parse().unwrap();
    let other: Uri = "https://rs.test:8443/v1/x".parse().unwrap();
    let mut headers = HeaderMap::new();
    assert!(!dpop.nonces.remember(&rs, &headers));
    headers.insert("dpop-nonce", HeaderValue::from_static("n-1"));
    assert!(dpop.nonces.remember(&rs, &headers));
    let claims = |uri: &Uri| verify(&dpop.proof(&Method::GET, uri, Some("t"), 1).unwrap()).1;
    assert_eq!(claims(&rs)["nonce"], "n-1");
    assert!(claims(&other).get("nonce").is_none());
    headers.insert("dpop-nonce", HeaderValue::from_static("n-2"));
    dpop.nonces
        .remember(&"https://rs.test/other".parse().unwrap(), &headers);
    assert_eq!(claims(&rs)["nonce"], "n-2", "the latest nonce per server");
    headers.insert("dpop-nonce", HeaderValue::from_static("bad\"nonce"));
    assert!(!dpop.nonces.remember(&rs, &headers), "not an NQCHAR nonce");
}

#[test]
fn only_a_dpop_use_dpop_nonce_challenge_asks_again() {
    let mut h = HeaderMap::new();
    h.insert(
        http::header::WWW_AUTHENTICATE,
        HeaderValue::from_static(r#"DPoP error="use_dpop_nonce", error_description="need one""#),
    );
    assert!(resource_wants_nonce(StatusCode::UNAUTHORIZED, &h));
    assert!(!resource_wants_nonce(StatusCode::BAD_REQUEST, &h));
    h.insert(
        http::header::WWW_AUTHENTICATE,
        HeaderValue::from_static(r#"DPoP error="invalid_token""#),
    );
    assert!(!resource_wants_nonce(StatusCode::UNAUTHORIZED, &h));
}
