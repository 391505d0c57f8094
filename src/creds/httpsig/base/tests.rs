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
