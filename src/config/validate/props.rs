//! Property tests: a valid config with one generated value put under any key
//! (known or not, of any TOML type) never makes loading panic, and no
//! problem ever quotes the value, whatever type it has and wherever it sits.

use proptest::prelude::*;

use super::validate;

mod places;

use places::{BASE, PLACES};

/// A value, and the text that must never show in a problem (empty when the
/// value has no text of its own worth looking for, like `true`).
fn values() -> impl Strategy<Value = (toml::Value, String)> {
    // Printable, with quotes and backslashes (serde escapes those when it
    // quotes a string, so the escaped form is looked for too), never `${`.
    let secret = "Zq[A-Za-z0-9!#%&*+/=?@^_|~:;,. \"\\\\'-]{8,24}";
    prop_oneof![
        secret.prop_map(|s| (toml::Value::String(s.clone()), s)),
        (1_000_000_000i64..i64::MAX).prop_map(|n| (toml::Value::Integer(n), n.to_string())),
        (100_000i64..10_000_000, 1u32..999).prop_map(|(a, b)| {
            let f: f64 = format!("{a}.{b}").parse().unwrap_or(1.5);
            (toml::Value::Float(f), f.to_string())
        }),
        any::<bool>().prop_map(|b| (toml::Value::Boolean(b), String::new())),
        secret.prop_map(|s| (toml::Value::Array(vec![toml::Value::String(s.clone())]), s)),
        secret.prop_map(|s| {
            let mut t = toml::Table::new();
            for key in ["username", "password", "x"] {
                t.insert(key.into(), toml::Value::String(s.clone()));
            }
            (toml::Value::Table(t), s)
        }),
        (1_000_000_000i64..i64::MAX).prop_map(|n| {
            let mut t = toml::Table::new();
            t.insert("username".into(), toml::Value::Integer(n));
            (toml::Value::Table(t), n.to_string())
        }),
    ]
}

fn place() -> impl Strategy<Value = (&'static str, String)> {
    (0..PLACES.len())
        .prop_flat_map(|i| {
            let (table, keys) = PLACES[i];
            let known = prop::sample::select(keys.to_vec()).prop_map(str::to_string);
            let unknown = "[a-z_]{1,12}";
            (Just(table), prop_oneof![4 => known, 1 => unknown])
        })
        .boxed()
}

/// The base with `value` set at `table`.`key` (`route.0` is the first route).
fn with_value(table: &str, key: &str, value: toml::Value) -> String {
    let mut doc: toml::Table = BASE.parse().expect("the base parses");
    let mut here = &mut doc;
    // Numeric parts are array indexes; only the first route is used, and
    // stepping into the array already took it.
    for part in table
        .split('.')
        .filter(|p| !p.is_empty() && p.parse::<usize>().is_err())
    {
        let entry = here
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        here = match entry {
            toml::Value::Table(t) => t,
            toml::Value::Array(a) => match a.first_mut() {
                Some(toml::Value::Table(t)) => t,
                _ => unreachable!("arrays in the base hold tables"),
            },
            _ => unreachable!("{part} is a table in the base"),
        };
    }
    here.insert(key.to_string(), value);
    toml::to_string(&doc).expect("a table serializes")
}

fn assert_never_quoted(text: &str, needle: &str) {
    if needle.is_empty() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Err(e) = validate(text, dir.path()) else {
        return;
    };
    let escaped = format!("{needle:?}");
    let escaped = &escaped[1..escaped.len() - 1];
    let shown = e.to_string();
    assert!(
        !shown.contains(needle) && !shown.contains(escaped),
        "the value {needle:?} is quoted in: {shown}"
    );
}

#[test]
fn the_base_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    validate(BASE, dir.path()).unwrap_or_else(|e| panic!("{e}"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_value_under_any_key_is_never_quoted(
        (table, key) in place(),
        (value, needle) in values(),
    ) {
        let text = with_value(table, &key, value);
        assert_never_quoted(&text, &needle);
    }

    /// An unquoted word where a value belongs is a syntax error; its
    /// message gives the position, never the word.
    #[test]
    fn a_bare_word_is_never_quoted(
        line in 1usize..60,
        word in "Zq[A-Za-z0-9_-]{8,20}",
    ) {
        let mut lines: Vec<&str> = BASE.lines().collect();
        let at = line.min(lines.len());
        let bad = format!("api_secret = {word}");
        lines.insert(at, &bad);
        assert_never_quoted(&lines.join("\n"), &word);
    }

    /// Whatever text surrounds the base, loading answers; it never panics.
    #[test]
    fn loading_never_panics(
        before in "[ -~\n]{0,40}",
        after in "[ -~\n\t\u{80}-\u{10ffff}]{0,80}",
    ) {
        let dir = tempfile::tempdir().unwrap();
        let _ = validate(&format!("{before}\n{BASE}\n{after}"), dir.path());
        let _ = validate(&format!("{BASE}{after}"), dir.path());
    }
}
