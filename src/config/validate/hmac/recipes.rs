//! The `hmac` recipes: each is the keys `recipe = "NAME"` fills in, written
//! in the same TOML a user would write. docs/credentials/hmac.md shows each
//! one verbatim (a test below holds it to that), and the tests of
//! creds/hmac.rs check each against its provider's published description.

/// LINE Pay v3 (https://developers-pay.line.me/online/pre-requisites):
/// Base64(HMAC-SHA256(channel secret, channel secret + API path + query
/// string (GET) or body (POST) + nonce)); `api_key` is the channel id.
pub const LINE_PAY_V3: &str = r#"algorithm = "hmac-sha256"
encoding = "base64"
separator = ""
sign = ["secret", "path", "query", "body", "nonce"]
nonce = "uuid"
headers."X-LINE-ChannelId" = "{api_key}"
headers."X-LINE-Authorization-Nonce" = "{nonce}"
headers."X-LINE-Authorization" = "{signature}"
"#;

/// bitFlyer Lightning (https://lightning.bitflyer.com/docs#authentication):
/// hex HMAC-SHA256(API secret, timestamp + method + path with query +
/// body); the timestamp as the docs' Node.js sample makes it
/// (`Date.now()`, milliseconds).
pub const BITFLYER: &str = r#"algorithm = "hmac-sha256"
encoding = "hex"
separator = ""
sign = ["timestamp", "method", "path_with_query", "body"]
timestamp = "unix-ms"
headers."ACCESS-KEY" = "{api_key}"
headers."ACCESS-TIMESTAMP" = "{timestamp}"
headers."ACCESS-SIGN" = "{signature}"
"#;

/// PayPay OPA-Auth, the same header as the built-in `paypay-opa`
/// (SCHEMES.md section 1).
pub const PAYPAY_OPA: &str = r#"algorithm = "hmac-sha256"
encoding = "base64"
separator = "\n"
sign = ["path", "method", "nonce", "timestamp", "content_type", "body_digest"]
timestamp = "unix"
nonce = "alphanumeric"
nonce_length = 8
body_digest = { algorithm = "md5", over = "content-type-and-body", encoding = "base64" }
no_body = "empty"
headers.Authorization = "hmac OPA-Auth:{api_key}:{signature}:{nonce}:{timestamp}:{body_digest}"
"#;

pub const RECIPES: [(&str, &str); 3] = [
    ("line-pay-v3", LINE_PAY_V3),
    ("bitflyer", BITFLYER),
    ("paypay-opa", PAYPAY_OPA),
];

pub fn named(name: &str) -> Option<&'static str> {
    RECIPES.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_docs_show_every_recipe_in_full() {
        let docs = include_str!("../../../../docs/credentials/hmac.md");
        for (name, text) in RECIPES {
            assert!(
                docs.contains(&format!("recipe = \"{name}\"")),
                "docs/credentials/hmac.md does not name recipe {name}"
            );
            assert!(
                docs.contains(text),
                "docs/credentials/hmac.md does not show recipe {name} as the code has it:\n{text}"
            );
        }
    }
}
