//! `Facts`: what a user session's token responses said that its app may
//! read back (`GET /oauth2/NAME/sessions/ID`), kept with the session's
//! stored grant so that every replica, and the next start, sees the same:
//! when it was authorized and last renewed, the scope granted, and the
//! fields the credential's `session_facts` selects. Never a token: those
//! are refused by `countersign check` and dropped from token responses
//! before anything here sees them.

use serde_json::{json, Map, Value};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// When the code exchange answered (Unix seconds, this host's clock).
    pub authorized_at: Option<u64>,
    /// When a refresh last answered.
    pub renewed_at: Option<u64>,
    /// The scope granted: the response's `scope`, or the one requested
    /// when the code exchange's answer left it out (RFC 6749 section 5.1:
    /// then it is the same).
    pub scope: Option<String>,
    /// Selected fields of the token responses, by name, as they came.
    pub fields: Map<String, Value>,
}

impl Facts {
    /// The form both stores keep inside their (sealed) grant document.
    pub fn to_json(&self) -> Value {
        json!({
            "authorized_at": self.authorized_at,
            "renewed_at": self.renewed_at,
            "scope": self.scope,
            "fields": self.fields,
        })
    }

    /// `None` for anything `to_json` did not write.
    pub fn from_json(doc: &Value) -> Option<Facts> {
        let doc = doc.as_object()?;
        let time = |name| match doc.get(name) {
            None | Some(Value::Null) => Some(None),
            Some(v) => v.as_u64().map(Some),
        };
        let scope = match doc.get("scope") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_str()?.to_string()),
        };
        let fields = match doc.get("fields") {
            None | Some(Value::Null) => Map::new(),
            Some(v) => v.as_object()?.clone(),
        };
        Some(Facts {
            authorized_at: time("authorized_at")?,
            renewed_at: time("renewed_at")?,
            scope,
            fields,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_read_back_as_written_and_nothing_else_reads() {
        let mut fields = Map::new();
        fields.insert("user_seq_no".into(), json!("1100000001"));
        fields.insert("accounts".into(), json!([{"n": 1}]));
        let facts = Facts {
            authorized_at: Some(1_700_000_000),
            renewed_at: None,
            scope: Some("login inquiry".into()),
            fields,
        };
        assert_eq!(Facts::from_json(&facts.to_json()), Some(facts));
        assert_eq!(Facts::from_json(&json!({})), Some(Facts::default()));
        for bad in [
            json!([]),
            json!({"authorized_at": "yesterday"}),
            json!({"scope": 7}),
            json!({"fields": []}),
        ] {
            assert_eq!(Facts::from_json(&bad), None, "{bad}");
        }
    }
}
