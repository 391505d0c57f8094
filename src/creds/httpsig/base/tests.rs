//! The component values of RFC 9421 section 2.2 (derived components)
//! and 2.1 (header fields).

use super::*;

#[test]
fn derived_components_follow_section_2_2() {
    let (parts, ()) = http::Request::get("http://WWW.Example.com:80")
        .body(())
        .unwrap()
        .into_parts();
    let v = |c: Component| String::from_utf8(value(&c, &parts).unwrap()).unwrap();
    assert_eq!(v(Component::Authority), "www.example.com");
    assert_eq!(v(Component::Scheme), "http");
    assert_eq!(v(Component::Path), "/");
    assert_eq!(v(Component::Query), "?", "an absent query is `?`");
    assert_eq!(v(Component::RequestTarget), "/");
    assert_eq!(v(Component::TargetUri), "http://www.example.com/");
    let (parts, ()) = http::Request::get("https://[::1]:8443/a%20b?x=1&y")
        .body(())
        .unwrap()
        .into_parts();
    let v = |c: Component| String::from_utf8(value(&c, &parts).unwrap()).unwrap();
    assert_eq!(v(Component::Authority), "[::1]:8443");
    assert_eq!(v(Component::Path), "/a%20b");
    assert_eq!(v(Component::Query), "?x=1&y");
    assert_eq!(v(Component::RequestTarget), "/a%20b?x=1&y");
    assert_eq!(v(Component::TargetUri), "https://[::1]:8443/a%20b?x=1&y");
}

#[test]
fn header_values_are_trimmed_and_joined() {
    let (parts, ()) = http::Request::get("https://example.com/")
        .header("x-list", "  a, b  ")
        .header("x-list", "\tc")
        .header("x-empty", "")
        .body(())
        .unwrap()
        .into_parts();
    let v = |name: &str| {
        String::from_utf8(value(&Component::Header(name.into()), &parts).unwrap()).unwrap()
    };
    assert_eq!(v("x-list"), "a, b, c");
    assert_eq!(v("x-empty"), "");
}

/// RFC 9421 section 2.2.8's examples.
#[test]
fn query_params_are_decoded_and_encoded_again() {
    let q = "param=value&foo=bar&baz=batman&qux=";
    assert_eq!(query_param(q, "baz").unwrap(), "batman");
    assert_eq!(query_param(q, "qux").unwrap(), "");
    let q =
        "var=this%20is%20a%20big%0Avalue&bar=with+plus+whitespace&fa%C3%A7ade%22%3A%20=something";
    assert_eq!(
        query_param(q, "var").unwrap(),
        "this%20is%20a%20big%0Avalue"
    );
    assert_eq!(query_param(q, "bar").unwrap(), "with%20plus%20whitespace");
    assert_eq!(query_param(q, "fa%C3%A7ade%22%3A%20").unwrap(), "something");
    assert_eq!(
        query_param("a=1&b=x~y*", "b").unwrap(),
        "x%7Ey*",
        "the form set encodes ~ and keeps *"
    );
    assert_eq!(
        query_param(q, "nope").unwrap_err(),
        Missing("query parameter `nope`".into())
    );
    assert!(query_param("a=1&a=2", "a")
        .unwrap_err()
        .0
        .contains("repeated"));
    assert_eq!(
        Component::QueryParam("Pet".into()).identifier(),
        r#""@query-param";name="Pet""#
    );
}
