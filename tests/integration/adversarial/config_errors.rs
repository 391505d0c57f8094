//! A secret typed in the wrong place never comes back in an error: serde
//! quoted refused values (`invalid type: string "svc-user:Pr0dPassw0rd!",
//! expected struct RawBasic`), and some validation messages quoted what
//! they refused. Each case is checked everywhere a config problem shows: the
//! 422 of `POST /reload`, `/status`, the log, and `countersign check`.

use crate::binary::{check, write_config};
use crate::harness::*;
use crate::trace_capture::TraceCapture;

/// A valid config; `PROXY_EXTRA` marks where a case adds `[proxy]` keys.
const BASE: &str = r#"
[proxy]
listen = "127.0.0.1:0"
# PROXY_EXTRA

[credential.api]
type = "header"
bearer = "t1"

[[route]]
name = "api"
hosts = ["api.example.test"]
upstream = "UPSTREAM"
credential = "api"
"#;

struct Case {
    /// Added to the base (or put in `[proxy]`, for a `proxy.` path).
    toml: &'static str,
    /// What must never show.
    value: &'static str,
    /// The key path the problem must name, and words its message must have.
    path: &'static str,
    says: &'static str,
}

const CASES: &[Case] = &[
    Case {
        toml: "[credential.x]\ntype = \"header\"\nbasic = \"svc-user:Pr0dPassw0rd!\"\n",
        value: "Pr0dPassw0rd",
        path: "credential.x.basic",
        says: "expected a table, found a string",
    },
    Case {
        toml: "[credential.x]\ntype = \"header\"\nheaders = \"X-Api-Key: k3y-Sup3rS3cret\"\n",
        value: "k3y-Sup3rS3cret",
        path: "credential.x.headers",
        says: "expected a table, found a string",
    },
    Case {
        toml: "[credential.x]\ntype = \"issued-key\"\nissue_url = \"https://issuer.test/issue\"\nform = \"sid=svc&spw=Sp3wS3cret\"\nlifetime = \"300s\"\nquery = \"authorization\"\n",
        value: "Sp3wS3cret",
        path: "credential.x.form",
        says: "expected a table, found a string",
    },
    Case {
        toml: "[credential.x]\ntype = \"paypay-opa\"\napi_key = \"k\"\napi_secret = 918273645546372819\n",
        value: "918273645546372819",
        path: "credential.x.api_secret",
        says: "expected a string, found an integer",
    },
    Case {
        toml: "[credential.x]\ntype = \"paypay-opa\"\napi_key = \"k\"\napi_secret = 31415.926535\n",
        value: "31415.9",
        path: "credential.x.api_secret",
        says: "expected a string, found a float",
    },
    Case {
        toml: "[credential.x]\ntype = \"paypay-opa\"\napi_key = \"k\"\napi_secret = true\n",
        value: "true",
        path: "credential.x.api_secret",
        says: "expected a string, found a boolean",
    },
    Case {
        toml: "[[route]]\nname = \"b\"\nhosts = [\"b.test\"]\nupstream = \"https://svc:Pr0d Passw0rd@b.test\"\n",
        value: "Passw0rd",
        path: "route[1].upstream",
        says: "is not a URL",
    },
    Case {
        toml: "connect_timeout = \"Tim3outS3cret\"\n",
        value: "Tim3outS3cret",
        path: "proxy.connect_timeout",
        says: "is not a duration",
    },
    Case {
        toml: "[[route]]\nname = \"b\"\nhosts = [\"b.test\"]\nupstream = \"https://b.test\"\ncredential = \"CredN4meS3cret\"\n",
        value: "CredN4meS3cret",
        path: "route[1].credential",
        says: "names no credential",
    },
    Case {
        toml: "[credential.x]\ntype = \"aws-sigv4\"\nservice = \"s3\"\nregion = \"us-east-1\"\naccess_key_id = \"AKIDEXAMPLE\"\nsecret_access_key = 918273645546372811\n",
        value: "918273645546372811",
        path: "credential.x.secret_access_key",
        says: "expected a string, found an integer",
    },
    Case {
        toml: "[store]\nurl = \"redis://127.0.0.1:6379\"\npassword = [\"R3disPassw0rd\"]\n",
        value: "R3disPassw0rd",
        path: "store.password",
        says: "expected a string, found an array",
    },
    Case {
        toml: "[credential.x]\ntype = \"http-signature\"\nalgorithm = \"hmac-sha256\"\nsecret = 5544332211998877\ncomponents = [\"@method\"]\n",
        value: "5544332211998877",
        path: "credential.x.secret",
        says: "expected a string, found an integer",
    },
    Case {
        toml: "[credential.x]\ntype = \"hmac\"\nsecret = { key = \"HmacK3yS3cret\" }\nsign = [\"method\", \"timestamp\"]\nheaders = { X-Sig = \"{signature}\", X-Time = \"{timestamp}\" }\n",
        value: "HmacK3yS3cret",
        path: "credential.x.secret",
        says: "expected a string, found a table",
    },
    Case {
        toml: "[credential.x]\ntype = \"jws-detached\"\nversion = \"3.1.10\"\nprivate_key_file = \"key.pem\"\nkid = 77441122993366\nissuer = \"org/ssa\"\n",
        value: "77441122993366",
        path: "credential.x.kid",
        says: "expected a string, found an integer",
    },
];

fn with_case(base: &str, case: &Case) -> String {
    if case.path.starts_with("proxy.") {
        base.replace("# PROXY_EXTRA\n", case.toml)
    } else {
        format!("{base}\n{}", case.toml)
    }
}

async fn admin(sidecar: &Sidecar, method: http::Method, path: &str) -> Answer {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "admin")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    send(sidecar.control(), req).await
}

/// The problem at `path` in a `[{path, message}]` JSON list.
fn problem_at<'a>(list: &'a serde_json::Value, path: &str) -> &'a str {
    list.as_array()
        .and_then(|ps| ps.iter().find(|p| p["path"] == path))
        .and_then(|p| p["message"].as_str())
        .unwrap_or_else(|| panic!("no problem at {path} in {list}"))
}

#[tokio::test]
async fn a_refused_value_is_never_quoted_by_reload_status_or_logs() {
    let logs = TraceCapture::install();
    let upstream = Upstream::http().await;
    let base = BASE.replace("UPSTREAM", &upstream.http_url());
    let sidecar = Sidecar::start(&base).await;
    for case in CASES {
        sidecar.rewrite(&with_case(&base, case));
        let answer = admin(&sidecar, http::Method::POST, "/reload").await;
        assert_eq!(answer.status, 422, "{}", answer.body);
        let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
        let message = problem_at(&body["problems"], case.path);
        assert!(message.contains(case.says), "{}: {message}", case.path);
        assert!(
            !answer.body.contains(case.value),
            "POST /reload quotes {:?}: {}",
            case.value,
            answer.body
        );
        let status = admin(&sidecar, http::Method::GET, "/status").await.body;
        let status_json: serde_json::Value = serde_json::from_str(&status).unwrap();
        problem_at(&status_json["last_reload_error"], case.path);
        let errors = &status_json["last_reload_error"].to_string();
        assert!(
            !errors.contains(case.value),
            "/status quotes {:?}: {errors}",
            case.value
        );
    }
    let text = logs.text();
    let refused: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("config reload refused"))
        .collect();
    assert!(refused.len() >= CASES.len(), "{text}");
    for case in CASES {
        assert!(
            refused.iter().any(|l| l.contains(case.path)),
            "no log line for {}",
            case.path
        );
        for line in &refused {
            assert!(
                !line.contains(case.value),
                "the log quotes {:?}: {line}",
                case.value
            );
        }
    }
}

#[test]
fn countersign_check_never_quotes_a_refused_value() {
    let base = BASE.replace("UPSTREAM", "https://api.example.test");
    for case in CASES {
        let dir = tempfile::tempdir().unwrap();
        let path = write_config(dir.path(), &with_case(&base, case));
        let out = check(&path);
        assert_eq!(out.status.code(), Some(64));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stderr.contains(&format!("{}: ", case.path)) && stderr.contains(case.says),
            "{stderr}"
        );
        assert!(
            !stderr.contains(case.value) && !stdout.contains(case.value),
            "check quotes {:?}: {stderr}",
            case.value
        );
    }
}
