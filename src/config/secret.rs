//! Secret values and the `${env:NAME}` / `${file:PATH}` references that fill
//! them in at load (and at every reload). A `Secret` never prints its value:
//! `Debug` shows a placeholder and there is no `Display`.

use std::fmt;
use std::path::{Path, PathBuf};

/// A resolved secret string. Use `expose` only where the value goes on the wire.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Secret bytes (a private key, an encryption key); `Debug` never shows them.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    pub fn new(value: impl Into<Vec<u8>>) -> Self {
        SecretBytes(value.into())
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes(<redacted>)")
    }
}

/// Resolves references, relative `${file:}` paths against the config's folder,
/// and remembers every file read so that reload can watch them.
pub struct SecretResolver<'a> {
    base_dir: &'a Path,
    files_read: Vec<PathBuf>,
}

impl<'a> SecretResolver<'a> {
    pub fn new(base_dir: &'a Path) -> Self {
        SecretResolver {
            base_dir,
            files_read: Vec::new(),
        }
    }

    /// Every `${file:}` path seen so far, whether or not it could be read.
    pub fn into_files(self) -> Vec<PathBuf> {
        self.files_read
    }

    /// Expands every `${env:NAME}` and `${file:PATH}` in `text`; `$${` stands
    /// for a literal `${`. Errors name the reference, never a value.
    pub fn resolve(&mut self, text: &str) -> Result<Secret, String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            if rest[..start].ends_with('$') {
                out.push_str(&rest[..start - 1]);
                out.push_str("${");
                rest = &rest[start + 2..];
                continue;
            }
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| "unterminated `${` reference (missing `}`)".to_string())?;
            out.push_str(&self.lookup(&after[..end])?);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(Secret(out))
    }

    fn lookup(&mut self, reference: &str) -> Result<String, String> {
        if let Some(name) = reference.strip_prefix("env:") {
            return std::env::var(name).map_err(|e| match e {
                std::env::VarError::NotPresent => {
                    format!("environment variable `{name}` (from `${{env:{name}}}`) is not set")
                }
                std::env::VarError::NotUnicode(_) => {
                    format!("environment variable `{name}` is not valid UTF-8")
                }
            });
        }
        if let Some(path) = reference.strip_prefix("file:") {
            let full = self.base_dir.join(path);
            self.files_read.push(full.clone());
            let mut value = crate::file::read_text(&full)
                .map_err(|e| format!("cannot read `${{file:{path}}}` ({}): {e}", full.display()))?;
            if value.ends_with('\n') {
                value.pop();
                if value.ends_with('\r') {
                    value.pop();
                }
            }
            return Ok(value);
        }
        Err(format!(
            "unknown reference `${{{reference}}}`; use `${{env:NAME}}` or `${{file:PATH}}`"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn expands_env_and_file_and_escapes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key"), "from-file\n").unwrap();
        std::env::set_var("COUNTERSIGN_SECRET_TEST", "from-env");
        let mut r = SecretResolver::new(dir.path());
        let s = r
            .resolve("a ${env:COUNTERSIGN_SECRET_TEST} b ${file:key} c $${literal}")
            .unwrap();
        assert_eq!(s.expose(), "a from-env b from-file c ${literal}");
        assert_eq!(r.into_files(), vec![dir.path().join("key")]);
    }

    #[test]
    fn only_one_trailing_newline_is_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("k"), "v\n\n").unwrap();
        let mut r = SecretResolver::new(dir.path());
        assert_eq!(r.resolve("${file:k}").unwrap().expose(), "v\n");
    }

    #[test]
    fn errors_name_the_reference() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = SecretResolver::new(dir.path());
        let e = r.resolve("${env:COUNTERSIGN_SURELY_UNSET}").unwrap_err();
        assert!(e.contains("COUNTERSIGN_SURELY_UNSET"), "{e}");
        let e = r.resolve("${file:missing}").unwrap_err();
        assert!(e.contains("missing"), "{e}");
        assert!(r
            .resolve("${vault:x}")
            .unwrap_err()
            .contains("unknown reference"));
        assert!(r.resolve("${env:X").unwrap_err().contains("unterminated"));
    }

    #[test]
    fn special_files_are_refused_by_what_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = SecretResolver::new(dir.path());
        let e = r.resolve("${file:/dev/zero}").unwrap_err();
        assert!(e.contains("a device, not a regular file"), "{e}");
        let e = r.resolve("${file:.}").unwrap_err();
        assert!(e.contains("a folder"), "{e}");
    }

    /// Pieces that make up references, broken ones included.
    fn template() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("$".to_string()),
            Just("{".to_string()),
            Just("}".to_string()),
            Just("${".to_string()),
            Just("$${".to_string()),
            Just("${file:s}".to_string()),
            Just("${file:bin}".to_string()),
            Just("${file:missing}".to_string()),
            Just("${file:.}".to_string()),
            Just("${env:PATH}".to_string()),
            Just("${env:COUNTERSIGN_PROPTEST_SURELY_UNSET}".to_string()),
            Just("${vault:x}".to_string()),
            Just("env:".to_string()),
            Just("file:".to_string()),
            "[a-z/._]{0,6}",
            "[^$]{0,6}",
        ];
        prop::collection::vec(piece, 0..10).prop_map(|p| p.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Expanding never panics, and no error ever holds what a file
        /// holds (a readable secret, or the bytes of one that is not text).
        #[test]
        fn errors_never_hold_a_files_contents(
            text in template(),
            contents in "Zq[A-Za-z0-9!#%&*+/=?@^_|~ -]{8,24}",
        ) {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("s"), &contents).unwrap();
            let mut not_text = contents.clone().into_bytes();
            not_text.push(0xff);
            std::fs::write(dir.path().join("bin"), &not_text).unwrap();
            let mut r = SecretResolver::new(dir.path());
            match r.resolve(&text) {
                Ok(value) => {
                    if text.contains("${file:s}") && !text.contains("$${file:s}") {
                        prop_assert!(value.expose().contains(&contents));
                    }
                }
                Err(e) => prop_assert!(!e.contains(&contents), "{e}"),
            }
        }

        /// `$${` stands for `${`: escaping every `${` of any text gives the
        /// text back, with nothing looked up.
        #[test]
        fn escaped_text_comes_back_unchanged(text in "[$}{a-z:]{0,24}") {
            let dir = tempfile::tempdir().unwrap();
            let mut r = SecretResolver::new(dir.path());
            let escaped = text.replace("${", "$${");
            let value = r.resolve(&escaped).unwrap();
            prop_assert_eq!(value.expose(), text.as_str());
            prop_assert!(r.into_files().is_empty());
        }
    }
}
