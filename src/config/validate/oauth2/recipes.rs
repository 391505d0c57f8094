//! The recipes of docs/credentials/oauth2.md pass `check`
//! (`validate::recipes` loads them the way `countersign check` does).

use super::super::recipes::{blocks, check_page};

const DOC: &str = include_str!("../../../../docs/credentials/oauth2.md");

#[test]
fn every_recipe_on_the_oauth2_page_passes_check() {
    let found = check_page("docs/credentials/oauth2.md", DOC);
    assert!(found >= 8, "the page's TOML blocks: {found}");
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
