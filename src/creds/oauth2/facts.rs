//! What a user session keeps of its token responses for the app (`Facts`,
//! stored with the session's grant): the scope granted, when it was
//! authorized and last renewed, and the fields `session_facts` selects,
//! taken from the code exchange and updated by every refresh that carries
//! them. Tokens never get here: `Issued::fields` has none.

use serde_json::{Map, Value};

use super::endpoint::Issued;
use crate::config::OAuth2Config;
use crate::creds::token::store::Facts;

/// A selected field whose value takes more than this as JSON is not kept
/// (the log names the field): facts are small things, like an id.
pub const MAX_FIELD: usize = 4096;

/// The credential's rule for its sessions' facts.
#[derive(Debug, Clone, Default)]
pub struct FactRule {
    /// `session_facts`: the top-level fields kept.
    selected: Vec<String>,
    /// The `scope` asked for, which is the scope granted when the code
    /// exchange's answer does not name one.
    requested_scope: Option<String>,
}

impl FactRule {
    /// The rule of `session_facts` = `selected`, on a credential that asks
    /// for `scope` (from `config.params`).
    pub fn new(selected: &[String], config: &OAuth2Config) -> FactRule {
        let requested_scope = config
            .params
            .iter()
            .find(|(name, _)| name == "scope")
            .map(|(_, v)| v.expose());
        FactRule::selecting(selected, requested_scope)
    }

    pub fn selecting(selected: &[String], requested_scope: Option<&str>) -> FactRule {
        FactRule {
            selected: selected.to_vec(),
            requested_scope: requested_scope.map(str::to_string),
        }
    }

    /// The facts of a session just authorized, from the code exchange's
    /// answer at `now` (Unix seconds).
    pub fn authorized(&self, label: &str, issued: &Issued, now: u64) -> Facts {
        let mut facts = Facts {
            authorized_at: Some(now),
            scope: self.requested_scope.clone(),
            ..Facts::default()
        };
        self.update(label, &mut facts, issued);
        facts
    }

    /// `previous` (none for a session stored before facts were kept),
    /// updated by a refresh's answer at `now`: what it names replaces
    /// what was there, what it leaves out stays.
    pub fn renewed(
        &self,
        label: &str,
        previous: Option<&Facts>,
        issued: &Issued,
        now: u64,
    ) -> Facts {
        let mut facts = previous.cloned().unwrap_or_default();
        facts.renewed_at = Some(now);
        self.update(label, &mut facts, issued);
        facts
    }

    /// The selected fields of `facts`, for the app: one stored under an
    /// earlier config and no longer selected is not shown.
    pub fn visible(&self, facts: &Facts) -> Map<String, Value> {
        self.selected
            .iter()
            .filter_map(|name| Some((name.clone(), facts.fields.get(name)?.clone())))
            .collect()
    }

    fn update(&self, label: &str, facts: &mut Facts, issued: &Issued) {
        if let Some(scope) = issued.fields.get("scope").and_then(Value::as_str) {
            facts.scope = Some(scope.to_string());
        }
        for name in &self.selected {
            match issued.fields.get(name) {
                None | Some(Value::Null) => {}
                Some(value) if value.to_string().len() > MAX_FIELD => {
                    tracing::warn!(credential = %label, field = %name, "the token response's field is larger than {MAX_FIELD} bytes as JSON; it is not kept as a session fact");
                }
                Some(value) => {
                    facts.fields.insert(name.clone(), value.clone());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use serde_json::json;
    use std::time::Duration;

    fn issued(fields: Value) -> Issued {
        Issued {
            value: HeaderValue::from_static("Bearer x"),
            lifetime: Duration::from_secs(60),
            refresh_token: None,
            id_token: None,
            fields: fields.as_object().unwrap().clone(),
        }
    }

    fn rule() -> FactRule {
        FactRule {
            selected: vec!["user_seq_no".into(), "note".into()],
            requested_scope: Some("login inquiry".into()),
        }
    }

    #[test]
    fn the_exchange_sets_and_a_refresh_updates_only_what_it_names() {
        let first = rule().authorized(
            "kr/alice",
            &issued(json!({"user_seq_no": "1100000001", "other": 1})),
            100,
        );
        assert_eq!(first.authorized_at, Some(100));
        assert_eq!(first.renewed_at, None);
        assert_eq!(first.scope.as_deref(), Some("login inquiry"), "as asked");
        assert_eq!(
            Value::Object(first.fields.clone()),
            json!({"user_seq_no": "1100000001"})
        );

        let later = rule().renewed(
            "kr/alice",
            Some(&first),
            &issued(json!({"scope": "login", "note": {"a": [1]}, "user_seq_no": null})),
            200,
        );
        assert_eq!(
            (later.authorized_at, later.renewed_at),
            (Some(100), Some(200))
        );
        assert_eq!(later.scope.as_deref(), Some("login"));
        assert_eq!(
            Value::Object(rule().visible(&later)),
            json!({"user_seq_no": "1100000001", "note": {"a": [1]}})
        );

        let huge = "x".repeat(MAX_FIELD);
        let kept = rule().renewed(
            "kr/alice",
            Some(&later),
            &issued(json!({"note": huge})),
            300,
        );
        assert_eq!(
            kept.fields["note"],
            json!({"a": [1]}),
            "too large: not kept"
        );
    }

    #[test]
    fn only_selected_fields_are_shown() {
        let mut facts = Facts::default();
        facts.fields.insert("dropped_since".into(), json!(1));
        facts.fields.insert("note".into(), json!("n"));
        assert_eq!(Value::Object(rule().visible(&facts)), json!({"note": "n"}));
    }
}
