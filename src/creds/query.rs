//! One parameter of a request's form-encoded query string: read, taken out
//! or set, with every other parameter kept exactly as the app sent it, in
//! order. Names are compared decoded, so `authoriz%61tion` is the same
//! parameter as `authorization` and cannot slip past as a second one.
//! `set`, which puts a credential there, compares as the most lenient
//! server would read the query (see `lenient_match`).

use http::Uri;

use super::form;
use crate::lenient::{self, Plus, MAX_LAYERS};

/// Why a parameter cannot be set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetError {
    /// A parameter of that name hides inside another (after `;`, or
    /// behind an encoded `&`), where some servers would find it.
    Smuggled,
    /// A parameter is encoded in too many layers to tell what it is.
    TooDeep,
    /// The URI cannot be rebuilt.
    NotAUri,
}

impl std::fmt::Display for SetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SetError::Smuggled => f.write_str("the query hides a parameter of that name inside another (after `;`, or behind an encoded `&`), which some servers read as a separate parameter; send it as its own `&` pair or not at all"),
            SetError::TooDeep => write!(f, "a query parameter is percent-encoded in more than {MAX_LAYERS} layers, so it cannot be told apart from that parameter; encode it once"),
            SetError::NotAUri => f.write_str("the URL cannot be rebuilt with it"),
        }
    }
}

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
/// `value` must already be form-encoded. A pair is dropped when a lenient
/// server could read it as `name` (`lenient_match`); a request that hides
/// `name` elsewhere is refused, so the upstream sees the one value set here.
pub fn set(uri: &Uri, name: &str, encoded_value: &str) -> Result<Uri, SetError> {
    let target = fold_name(&lenient::read(name, Plus::Space).map_err(|_| SetError::TooDeep)?);
    let mut kept: Vec<&str> = Vec::new();
    let query = uri.query().filter(|q| !q.is_empty());
    for pair in query.into_iter().flat_map(|q| q.split('&')) {
        match lenient_match(pair, &target)? {
            Found::Named => {}
            Found::No => kept.push(pair),
        }
    }
    let param = format!("{}={encoded_value}", form::encode(name));
    kept.push(&param);
    with_query(uri, &kept).ok_or(SetError::NotAUri)
}

enum Found {
    Named,
    No,
}

/// Whether a lenient server could read `pair` as the parameter whose folded
/// name is `target`. It undoes every layer of encoding (`+` as space), splits
/// on `&` and `;`, ends a name at NUL, trims whitespace and ignores case
/// (Unicode's too: `ı`, `ſ` and `K` match as Java and .NET match them). The
/// pair is that parameter if its first piece is named so; any other piece
/// named so is smuggled.
fn lenient_match(pair: &str, target: &str) -> Result<Found, SetError> {
    let read = lenient::read(pair, Plus::Space).map_err(|_| SetError::TooDeep)?;
    let mut pieces = read.split(|b| *b == b'&' || *b == b';');
    let is_target = |piece: &[u8]| {
        let name = piece.split(|b| *b == b'=').next().unwrap_or(&[]);
        fold_name(name) == target
    };
    if pieces.next().is_some_and(is_target) {
        return Ok(Found::Named);
    }
    if pieces.any(is_target) {
        return Err(SetError::Smuggled);
    }
    Ok(Found::No)
}

/// A parameter name as a lenient server compares it: cut at NUL, trimmed,
/// case folded both ways.
fn fold_name(name: &[u8]) -> String {
    let end = name.iter().position(|b| *b == 0).unwrap_or(name.len());
    String::from_utf8_lossy(name[..end].trim_ascii())
        .chars()
        .flat_map(char::to_uppercase)
        .flat_map(char::to_lowercase)
        .filter(|c| *c != '\u{307}')
        .collect()
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
        let set = super::set(&u, "authorization", "k%2By").unwrap();
        assert_eq!(
            set.to_string(),
            "http://api.test/v1/recognize?x=1&authorization=k%2By"
        );
        assert_eq!(raw(&set, "authorization"), Some("k%2By"));
        let bare = super::set(&uri("http://api.test/p"), "k", "v").unwrap();
        assert_eq!(bare.to_string(), "http://api.test/p?k=v");
    }

    #[test]
    fn set_drops_every_lenient_spelling_and_refuses_hidden_ones() {
        for spelling in [
            "Authorization",
            "AUTHORIZATION",
            "%2561uthorization",
            "authorization%00x",
            "+authorization+",
            "authorization%20",
            "authori%u007Aation",
            "author%C4%B1zation",
            "%EF%BD%81uthorization",
            "authorization%3Dx",
            "authorization;x=1",
        ] {
            let u = uri(&format!("http://api.test/r?a=1&{spelling}=app&b=2"));
            let set = super::set(&u, "authorization", "k").unwrap();
            assert_eq!(set.query(), Some("a=1&b=2&authorization=k"), "{spelling}");
        }
        for hidden in [
            "a=1;authorization=app",
            "a=1%3Bauthorization=app",
            "a=1%26authorization%3Dapp",
            "a=1%2526Authorization%253Dapp",
        ] {
            let u = uri(&format!("http://api.test/r?{hidden}"));
            assert_eq!(
                super::set(&u, "authorization", "k"),
                Err(SetError::Smuggled),
                "{hidden}"
            );
        }
        for kept in [
            "authorization2=x",
            "x=authorization",
            "a=b;c=d",
            "xauthorization=1",
        ] {
            let u = uri(&format!("http://api.test/r?{kept}"));
            let set = super::set(&u, "authorization", "k").unwrap();
            assert_eq!(
                set.query(),
                Some(&*format!("{kept}&authorization=k")),
                "{kept}"
            );
        }
        let deep = uri("http://api.test/r?x=%2525252541");
        assert_eq!(super::set(&deep, "a", "k"), Err(SetError::TooDeep));
    }
}
