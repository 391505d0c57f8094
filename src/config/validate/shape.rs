//! TOML shape errors as problems that name the key and the expected type,
//! never the value. serde and toml quote what they refused (`invalid type:
//! string "svc-user:Pr0dPassw0rd!", expected struct RawBasic`), and a value
//! typed in the wrong place may well be a secret; so every message is
//! rewritten here from its parts, and only the parts that come from
//! countersign's own types (expected types, field names) or from the key
//! path are kept.

use super::Checker;

impl Checker<'_> {
    /// Records `e`, a shape error of the value at `base`, under the full key
    /// path of the value it is about.
    pub(super) fn shape_problem(&mut self, base: &str, e: &toml::de::Error) {
        let path = match key_path(e) {
            Some(keys) if base.is_empty() => keys,
            Some(keys) => format!("{base}.{keys}"),
            None => base.to_string(),
        };
        self.problem(path, describe(e.message()));
    }
}

/// The key path toml keeps for an error in a deserialized value. It shows it
/// only in `Display` (`MESSAGE\nin `a.b`\n`, for errors without a source
/// position), so it is taken from there.
fn key_path(e: &toml::de::Error) -> Option<String> {
    if e.span().is_some() {
        return None;
    }
    let shown = e.to_string();
    let keys = shown
        .strip_prefix(e.message())?
        .trim_end()
        .strip_prefix("\nin `")?
        .strip_suffix('`')?;
    (!keys.is_empty()).then(|| keys.to_string())
}

/// A serde or toml message without the value it refused.
pub(super) fn describe(message: &str) -> String {
    let message = message.trim();
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        // The expected part comes from countersign's own types, so the last
        // ", expected " is the one serde wrote, whatever the value held.
        return match rest.rsplit_once(", expected ") {
            Some((found, _)) if found.ends_with(" as i128") => {
                "integer out of range (at most 64 bits)".to_string()
            }
            Some((found, expected)) => {
                format!(
                    "expected {}, found {}",
                    expected_kind(expected),
                    found_kind(found)
                )
            }
            None => "has the wrong type".to_string(),
        };
    }
    if let Some(rest) = message.strip_prefix("invalid value: ") {
        return match rest.rsplit_once(", expected ") {
            Some((_, expected)) => format!("invalid value; expected {}", expected_kind(expected)),
            None => "invalid value".to_string(),
        };
    }
    if message.starts_with("unknown variant ") {
        return match message.rsplit_once(", expected ") {
            Some((_, expected)) => format!("unknown variant; expected {expected}"),
            None => "unknown variant".to_string(),
        };
    }
    if message.starts_with("data did not match any variant") {
        return "has the wrong type".to_string();
    }
    // The rest name keys and countersign's own field names (`unknown field
    // `x`, expected one of ...`, `missing field `y``, `invalid length 2,
    // expected ...`), or are toml's fixed syntax messages.
    message.to_string()
}

/// What a value was, from serde's description of it, without the value.
fn found_kind(found: &str) -> &'static str {
    const KINDS: &[(&str, &str)] = &[
        ("string", "a string"),
        ("character", "a string"),
        ("integer", "an integer"),
        ("floating point", "a float"),
        ("boolean", "a boolean"),
        ("map", "a table"),
        ("sequence", "an array"),
    ];
    KINDS
        .iter()
        .find(|(prefix, _)| found.starts_with(prefix))
        .map_or("a value of another type", |(_, kind)| kind)
}

/// serde's name for the type it wanted, in TOML words.
fn expected_kind(expected: &str) -> &str {
    match expected {
        e if e.starts_with("struct ") => "a table",
        "a map" | "map" => "a table",
        "a sequence" | "sequence" => "an array",
        "i8" | "i16" | "i32" | "i64" | "i128" | "u8" | "u16" | "u32" | "u64" | "u128" | "usize"
        | "isize" => "an integer",
        "f32" | "f64" => "a number",
        "a boolean" => "true or false",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_type_errors_keep_the_types_and_lose_the_value() {
        for (message, want) in [
            (
                r#"invalid type: string "svc-user:Pr0dPassw0rd!", expected struct RawBasic"#,
                "expected a table, found a string",
            ),
            (
                r#"invalid type: string "a\", expected b", expected a map"#,
                "expected a table, found a string",
            ),
            (
                "invalid type: integer `12345678`, expected a string",
                "expected a string, found an integer",
            ),
            (
                "invalid type: floating point `1.5`, expected a string",
                "expected a string, found a float",
            ),
            (
                "invalid type: boolean `true`, expected a string",
                "expected a string, found a boolean",
            ),
            (
                "invalid type: integer `99999999999999999999` as i128, expected any valid TOML value",
                "integer out of range (at most 64 bits)",
            ),
            (
                "invalid value: integer `-5`, expected u16",
                "invalid value; expected an integer",
            ),
            (
                "unknown variant `hunter2`, expected `a` or `b`",
                "unknown variant; expected `a` or `b`",
            ),
        ] {
            assert_eq!(describe(message), want, "{message}");
        }
        assert_eq!(
            describe("unknown field `bogus`, expected `username` or `password`"),
            "unknown field `bogus`, expected `username` or `password`"
        );
    }

    /// Pins the one thing taken from toml's `Display`: the key path line.
    #[test]
    fn the_key_path_is_found_in_tomls_error() {
        let table: toml::Table = "[x]\nbasic = { username = 5 }\n".parse().unwrap();
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code, reason = "only the deserialization error is read")]
        struct Basic {
            username: String,
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code, reason = "only the deserialization error is read")]
        struct X {
            basic: Basic,
        }
        let e = toml::Value::Table(table)
            .try_into::<std::collections::BTreeMap<String, X>>()
            .unwrap_err();
        assert_eq!(key_path(&e).as_deref(), Some("x.basic.username"));
    }
}
