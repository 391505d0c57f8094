//! The valid config the property tests change, and the keys they put a
//! generated value under: every credential type, `[store]`, every
//! `[proxy]` bound and every route key.

/// Valid as it stands: each case changes one key of it. The jws-detached
/// key file is named by its absolute path (the cases run in a fresh folder).
pub(super) const BASE: &str = concat!(
    r#"
[proxy]
listen = "127.0.0.1:3128"
max_connections = 64
spool_memory_total = "8MiB"
body_idle_timeout = "20s"
body_timeout = "2m"
h2_max_streams = 50
h2_window = "128KiB"

[store]
url = "redis://redis.internal:6379/2"
username = "countersign"
password = "pw"
store_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

[admin]
listen = "127.0.0.1:9901"

[credential.h]
type = "header"
bearer = "tok"

[credential.b]
type = "header"
basic = { username = "u", password = "p" }

[credential.x]
type = "header"
headers = { X-Api-Key = "k" }

[credential.p]
type = "paypay-opa"
api_key = "key"
api_secret = "secret"

[credential.o]
type = "oauth2"
token_url = "https://as.test/token"
grant = "client_credentials"
client_id = "id"
client_secret = "cs"

[credential.i]
type = "issued-key"
issue_url = "http://127.0.0.1:9/issue"
form = { sid = "s", spw = "p" }
lifetime = "300s"
query = "authorization"

[credential.a]
type = "aws-sigv4"
service = "execute-api"
region = "eu-west-1"
access_key_id = "AKIDEXAMPLE"
secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

[credential.s]
type = "http-signature"
algorithm = "hmac-sha256"
secret = "shared"
components = ["@method"]

[credential.m]
type = "hmac"
secret = "s"
sign = ["method", "path", "timestamp"]
headers = { X-Sig = "{signature}", X-Time = "{timestamp}" }

[credential.j]
type = "jws-detached"
version = "3.1.10"
kid = "k1"
issuer = "org/ssa"
private_key_file = ""#,
    env!("CARGO_MANIFEST_DIR"),
    r#"/tests/integration/oauth2/test-rsa-key.pem"

[[route]]
name = "r"
hosts = ["a.test"]
upstream = "https://a.test"
credential = "h"
headers = { X-Extra = "v" }
resend_closed = "idempotent"
http2 = false

[connect]
tunnel = ["t.test:443"]

[egress]
allow = ["10.0.0.0/8"]
"#
);

/// Where a generated value goes: a table path, then the key set there.
pub(super) const PLACES: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "proxy",
            "admin",
            "credential",
            "route",
            "connect",
            "intercept",
            "store",
            "egress",
        ],
    ),
    (
        "proxy",
        &[
            "listen",
            "unmatched",
            "max_body",
            "spool_memory",
            "spool_dir",
            "connect_timeout",
            "idle_timeout",
            "drain_timeout",
            "max_connections",
            "spool_memory_total",
            "body_idle_timeout",
            "body_timeout",
            "h2_max_streams",
            "h2_window",
        ],
    ),
    (
        "store",
        &[
            "url",
            "username",
            "password",
            "key_prefix",
            "ca_file",
            "client_cert",
            "client_key",
            "store_key",
            "timeout",
            "wait_replicas",
            "local_fallback",
            "unsaved_grace",
            "sentinels",
            "sentinel_master",
            "sentinel_username",
            "sentinel_password",
            "tls",
        ],
    ),
    (
        "admin",
        &[
            "listen",
            "control_listen",
            "control_secret",
            "browser_listen",
        ],
    ),
    ("credential", &["h", "z"]),
    (
        "credential.h",
        &["type", "bearer", "basic", "headers", "required"],
    ),
    ("credential.b", &["basic"]),
    ("credential.b.basic", &["username", "password"]),
    ("credential.x", &["headers"]),
    ("credential.x.headers", &["X-Api-Key", "Host"]),
    ("credential.p", &["api_key", "api_secret", "nonce_length"]),
    (
        "credential.o",
        &[
            "token_url",
            "grant",
            "client_id",
            "client_secret",
            "client_auth",
            "scope",
            "extra_params",
            "refresh_at",
            "wait_for_token",
            "token_store",
            "private_key_file",
            "signing_alg",
            "ca_file",
            "issuer",
            "request_object",
            "request_object_audience",
            "request_object_lifetime",
            "par",
            "response_type",
            "response_mode",
        ],
    ),
    (
        "credential.i",
        &[
            "issue_url",
            "form",
            "bearer",
            "response",
            "lifetime",
            "margin",
            "header",
            "prefix",
            "query",
            "json_field",
        ],
    ),
    ("credential.i.form", &["spw"]),
    (
        "credential.a",
        &[
            "service",
            "region",
            "access_key_id",
            "secret_access_key",
            "session_token",
            "payload",
            "keys",
            "role_arn",
            "web_identity_token_file",
            "sts_url",
            "container_token",
            "algorithm",
            "region_set",
        ],
    ),
    (
        "credential.s",
        &[
            "algorithm",
            "secret",
            "secret_encoding",
            "private_key_file",
            "keyid",
            "label",
            "components",
            "expires",
            "tag",
            "content_digest",
        ],
    ),
    (
        "credential.m",
        &[
            "secret",
            "api_key",
            "algorithm",
            "encoding",
            "separator",
            "sign",
            "timestamp",
            "nonce",
            "nonce_length",
            "body_digest",
            "no_body",
            "headers",
            "recipe",
        ],
    ),
    ("credential.m.headers", &["X-Sig"]),
    (
        "credential.j",
        &[
            "version",
            "algorithm",
            "private_key_file",
            "kid",
            "issuer",
            "trust_anchor",
            "typ",
            "max_body",
            "idempotency_key",
        ],
    ),
    (
        "route.0",
        &[
            "name",
            "hosts",
            "port",
            "path_prefix",
            "methods",
            "upstream",
            "ca_file",
            "credential",
            "headers",
            "listen",
            "client_cert",
            "client_key",
            "sni",
            "resend_closed",
            "http2",
            "appliance",
        ],
    ),
    ("route.0.headers", &["X-Extra"]),
    ("connect", &["tunnel"]),
    ("egress", &["allow"]),
    ("intercept", &["ca_cert", "ca_key", "leaf_lifetime"]),
];
