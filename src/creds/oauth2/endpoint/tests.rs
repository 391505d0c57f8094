//! Reading token responses and errors.

use super::*;

fn ok(body: &str) -> Result<Issued, FetchError> {
    parse(StatusCode::OK, &Bytes::from(body.to_string()), false)
}

#[test]
fn a_bearer_token_with_lifetime_and_rotation() {
    let t = ok(r#"{"access_token":"at-1","token_type":"bearer","expires_in":"120","refresh_token":"rt-2"}"#).unwrap();
    assert_eq!(t.value, "Bearer at-1");
    assert!(t.value.is_sensitive());
    assert_eq!(t.lifetime, Duration::from_secs(120));
    assert_eq!(t.refresh_token.unwrap().expose(), "rt-2");
    assert_eq!(
        t.fields.keys().collect::<Vec<_>>(),
        ["expires_in", "token_type"],
        "no token among the other fields"
    );
    let t = ok(r#"{"access_token":"a","id_token":"i","user_seq_no":"1100000001","scope":"login"}"#)
        .unwrap();
    assert_eq!(
        t.fields.keys().collect::<Vec<_>>(),
        ["scope", "user_seq_no"]
    );
    let t = ok(r#"{"access_token":"at-1","token_type":"Bearer"}"#).unwrap();
    assert_eq!(t.lifetime, DEFAULT_LIFETIME);
    assert!(t.refresh_token.is_none());
}

#[test]
fn broken_answers_are_errors_that_quote_nothing() {
    assert!(matches!(ok(""), Err(FetchError::NotJson)));
    assert!(matches!(
        ok("<html>at-secret</html>"),
        Err(FetchError::NotJson)
    ));
    assert!(matches!(ok("[1]"), Err(FetchError::NotJson)));
    assert!(matches!(ok("{}"), Err(FetchError::NoAccessToken)));
    assert!(matches!(
        ok(r#"{"access_token":""}"#),
        Err(FetchError::NoAccessToken)
    ));
    assert!(matches!(
        ok(r#"{"access_token":"x","expires_in":0}"#),
        Err(FetchError::Expiry)
    ));
    assert!(matches!(
        ok(r#"{"access_token":"x","token_type":"DPoP"}"#),
        Err(FetchError::TokenType(t)) if t == "DPoP"
    ));
    assert!(matches!(
        ok("{\"access_token\":\"line\\nbreak\"}"),
        Err(FetchError::BadToken)
    ));
}

#[test]
fn error_answers_keep_only_a_safe_oauth_code() {
    let e = parse(
        StatusCode::BAD_REQUEST,
        &Bytes::from(r#"{"error":"invalid_grant\"<x>","error_description":"rt-secret reused"}"#),
        false,
    )
    .err()
    .unwrap();
    assert!(matches!(&e, FetchError::Status { code: Some(c), .. } if c == "invalid_grantx"));
    assert!(!e.to_string().contains("rt-secret"));
    let e = parse(
        StatusCode::BAD_REQUEST,
        &Bytes::from(r#"{"error":"invalid_grant"}"#),
        false,
    )
    .err()
    .unwrap();
    assert!(e.is_invalid_grant());
    let e = parse(StatusCode::BAD_GATEWAY, &Bytes::new(), false)
        .err()
        .unwrap();
    assert_eq!(e.to_string(), "token endpoint answered 502 Bad Gateway");
}

#[test]
fn a_dpop_credential_takes_only_dpop_tokens() {
    let dpop = |body: &str| parse(StatusCode::OK, &Bytes::from(body.to_string()), true);
    let t = dpop(r#"{"access_token":"at-1","token_type":"dpop","expires_in":60}"#).unwrap();
    assert_eq!(t.value, "DPoP at-1");
    assert!(t.value.is_sensitive());
    let e = dpop(r#"{"access_token":"at-1","token_type":"Bearer"}"#)
        .err()
        .unwrap();
    assert!(matches!(&e, FetchError::NotDpop(k) if k == "Bearer"));
    assert!(e.to_string().contains("dpop = true"), "{e}");
    assert!(matches!(
        dpop(r#"{"access_token":"at-1"}"#),
        Err(FetchError::NotDpop(_))
    ));
}
