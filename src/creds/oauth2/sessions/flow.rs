//! An authorization under way, as the `PendingStore` keeps it under its
//! `state` (in memory, or sealed in Redis): the session, the PKCE verifier,
//! the browser binding, and for an ID token the nonce and the intent.

use serde_json::{json, Value};

use super::check_id;
use crate::config::Secret;

/// An authorization under way, as kept under its `state` (in memory or in
/// the shared store, sealed there).
pub(super) struct Flow {
    pub session: String,
    pub verifier: Secret,
    /// The `nonce` sent, when an ID token was asked for.
    pub nonce: Option<String>,
    /// The consent the app named, checked against the ID token.
    pub intent: Option<String>,
    /// SHA-256 of the nonce in the starting browser's cookie.
    pub browser: [u8; 32],
}

impl Flow {
    pub fn to_secret(&self) -> Secret {
        let browser: String = self.browser.iter().map(|b| format!("{b:02x}")).collect();
        Secret::new(
            json!({
                "session": self.session,
                "verifier": self.verifier.expose(),
                "browser": browser,
                "nonce": self.nonce,
                "intent": self.intent,
            })
            .to_string(),
        )
    }

    /// `None` for anything but what `to_secret` wrote.
    pub fn from_secret(value: &Secret) -> Option<Flow> {
        let doc: Value = serde_json::from_str(value.expose()).ok()?;
        let text = |n| doc.get(n).and_then(Value::as_str);
        let session = text("session").filter(|s| check_id(s).is_ok())?;
        let hex = text("browser").filter(|h| h.len() == 64)?;
        let mut browser = [0u8; 32];
        for (i, b) in browser.iter_mut().enumerate() {
            *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Flow {
            session: session.to_string(),
            verifier: Secret::new(text("verifier")?),
            browser,
            nonce: text("nonce").map(String::from),
            intent: text("intent").map(String::from),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::authorize::digest;
    use super::*;

    #[test]
    fn a_flow_reads_back_as_written_and_nothing_else_reads() {
        let flow = Flow {
            session: "alice@example".into(),
            verifier: Secret::new("v".repeat(43)),
            browser: digest("nonce"),
            nonce: Some("n-1".into()),
            intent: Some("urn-bank-intent-1".into()),
        };
        let back = Flow::from_secret(&flow.to_secret()).unwrap();
        assert_eq!(back.session, flow.session);
        assert_eq!(back.verifier, flow.verifier);
        assert_eq!(back.browser, flow.browser);
        assert_eq!(back.nonce, flow.nonce);
        assert_eq!(back.intent, flow.intent);
        for bad in [
            "",
            "{}",
            r#"{"session":"../x","verifier":"v","browser":"00"}"#,
            r#"{"session":"a","verifier":"v","browser":"zz"}"#,
        ] {
            assert!(Flow::from_secret(&Secret::new(bad)).is_none(), "{bad}");
        }
    }
}
