//! The recipes of docs/credentials/oauth2.md pass `check`: every TOML
//! block on that page is loaded the way `countersign check` loads a file,
//! its placeholders pointed at real test files (keys, certificates, the
//! session folders, `${file:}` secrets) and every `${env:}` given a value,
//! so a recipe cannot rot when a key is renamed or a rule added. A block
//! that continues an earlier one (a `# ...` line: "as in the session
//! example above") is laid over the earlier definition of its credential.

use std::env::VarError;
use std::path::Path;

use toml::{Table, Value};

use super::super::super::secret::Env;
use super::super::validate_with_env;

const DOC: &str = include_str!("../../../../docs/credentials/oauth2.md");
const RSA: &str = include_str!("../../../../tests/integration/oauth2/test-rsa-key.pem");
const EC: &str = include_str!("../../../../tests/integration/oauth2/test-ec-key.pem");

/// Every `${env:NAME}` of a recipe has a value.
struct AnyEnv;

impl Env for AnyEnv {
    fn var(&self, name: &str) -> Result<String, VarError> {
        Ok(format!("recipe-{name}"))
    }
}

/// The ```toml blocks of `doc`, unindented (some sit in list items), with
/// the line each starts on.
fn blocks(doc: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut open: Option<(usize, usize, String)> = None;
    for (n, line) in doc.lines().enumerate() {
        let trimmed = line.trim_start();
        if let Some((start, indent, mut text)) = open.take() {
            if trimmed == "```" {
                out.push((start, text));
            } else {
                text.push_str(line.get(indent..).unwrap_or(trimmed));
                text.push('\n');
                open = Some((start, indent, text));
            }
        } else if trimmed == "```toml" {
            open = Some((n + 1, line.len() - trimmed.len(), String::new()));
        }
    }
    out
}

/// Points a value at the test files: what a recipe names under /run or
/// /var (and `${file:}` secrets) becomes a file or folder in `dir`.
fn localize(key: &str, value: &mut Value, owner: &str, ec: bool, code_flow: bool, dir: &Path) {
    let Value::String(text) = value else {
        return;
    };
    let local = match key {
        "private_key_file" if ec => "ec.pem".to_string(),
        "private_key_file" => "rsa.pem".to_string(),
        "client_cert" | "ca_file" => "client.pem".to_string(),
        "client_key" => "client.key".to_string(),
        "token_store" => {
            let store = format!("store-{owner}");
            if code_flow {
                std::fs::create_dir_all(dir.join(&store)).unwrap();
            }
            store
        }
        _ if text.starts_with("${file:") => "${file:secret}".to_string(),
        _ => return,
    };
    *text = local;
}

/// The recipe `block` as a file `check` can load in `dir`.
fn local_config(block: &Table, dir: &Path) -> String {
    let mut doc = block.clone();
    if let Some(Value::Table(credentials)) = doc.get_mut("credential") {
        for (name, credential) in credentials.iter_mut() {
            let Value::Table(c) = credential else {
                continue;
            };
            let ec = c.get("signing_alg").and_then(Value::as_str) == Some("ES256");
            let code_flow = c.get("grant").and_then(Value::as_str) == Some("authorization_code");
            for (key, value) in c.iter_mut() {
                localize(key, value, name, ec, code_flow, dir);
            }
        }
    }
    if let Some(Value::Array(routes)) = doc.get_mut("route") {
        for route in routes.iter_mut().filter_map(Value::as_table_mut) {
            for (key, value) in route.iter_mut() {
                localize(key, value, "route", false, false, dir);
            }
        }
    }
    let mut proxy = Table::new();
    proxy.insert("listen".into(), Value::String("127.0.0.1:3128".into()));
    doc.entry("proxy").or_insert(Value::Table(proxy));
    toml::to_string(&doc).unwrap()
}

/// Lays `later`'s credentials over the earlier definitions in `seen`.
fn continued(later: &Table, seen: &Table) -> Table {
    let mut merged = later.clone();
    if let Some(Value::Table(credentials)) = merged.get_mut("credential") {
        for (name, credential) in credentials.iter_mut() {
            let (Some(Value::Table(earlier)), Value::Table(c)) = (seen.get(name), &*credential)
            else {
                continue;
            };
            let mut whole = earlier.clone();
            whole.extend(c.clone());
            *credential = Value::Table(whole);
        }
    }
    merged
}

fn fixtures(dir: &Path) {
    std::fs::write(dir.join("rsa.pem"), RSA).unwrap();
    std::fs::write(dir.join("ec.pem"), EC).unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["tpp.client.test".into()]).unwrap();
    std::fs::write(dir.join("client.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.join("client.key"), cert.signing_key.serialize_pem()).unwrap();
    std::fs::write(dir.join("secret"), "recipe-secret-0123456789abcdef\n").unwrap();
}

#[test]
fn every_recipe_on_the_oauth2_page_passes_check() {
    let dir = tempfile::tempdir().unwrap();
    fixtures(dir.path());
    let found = blocks(DOC);
    assert!(found.len() >= 8, "the page's TOML blocks: {}", found.len());
    // Credentials as defined so far, for blocks that continue one.
    let mut seen = Table::new();
    for (line, text) in found {
        let block: Table = text
            .parse()
            .unwrap_or_else(|e| panic!("docs/credentials/oauth2.md:{line}: not TOML: {e}"));
        let block = if text.contains("# ...") {
            continued(&block, &seen)
        } else {
            block
        };
        if let Some(Value::Table(credentials)) = block.get("credential") {
            seen.extend(credentials.clone());
        }
        let config = local_config(&block, dir.path());
        if let Err(e) = validate_with_env(&config, dir.path(), &AnyEnv) {
            panic!("docs/credentials/oauth2.md:{line}: the recipe fails check:\n{e}\n{config}");
        }
    }
    // The FAPI 2.0 bank, the GMO drop-in mode and Korea's user_seq_no are
    // among them.
    for (name, needle) in [
        ("FAPI 2.0 bank", "[credential.fapi2]"),
        ("GMO drop-in", "appliance = \"gmo-aozora\""),
        ("Korea", "session_facts = [\"user_seq_no\"]"),
        ("UK open banking", "request_object = \"signed\""),
    ] {
        assert!(
            blocks(DOC).iter().any(|(_, t)| t.contains(needle)),
            "no {name} recipe"
        );
    }
}
