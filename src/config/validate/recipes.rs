//! Config recipes in the docs pass `check` (test-only): a page's TOML
//! blocks are loaded the way `countersign check` loads a file, their
//! placeholders pointed at real test files (keys, certificates, the
//! session folders, `${file:}` secrets) and every `${env:}` given a value,
//! so a recipe cannot rot when a key is renamed or a rule added. Used for
//! docs/credentials/oauth2.md (`oauth2/recipes.rs`) and the README's
//! signature recipes (here).

use std::env::VarError;
use std::path::Path;

use toml::{Table, Value};

use super::super::secret::Env;
use super::validate_with_env;

const RSA: &str = include_str!("../../../tests/integration/oauth2/test-rsa-key.pem");
const EC: &str = include_str!("../../../tests/integration/oauth2/test-ec-key.pem");
const ED25519: &str = include_str!("../../../tests/rfc9421/test-key-ed25519.pem");

/// Every `${env:NAME}` of a recipe has a value (letters and digits: some
/// keys, such as an AWS access key id, take nothing else).
pub(super) struct AnyEnv;

impl Env for AnyEnv {
    fn var(&self, name: &str) -> Result<String, VarError> {
        let name: String = name.chars().filter(char::is_ascii_alphanumeric).collect();
        Ok(format!("recipe{name}"))
    }
}

/// The ```toml blocks of `doc`, unindented (some sit in list items), with
/// the line each starts on.
pub(super) fn blocks(doc: &str) -> Vec<(usize, String)> {
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
fn localize(key: &str, value: &mut Value, owner: &str, pem: &str, code_flow: bool, dir: &Path) {
    let Value::String(text) = value else {
        return;
    };
    let local = match key {
        "private_key_file" => pem.to_string(),
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
pub(super) fn local_config(block: &Table, dir: &Path) -> String {
    let mut doc = block.clone();
    if let Some(Value::Table(credentials)) = doc.get_mut("credential") {
        for (name, credential) in credentials.iter_mut() {
            let Value::Table(c) = credential else {
                continue;
            };
            // The test key of the credential's algorithm (RSA unless named).
            let alg = |k| c.get(k).and_then(Value::as_str);
            let pem = match (alg("signing_alg"), alg("algorithm")) {
                (Some("ES256"), _) | (_, Some("ecdsa-p256-sha256")) => "ec.pem",
                (_, Some("ed25519")) => "ed25519.pem",
                _ => "rsa.pem",
            };
            let code_flow = c.get("grant").and_then(Value::as_str) == Some("authorization_code");
            for (key, value) in c.iter_mut() {
                localize(key, value, name, pem, code_flow, dir);
            }
        }
    }
    if let Some(Value::Array(routes)) = doc.get_mut("route") {
        for route in routes.iter_mut().filter_map(Value::as_table_mut) {
            for (key, value) in route.iter_mut() {
                localize(key, value, "route", "rsa.pem", false, dir);
            }
        }
    }
    let mut proxy = Table::new();
    proxy.insert("listen".into(), Value::String("127.0.0.1:3128".into()));
    doc.entry("proxy").or_insert(Value::Table(proxy));
    toml::to_string(&doc).unwrap()
}

/// Lays `later`'s credentials over the earlier definitions in `seen`.
pub(super) fn continued(later: &Table, seen: &Table) -> Table {
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

pub(super) fn fixtures(dir: &Path) {
    std::fs::write(dir.join("rsa.pem"), RSA).unwrap();
    std::fs::write(dir.join("ec.pem"), EC).unwrap();
    std::fs::write(dir.join("ed25519.pem"), ED25519).unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["tpp.client.test".into()]).unwrap();
    std::fs::write(dir.join("client.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.join("client.key"), cert.signing_key.serialize_pem()).unwrap();
    std::fs::write(dir.join("secret"), "recipe-secret-0123456789abcdef\n").unwrap();
}

/// Each ```toml block of `doc` (named `page` in failures) passes `check`;
/// the number of blocks. A block that continues an earlier one (a `# ...`
/// line: "as in the session example above") is laid over the earlier
/// definition of its credential; a route naming a credential no block
/// defines (the README's "an oauth2 credential first") gets a plain
/// client-credentials one.
pub(super) fn check_page(page: &str, doc: &str) -> usize {
    let dir = tempfile::tempdir().unwrap();
    fixtures(dir.path());
    let found = blocks(doc);
    // Credentials as defined so far, for blocks that continue one.
    let mut seen = Table::new();
    for (line, text) in &found {
        let block: Table = text
            .parse()
            .unwrap_or_else(|e| panic!("{page}:{line}: not TOML: {e}"));
        let mut block = if text.contains("# ...") {
            continued(&block, &seen)
        } else {
            block
        };
        if let Some(Value::Table(credentials)) = block.get("credential") {
            seen.extend(credentials.clone());
        }
        define_named(&mut block);
        let config = local_config(&block, dir.path());
        if let Err(e) = validate_with_env(&config, dir.path(), &AnyEnv) {
            panic!("{page}:{line}: the recipe fails check:\n{e}\n{config}");
        }
    }
    found.len()
}

/// Defines, as a plain client-credentials OAuth2 credential, every
/// credential a route of `block` names that `block` does not define.
fn define_named(block: &mut Table) {
    let mut named = Vec::new();
    if let Some(Value::Array(routes)) = block.get("route") {
        for route in routes.iter().filter_map(Value::as_table) {
            match route.get("credential") {
                Some(Value::String(one)) => named.push(one.clone()),
                Some(Value::Array(list)) => {
                    named.extend(list.iter().filter_map(Value::as_str).map(String::from))
                }
                _ => {}
            }
        }
    }
    let credentials = block
        .entry("credential")
        .or_insert_with(|| Value::Table(Table::new()));
    let Value::Table(credentials) = credentials else {
        return;
    };
    for name in named {
        if !credentials.contains_key(&name) {
            let plain: Table = "type = \"oauth2\"\ngrant = \"client_credentials\"\ntoken_url = \"https://as.test/token\"\nclient_id = \"id\"\nclient_secret = \"${env:SECRET}\"\n"
                .parse()
                .unwrap();
            credentials.insert(name, Value::Table(plain));
        }
    }
}

/// The README's signature recipes (one per scheme) pass `check`.
#[test]
fn the_readmes_signature_recipes_pass_check() {
    let readme = include_str!("../../../README.md");
    let from = readme.find("## Signature recipes").expect("the section");
    let section = &readme[from..];
    let section = &section[..section[3..]
        .find("\n## ")
        .map_or(section.len(), |end| end + 3)];
    assert_eq!(check_page("README.md", section), 4, "one block per scheme");
}
