//! `hmac` through the compiled binary: `run` with the PayPay recipe signs
//! what PayPay's check accepts, across the spool boundary; `sign` prints
//! the same Authorization for the recipe and the built-in `paypay-opa`,
//! and every header LINE Pay's and bitFlyer's recipes add; `check` names
//! the key of a template that cannot work.

use base64::Engine as _;
use hmac::Mac as _;

use super::*;

const CREDS: &str = r#"
[credential.builtin]
type = "paypay-opa"
api_key = "APIKeyGenerated"
api_secret = "APIKeySecretGenerated"

[credential.template]
type = "hmac"
recipe = "paypay-opa"
api_key = "APIKeyGenerated"
secret = "APIKeySecretGenerated"

[credential.line-pay]
type = "hmac"
recipe = "line-pay-v3"
api_key = "1656946528"
secret = "line-secret"

[credential.bitflyer]
type = "hmac"
recipe = "bitflyer"
api_key = "bf-key"
secret = "bf-secret"
"#;

fn config(upstream: &str, spool: &Path) -> String {
    let mut toml = format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\nspool_memory = \"64KiB\"\nspool_dir = \"{}\"\n{CREDS}",
        spool.display()
    );
    for (route, host) in [
        ("builtin", "builtin.paypay.test"),
        ("template", "api.paypay.test"),
        ("line-pay", "api-pay.line.test"),
        ("bitflyer", "api.bitflyer.test"),
    ] {
        toml.push_str(&format!(
            "\n[[route]]\nname = \"{route}\"\nhosts = [\"{host}\"]\nupstream = \"{upstream}\"\ncredential = \"{route}\"\n"
        ));
    }
    toml
}

/// `countersign sign` for `route`; its stdout lines, sorted.
fn sign(config: &Path, route: &str, args: &[&str]) -> Vec<String> {
    sign_both(config, route, args).0
}

/// `countersign sign` for `route`; its stdout lines, sorted, and stderr.
fn sign_both(config: &Path, route: &str, args: &[&str]) -> (Vec<String>, String) {
    let out = Command::new(BIN)
        .args(["sign", "--config"])
        .arg(config)
        .args(["--route", route])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    (lines, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn line<'a>(lines: &'a [String], name: &str) -> &'a str {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in {lines:?}"))
}

#[test]
fn run_signs_what_paypays_check_accepts_with_the_recipe() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let upstream = rt.block_on(Upstream::http());
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    let mut p = Process::start(
        &write_config(dir.path(), &config(&upstream.http_url(), &spool)),
        &[],
    );
    let proxy = p.listening("forward");
    p.wait_for("countersign is serving");
    let answer = rt.block_on(send(
        proxy,
        get("http://api.paypay.test/v2/codes/payments/m-1"),
    ));
    assert_eq!(answer.status, 200, "{answer:?}");
    verify_opa(&upstream.last(), "APIKeyGenerated", "APIKeySecretGenerated").unwrap();
    // Just under and past spool_memory (64 KiB).
    for len in [(64 << 10) - 100, 1 << 20] {
        let body = format!("{{\"blob\":\"{}\"}}", "y".repeat(len));
        let req = post("http://api.paypay.test/v2/codes", "application/json", &body);
        let answer = rt.block_on(send(proxy, req));
        assert_eq!(answer.status, 200, "{answer:?}");
        let got = upstream.last();
        assert_eq!(got.body_len, body.len() as u64);
        verify_opa(&got, "APIKeyGenerated", "APIKeySecretGenerated").unwrap();
    }
}

#[test]
fn sign_prints_the_same_authorization_for_the_recipe_and_paypay_opa() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &config("https://api.paypay.test", dir.path()));
    let published = dir.path().join("published.json");
    std::fs::write(&published, r#"{"sampleRequestBodyKey1":"sampleRequestBodyValue1","sampleRequestBodyKey2":"sampleRequestBodyValue2"}"#).unwrap();
    let big = dir.path().join("big.json");
    std::fs::write(&big, format!("{{\"blob\":\"{}\"}}", "z".repeat(200 << 10))).unwrap();
    let (published, big) = (published.display().to_string(), big.display().to_string());
    let fixed = ["--nonce", "acd028", "--epoch", "1579843452"];
    let cases: [Vec<&str>; 3] = [
        vec!["--url", "http://x/v2/codes/payments/m-1"],
        vec![
            "--method",
            "POST",
            "--url",
            "http://x/v2/codes",
            "-H",
            "Content-Type: application/json;charset=UTF-8;",
            "--body-file",
            &published,
        ],
        vec![
            "--method",
            "POST",
            "--url",
            "http://x/v2/files",
            "-H",
            "Content-Type: application/json",
            "--body-file",
            &big,
        ],
    ];
    for case in &cases {
        let args: Vec<&str> = case.iter().chain(&fixed).copied().collect();
        let template = sign(&path, "template", &args);
        let builtin = sign(&path, "builtin", &args);
        assert_eq!(
            line(&template, "authorization"),
            line(&builtin, "authorization"),
            "{case:?}"
        );
        assert_eq!(template, builtin, "every header the same: {case:?}");
    }
    // The second case is PayPay's published example.
    let args: Vec<&str> = cases[1].iter().chain(&fixed).copied().collect();
    assert_eq!(
        line(&sign(&path, "template", &args), "authorization"),
        "hmac OPA-Auth:APIKeyGenerated:NW1jKIMnzR7tEhMWtcJcaef+nFVBt7jjAGcVuxHhchc=:acd028:1579843452:1j0FnY4flNp5CtIKa7x9MQ=="
    );
}

#[test]
fn sign_prints_every_header_the_line_pay_and_bitflyer_recipes_add() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &config("https://upstream.test", dir.path()));
    let mac = |key: &str, text: &[u8]| {
        let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
        m.update(text);
        m.finalize().into_bytes().to_vec()
    };
    let nonce = "44453d45-768e-40e8-8349-748e797c450f";
    let (lines, explained) = sign_both(
        &path,
        "line-pay",
        &[
            "--url",
            "http://x/v3/payments?orderId=o-1",
            "--nonce",
            nonce,
            "--epoch",
            "1700000000",
        ],
    );
    let expected = base64::engine::general_purpose::STANDARD.encode(mac(
        "line-secret",
        format!("line-secret/v3/paymentsorderId=o-1{nonce}").as_bytes(),
    ));
    assert_eq!(
        lines,
        [
            "host: upstream.test".to_string(),
            format!("x-line-authorization-nonce: {nonce}"),
            format!("x-line-authorization: {expected}"),
            "x-line-channelid: 1656946528".to_string(),
        ]
    );
    // stderr shows the string to sign part by part, never the secret.
    let parts = [
        "# string to sign, parts joined by \"\":",
        "#   secret: (the secret, not shown)",
        "#   path: /v3/payments",
        "#   query: orderId=o-1",
        "#   body: (0 bytes, as sent)",
        &format!("#   nonce: {nonce}"),
    ];
    assert!(explained.contains(&parts.join("\n")), "{explained}");
    assert!(!explained.contains("line-secret"), "{explained}");
    let body = dir.path().join("order.json");
    let order = r#"{"product_code":"BTC_JPY","child_order_type":"LIMIT","side":"BUY","price":30000,"size":0.1}"#;
    std::fs::write(&body, order).unwrap();
    let (lines, explained) = sign_both(
        &path,
        "bitflyer",
        &[
            "--method",
            "POST",
            "--url",
            "http://x/v1/me/sendchildorder",
            "-H",
            "Content-Type: application/json",
            "--body-file",
            &body.display().to_string(),
            "--epoch",
            "1700000000",
        ],
    );
    let text = format!("1700000000000POST/v1/me/sendchildorder{order}");
    let sign_hex: String = mac("bf-secret", text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        lines,
        [
            "access-key: bf-key".to_string(),
            format!("access-sign: {sign_hex}"),
            "access-timestamp: 1700000000000".to_string(),
            format!("content-length: {}", order.len()),
            "host: upstream.test".to_string(),
        ]
    );
    let parts = [
        "#   timestamp: 1700000000000",
        "#   method: POST",
        "#   path_with_query: /v1/me/sendchildorder",
        &format!("#   body: ({} bytes, as sent)", order.len()),
    ];
    assert!(explained.contains(&parts.join("\n")), "{explained}");
}

#[test]
fn check_names_the_key_of_a_template_that_cannot_work() {
    let dir = tempfile::tempdir().unwrap();
    let toml = "[credential.h]\ntype = \"hmac\"\nsecret = \"Sup3rS3cret\"\nsign = [\"method\", \"path\"]\nheaders = { \"X-Sig\" = \"{signature}\", \"X-Nonce\" = \"{nonce}\" }\n";
    let out = check(&write_config(dir.path(), toml));
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "credential.h.headers.X-Nonce: uses {nonce}, which the string to sign does not define"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("Sup3rS3cret"), "{stderr}");
}

/// 128 MiB through the bitFlyer recipe, whose string to sign holds the
/// raw body: the HMAC runs over it as it is spooled (1 MiB in memory, the
/// rest on disk), the signature is right, and the peak memory stays far
/// below the body size.
#[test]
fn a_128_mib_body_is_signed_in_the_hmac_in_bounded_memory() {
    const SIZE: u64 = 128 << 20;
    const CHUNK: usize = 256 << 10;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let upstream = rt.block_on(Upstream::http());
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\nmax_body = \"256MiB\"\nspool_memory = \"1MiB\"\nspool_dir = \"{}\"\n{CREDS}\n[[route]]\nname = \"bitflyer\"\nhosts = [\"api.bitflyer.test\"]\nupstream = \"{}\"\ncredential = \"bitflyer\"\n",
        dir.path().display(),
        upstream.http_url()
    );
    let mut p = Process::start(&write_config(dir.path(), &toml), &[]);
    let proxy = p.listening("forward");
    // Not all one byte, so an offset error would show.
    let chunk = Bytes::from((0..CHUNK).map(|i| (i % 253) as u8).collect::<Vec<u8>>());
    let req = http::Request::post("http://api.bitflyer.test/v1/upload?part=1")
        .header("content-type", "application/octet-stream");
    let answer = upload(&rt, proxy, req, SIZE, chunk.clone());
    assert_eq!(answer.status, 200, "{answer:?}");
    let got = upstream.last();
    assert_eq!(got.body_len, SIZE);
    // What arrived is what was sent (the upstream's MD5 of type ++ body)...
    let mut md5 = <md5::Md5 as md5::Digest>::new();
    md5::Digest::update(&mut md5, b"application/octet-stream");
    // ...and the signature is bitFlyer's over exactly that body.
    let time = got.header("access-timestamp").unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"bf-secret").unwrap();
    mac.update(format!("{time}POST/v1/upload?part=1").as_bytes());
    for _ in 0..(SIZE / CHUNK as u64) {
        md5::Digest::update(&mut md5, &chunk);
        mac.update(&chunk);
    }
    let md5 = base64::engine::general_purpose::STANDARD.encode(md5::Digest::finalize(md5));
    assert_eq!(got.opa_md5, md5);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(got.header("access-sign"), Some(expected.as_str()));
    let peak = p.peak_rss_kib();
    assert!(peak < 64 * 1024, "peak RSS {peak} KiB for a 128 MiB body");
    eprintln!("countersign peak RSS for a 128 MiB body signed by the bitflyer recipe: {peak} KiB");
}
