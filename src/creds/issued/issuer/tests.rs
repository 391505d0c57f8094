//! Reading keys and lifetimes out of issuing answers, and the margin rule.

use super::*;

fn text(body: &str) -> Result<HeaderValue, IssueError> {
    text_key(&Bytes::from(body.to_string()))
}

fn json(
    body: &str,
    configured: Option<u64>,
) -> Result<(HeaderValue, Option<Duration>), IssueError> {
    json_key(
        &Bytes::from(body.to_string()),
        "key",
        Some("expires_in"),
        configured.map(Duration::from_secs),
    )
}

#[test]
fn a_plain_text_key_is_the_trimmed_body_marked_sensitive() {
    let key = text("  0123456789abcdefABCDEF-_.~+/=\r\n").unwrap();
    assert_eq!(key, "0123456789abcdefABCDEF-_.~+/=");
    assert!(key.is_sensitive());
}

#[test]
fn broken_text_answers_are_errors_that_quote_nothing() {
    assert!(matches!(text(""), Err(IssueError::Empty)));
    assert!(matches!(text(" \n"), Err(IssueError::Empty)));
    let e = text("<html>sid-secret rejected</html>").unwrap_err();
    assert!(matches!(e, IssueError::BadKey));
    assert!(!e.to_string().contains("sid-secret"));
    assert!(matches!(text("k\u{e9}y"), Err(IssueError::BadKey)));
    assert!(matches!(
        text(&"k".repeat(MAX_KEY + 1)),
        Err(IssueError::BadKey)
    ));
}

#[test]
fn a_json_key_with_or_without_its_lifetime() {
    let (key, life) = json(r#"{"key":"k-1","expires_in":120}"#, None).unwrap();
    assert_eq!(key, "k-1");
    assert!(key.is_sensitive());
    assert_eq!(life, Some(Duration::from_secs(120)));
    let (_, life) = json(r#"{"key":"k-1","expires_in":"1.5"}"#, None).unwrap();
    assert_eq!(life, Some(Duration::from_millis(1500)));
    let (_, life) = json(r#"{"key":"k-1"}"#, Some(30)).unwrap();
    assert_eq!(life, Some(Duration::from_secs(30)), "the configured one");
    let (_, life) = json(r#"{"key":"k-1","expires_in":null}"#, None).unwrap();
    assert_eq!(life, None);
}

#[test]
fn broken_json_answers_are_errors_that_quote_nothing() {
    assert!(matches!(json("", None), Err(IssueError::Empty)));
    assert!(matches!(json("k-plain", None), Err(IssueError::NotJson)));
    assert!(matches!(json("[1]", None), Err(IssueError::NotJson)));
    for body in [r#"{}"#, r#"{"key":""}"#, r#"{"key":7}"#] {
        assert!(
            matches!(json(body, None), Err(IssueError::NoKeyField(f)) if f == "key"),
            "{body}"
        );
    }
    for body in [
        r#"{"key":"k","expires_in":0}"#,
        r#"{"key":"k","expires_in":"soon"}"#,
    ] {
        assert!(
            matches!(json(body, Some(30)), Err(IssueError::Lifetime(f)) if f == "expires_in"),
            "{body}"
        );
    }
    let e = json(r#"{"key":"k y","secret":"s-1"}"#, None).unwrap_err();
    assert!(matches!(e, IssueError::BadKey));
}

#[test]
fn the_margin_defaults_to_5s_or_a_tenth_of_the_lifetime_whichever_is_smaller() {
    let s = Duration::from_secs;
    assert_eq!(usable(s(300), None).unwrap(), s(295));
    assert_eq!(usable(s(30), None).unwrap(), s(27));
    assert_eq!(usable(s(2), Some(s(1))).unwrap(), s(1));
    assert!(matches!(
        usable(s(2), Some(s(2))),
        Err(IssueError::TooShort { .. })
    ));
    assert!(matches!(
        usable(s(2), Some(s(3))),
        Err(IssueError::TooShort { .. })
    ));
}
