//! `check` refuses hmac templates that cannot work, by key path.

use super::super::validate;

/// Every problem of a config holding credential `h` with `keys`.
fn problems(keys: &str) -> Vec<String> {
    let toml = format!("[credential.h]\ntype = \"hmac\"\n{keys}");
    let dir = tempfile::tempdir().unwrap();
    match validate(&toml, dir.path()) {
        Ok(_) => Vec::new(),
        Err(e) => e.problems.iter().map(|p| p.to_string()).collect(),
    }
}

/// The one problem of `keys`, which must be at `path` and say `says`.
fn refused(keys: &str, path: &str, says: &str) {
    let found = problems(keys);
    assert!(
        found
            .iter()
            .any(|p| p.starts_with(&format!("{path}: ")) && p.contains(says)),
        "wanted {path}: ...{says}...; got {found:?}"
    );
}

const OK: &str = "secret = \"s\"\nsign = [\"method\", \"path\", \"timestamp\"]\nheaders = { \"X-Sig\" = \"{signature}\", \"X-Time\" = \"{timestamp}\" }\n";

#[test]
fn a_plain_template_and_every_recipe_are_accepted() {
    assert_eq!(problems(OK), Vec::<String>::new());
    for (name, _) in super::recipes::RECIPES {
        let keys = format!("recipe = \"{name}\"\nsecret = \"s\"\napi_key = \"k\"\n");
        assert_eq!(problems(&keys), Vec::<String>::new(), "{name}");
    }
}

#[test]
fn unknown_parts_placeholders_and_values_are_named() {
    refused(
        &OK.replace("\"path\"", "\"url\""),
        "credential.h.sign[1]",
        "is not a part",
    );
    refused(
        &OK.replace("\"path\"", "42"),
        "credential.h.sign[1]",
        "must be a part name",
    );
    refused(
        &OK.replace("\"path\"", "{ txt = \"a\" }"),
        "credential.h.sign[1]",
        "{ text = ",
    );
    refused(
        &OK.replace("\"path\"", "\"signature\""),
        "credential.h.sign[1]",
        "cannot sign itself",
    );
    refused(
        &OK.replace("{timestamp}\" }", "{time}\" }"),
        "credential.h.headers.X-Time",
        "unknown placeholder; use {method}",
    );
    refused(
        &OK.replace("{timestamp}\" }", "{timestamp\" }"),
        "credential.h.headers.X-Time",
        "never closed",
    );
    refused(
        &OK.replace("{timestamp}\" }", "}{timestamp}\" }"),
        "credential.h.headers.X-Time",
        "closes nothing",
    );
    refused(
        &format!("{OK}algorithm = \"sha256\"\n"),
        "credential.h.algorithm",
        "hmac-sha256",
    );
    refused(
        &format!("{OK}encoding = \"b64\"\n"),
        "credential.h.encoding",
        "\"base64\" or \"hex\"",
    );
    refused(
        &format!("{OK}timestamp = \"iso\"\n"),
        "credential.h.timestamp",
        "unix-ms",
    );
    refused(
        &format!("{OK}nonce = \"uuid\"\nnonce_length = 12\n"),
        "credential.h.nonce_length",
        "does not apply",
    );
    refused(
        &format!("{OK}nonce_length = 4\n"),
        "credential.h.nonce_length",
        "between 8 and 64",
    );
    refused(
        &format!("{OK}recipe = \"stripe\"\n"),
        "credential.h.recipe",
        "\"line-pay-v3\", \"bitflyer\", \"paypay-opa\"",
    );
    refused(&format!("{OK}colour = 1\n"), "credential.h", "colour");
}

#[test]
fn missing_keys_are_named() {
    refused(
        &OK.replace("secret = \"s\"\n", ""),
        "credential.h.secret",
        "missing",
    );
    refused(
        &OK.replace("sign = [\"method\", \"path\", \"timestamp\"]", "sign = []"),
        "credential.h.sign",
        "missing",
    );
    refused(
        "secret = \"s\"\nsign = [\"method\"]\n",
        "credential.h.headers",
        "missing",
    );
}

#[test]
fn templates_that_cannot_work_are_refused() {
    // No signature in any header.
    refused(
        &OK.replace("{signature}", "fixed"),
        "credential.h.headers",
        "no header holds {signature}",
    );
    // A header with a value the string to sign does not define.
    refused(
        &OK.replace("{timestamp}\" }", "{nonce}\" }"),
        "credential.h.headers.X-Time",
        "uses {nonce}, which the string to sign does not define",
    );
    // The secret and the body never go into a header.
    refused(
        &OK.replace("{timestamp}\" }", "{secret}\" }"),
        "credential.h.headers.X-Time",
        "never leaves",
    );
    refused(
        &OK.replace("{timestamp}\" }", "{body}\" }"),
        "credential.h.headers.X-Time",
        "cannot hold {body}",
    );
    // The body once, and its digest only after it.
    refused(
        &OK.replace("\"path\"", "\"body\", \"body\""),
        "credential.h.sign",
        "more than once",
    );
    refused(
        &format!(
            "{}body_digest = {{ algorithm = \"md5\" }}\n",
            OK.replace("\"path\"", "\"body_digest\", \"body\"")
        ),
        "credential.h.sign[1]",
        "cannot come before \"body\"",
    );
    // {api_key} without api_key; body_digest used without its settings and the other way round.
    refused(
        &OK.replace("\"path\"", "\"api_key\""),
        "credential.h.api_key",
        "missing",
    );
    refused(
        &OK.replace("\"path\"", "\"body_digest\""),
        "credential.h.body_digest",
        "missing",
    );
    refused(
        &format!("{OK}body_digest = {{ algorithm = \"md5\" }}\n"),
        "credential.h.body_digest",
        "neither `sign` nor a header uses",
    );
    refused(
        &format!("{OK}no_body = \"empty\"\n"),
        "credential.h.no_body",
        "signs neither the body nor body_digest",
    );
    // Headers countersign owns, invalid names and values, the same header twice.
    refused(
        &OK.replace("X-Sig", "Content-Length"),
        "credential.h.headers.Content-Length",
        "managed by countersign",
    );
    refused(
        &OK.replace("X-Sig", "Content-Type"),
        "credential.h.headers.Content-Type",
        "cannot be written",
    );
    refused(
        &OK.replace("X-Sig", "X Sig"),
        "credential.h.headers.X Sig",
        "not a valid header name",
    );
    refused(
        &OK.replace("{signature}", "{signature}\\n"),
        "credential.h.headers.X-Sig",
        "not a valid header value",
    );
    refused(
        &OK.replace("\"X-Time\"", "\"x-sig\""),
        "credential.h.headers.x-sig",
        "case-insensitive",
    );
}

#[test]
fn a_recipe_key_set_again_is_refused() {
    refused(
        "recipe = \"bitflyer\"\nsecret = \"s\"\napi_key = \"k\"\nencoding = \"base64\"\n",
        "credential.h.encoding",
        "is set by recipe \"bitflyer\"",
    );
    refused(
        "recipe = \"bitflyer\"\nsecret = \"s\"\n",
        "credential.h.api_key",
        "missing",
    );
}

#[test]
fn secrets_are_references_and_never_shown() {
    let found = problems(&format!(
        "{}api_key = \"${{env:COUNTERSIGN_TEST_UNSET_HMAC_KEY}}\"\n",
        OK.replace("\"path\"", "\"api_key\"")
    ));
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("credential.h.api_key: ")),
        "{found:?}"
    );
    let found = problems(&OK.replace("secret = \"s\"", "secret = \"Sup3rS3cret\"\nrecipe = 7"));
    assert!(
        !found.iter().any(|p| p.contains("Sup3rS3cret")),
        "{found:?}"
    );
    // A secret pasted into a template, a part or a setting is not quoted back.
    for wrong in [
        OK.replace("{timestamp}\" }", "{Sup3rS3cret}\" }"),
        format!("{OK}algorithm = \"Sup3rS3cret\"\n"),
        format!("{OK}recipe = \"Sup3rS3cret\"\n"),
        OK.replace("\"path\"", "\"Sup3rS3cret\""),
    ] {
        let found = problems(&wrong);
        assert!(!found.is_empty(), "{wrong}");
        assert!(
            !found.iter().any(|p| p.contains("Sup3rS3cret")),
            "{found:?}"
        );
    }
}

/// `check` sees a header another credential of the route writes.
#[test]
fn a_header_another_stacked_credential_writes_is_refused() {
    let toml = format!(
        "[credential.h]\ntype = \"hmac\"\n{OK}\n[credential.k]\ntype = \"header\"\nheaders = {{ \"x-time\" = \"1\" }}\n[[route]]\nname = \"r\"\nhosts = [\"a.test\"]\nupstream = \"https://a.test\"\ncredential = [\"k\", \"h\"]\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let e = validate(&toml, dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("route[0].credential: `k` and `h` both write the header `x-time`"),
        "{e}"
    );
}
