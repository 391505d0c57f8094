//! One parameter of a request's form-encoded query string: read, taken out
//! or set, with every other parameter kept exactly as the app sent it, in
//! order. Names are compared decoded, so `authoriz%61tion` is the same
//! parameter as `authorization` and cannot slip past as a second one.

use http::Uri;

use super::form;

/// The decoded values of every `name` parameter in `query`, in order; a
/// value that is not UTF-8 once decoded is left out.
pub fn values(query: &str, name: &str) -> Vec<String> {
    query
        .split('&')
        .filter(|pair| is_named(pair, name))
        .filter_map(|pair| String::from_utf8(form::decode(value_of(pair))).ok())
        .collect()
}

/// The decoded value of the first `name` parameter in `query`.
pub fn first(query: &str, name: &str) -> Option<String> {
    values(query, name).into_iter().next()
}

/// The first `name` parameter's value as it stands in `uri` (still encoded).
pub fn raw<'a>(uri: &'a Uri, name: &str) -> Option<&'a str> {
    let pair = uri.query()?.split('&').find(|p| is_named(p, name))?;
    Some(value_of(pair))
}

/// Removes every `name` parameter from `uri` and returns their decoded
/// values (empty, and `uri` untouched, when there is none). A value that is
/// not UTF-8 once decoded is returned lossily, so it still counts. `None`
/// when the URI cannot be rebuilt without them (then nothing may be sent).
pub fn take(uri: &mut Uri, name: &str) -> Option<Vec<String>> {
    let Some(query) = uri.query() else {
        return Some(Vec::new());
    };
    let found: Vec<String> = query
        .split('&')
        .filter(|pair| is_named(pair, name))
        .map(|pair| String::from_utf8_lossy(&form::decode(value_of(pair))).into_owned())
        .collect();
    if found.is_empty() {
        return Some(found);
    }
    let kept: Vec<&str> = query.split('&').filter(|p| !is_named(p, name)).collect();
    *uri = with_query(uri, &kept)?;
    Some(found)
}

/// `uri` without any `name` parameter, and with `name=value` at the end;
/// `value` must already be form-encoded. `None` if the result is not a URI.
pub fn set(uri: &Uri, name: &str, encoded_value: &str) -> Option<Uri> {
    let mut kept: Vec<&str> = uri
        .query()
        .filter(|q| !q.is_empty())
        .map(|q| q.split('&').filter(|p| !is_named(p, name)).collect())
        .unwrap_or_default();
    let param = format!("{}={encoded_value}", form::encode(name));
    kept.push(&param);
    with_query(uri, &kept)
}

/// Whether the query pair `pair` (`name=value`) is named `name` once decoded.
pub fn is_named(pair: &str, name: &str) -> bool {
    let raw = pair.split('=').next().unwrap_or("");
    form::decode(raw) == name.as_bytes()
}

fn value_of(pair: &str) -> &str {
    pair.split_once('=').map_or("", |(_, v)| v)
}

/// `uri` with its query made of `pairs` (no `?` at all when there are none).
fn with_query(uri: &Uri, pairs: &[&str]) -> Option<Uri> {
    let path_and_query = match pairs {
        [] => uri.path().to_string(),
        pairs => format!("{}?{}", uri.path(), pairs.join("&")),
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(path_and_query.parse().ok()?);
    Uri::from_parts(parts).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> Uri {
        s.parse().unwrap()
    }

    #[test]
    fn values_are_decoded_and_names_compared_decoded() {
        assert_eq!(
            first("a=1&session=u%40x+y&b", "session").as_deref(),
            Some("u@x y")
        );
        assert_eq!(first("code=abc", "state"), None);
        assert_eq!(values("s=1&%73=2&t=3", "s"), ["1", "2"]);
        assert_eq!(first("x=%zz", "x").as_deref(), Some("%zz"));
        assert_eq!(first("x=%FF", "x"), None);
    }

    #[test]
    fn take_removes_every_occurrence_and_keeps_the_rest_in_order() {
        let mut u = uri("https://bank.test/v1/accounts?a=1&sessionId=u%40x&b=2&sessionId=v");
        assert_eq!(take(&mut u, "sessionId").unwrap(), ["u@x", "v"]);
        assert_eq!(u.to_string(), "https://bank.test/v1/accounts?a=1&b=2");
        let mut only = uri("https://bank.test/x?sessionId=s");
        assert_eq!(take(&mut only, "sessionId").unwrap(), ["s"]);
        assert_eq!(only.to_string(), "https://bank.test/x");
        assert!(take(&mut only, "sessionId").unwrap().is_empty());
        let mut odd = uri("https://bank.test/x?sessionId=%FF");
        assert_eq!(take(&mut odd, "sessionId").unwrap().len(), 1, "counted");
        assert_eq!(only.to_string(), "https://bank.test/x");
    }

    #[test]
    fn set_replaces_the_apps_value_and_appends() {
        let u = uri("http://api.test/v1/recognize?authoriz%61tion=app&x=1");
        let set = set(&u, "authorization", "k%2By").unwrap();
        assert_eq!(
            set.to_string(),
            "http://api.test/v1/recognize?x=1&authorization=k%2By"
        );
        assert_eq!(raw(&set, "authorization"), Some("k%2By"));
        let bare = super::set(&uri("http://api.test/p"), "k", "v").unwrap();
        assert_eq!(bare.to_string(), "http://api.test/p?k=v");
    }
}
