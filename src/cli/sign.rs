//! `countersign sign`: runs a request through the same preparation the proxy
//! uses and prints the headers it adds or changes, to debug a signature that
//! the upstream rejects; on stderr, what a credential that can tell
//! (`hmac`, `aws-sigv4`) signed, part by part, and the signature of each
//! chunk of aws-sigv4's streaming payload.

use std::path::PathBuf;
use std::process::ExitCode;

use bytes::Bytes;
use clap::Args;
use http::{HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::Full;

use super::EXIT_BAD_CONFIG;
use crate::config;
use crate::creds::{Explain, Explained, SignParams};
use crate::snapshot::Snapshot;

#[derive(Debug, Args)]
pub struct SignArgs {
    /// Path to proxy.toml.
    #[arg(long, short, default_value = "proxy.toml", env = "COUNTERSIGN_CONFIG")]
    config: PathBuf,
    /// The route whose credential signs the request.
    #[arg(long)]
    route: String,
    /// HTTP method, e.g. POST.
    #[arg(long, default_value = "GET")]
    method: String,
    /// The URL the app calls (path and query are what matter).
    #[arg(long)]
    url: String,
    /// A request header as the app sends it, `Name: value`; repeatable.
    #[arg(long = "header", short = 'H')]
    headers: Vec<String>,
    /// File holding the request body.
    #[arg(long)]
    body_file: Option<PathBuf>,
    /// Fixed nonce instead of a random one (to reproduce a signature).
    #[arg(long)]
    nonce: Option<String>,
    /// Fixed Unix time in seconds instead of now.
    #[arg(long)]
    epoch: Option<u64>,
}

pub fn sign(args: SignArgs) -> ExitCode {
    match sign_inner(args) {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err((code, message)) => {
            eprintln!("countersign sign: {message}");
            ExitCode::from(code)
        }
    }
}

type Failure = (u8, String);

fn sign_inner(args: SignArgs) -> Result<Vec<String>, Failure> {
    let config = config::load(&args.config).map_err(|e| (EXIT_BAD_CONFIG, e.to_string()))?;
    let config = only_the_routes_credential(config, &args.route)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| (1, format!("cannot start the runtime: {e}")))?;
    rt.block_on(async move {
        let tokens = crate::creds::TokenRegistry::new();
        let own = crate::egress::OwnAddrs::default();
        let kept = crate::snapshot::Kept::default();
        let snapshot = Snapshot::build(config, 0, &own, &tokens, &kept).map_err(|p| {
            (
                EXIT_BAD_CONFIG,
                p.iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        let route = snapshot
            .route_named(&args.route)
            .ok_or_else(|| (2, format!("no route named `{}` in the config", args.route)))?;
        let request = build_request(&args)?;
        let (mut parts, body) = request.into_parts();
        parts.extensions.insert(Explain);
        let before = parts.headers.clone();
        // As an app's HTTP client sends it (aws-sigv4's streaming payload
        // needs the length before the body); printed, since the command
        // line did not give it.
        if args.body_file.is_some() {
            if let http::header::Entry::Vacant(e) =
                parts.headers.entry(http::header::CONTENT_LENGTH)
            {
                e.insert(HeaderValue::from(
                    http_body::Body::size_hint(&body).exact().unwrap_or(0),
                ));
            }
        }
        let params = SignParams {
            nonce: args.nonce.clone(),
            epoch: args.epoch,
        };
        let prepared = crate::proxy::prepared::prepare(
            route,
            parts,
            body,
            &snapshot.spool_limits(),
            &params,
            None,
        )
        .await
        .map_err(|e| (1, e.chain()))?;
        eprintln!("# {} {}", prepared.method(), prepared.uri());
        for value in prepared
            .headers()
            .get_all(crate::creds::jws::X_JWS_SIGNATURE)
        {
            if let Some(header) = crate::creds::jws::explain(value) {
                eprintln!("# x-jws-signature protected header: {header}");
            }
        }
        if let Some(Explained(lines)) = prepared.extensions().get::<Explained>() {
            for line in lines {
                eprintln!("# {line}");
            }
        }
        // An RFC 9421 signature's base, to compare with the verifier's.
        if let Some(stack) = &route.credential {
            let mut copy = Request::new(());
            *copy.method_mut() = prepared.method().clone();
            *copy.uri_mut() = prepared.uri().clone();
            *copy.headers_mut() = prepared.headers().clone();
            let (parts, ()) = copy.into_parts();
            for base in stack.signature_bases(&parts) {
                eprintln!("# signature base:");
                for line in base.lines() {
                    eprintln!("#   {line}");
                }
            }
        }
        let streamed = prepared
            .headers()
            .contains_key(crate::creds::sigv4::X_AMZ_DECODED_CONTENT_LENGTH);
        let (prepared, body) = prepared.into_parts();
        if streamed {
            // aws-sigv4's streaming payload: each chunk's signature, as
            // the body goes upstream.
            let wire = http_body_util::BodyExt::collect(body)
                .await
                .map_err(|e| (1, format!("cannot sign the body's chunks: {e}")))?
                .to_bytes();
            for line in chunk_signatures(&wire) {
                eprintln!("# {line}");
            }
        }
        Ok(prepared
            .headers
            .iter()
            .filter(|(name, value)| before.get_all(*name).iter().all(|v| v != *value))
            .map(|(name, value)| format!("{}: {}", name, String::from_utf8_lossy(value.as_bytes())))
            .collect())
    })
}

/// The chunks of an `aws-chunked` body as sent: each one's length and
/// signature (the last, empty, chunk included).
fn chunk_signatures(mut wire: &[u8]) -> Vec<String> {
    let mut lines = Vec::new();
    while let Some(end) = wire.windows(2).position(|w| w == b"\r\n") {
        let head = String::from_utf8_lossy(&wire[..end]);
        let Some((size, signature)) = head.split_once(";chunk-signature=") else {
            break;
        };
        let Ok(size) = usize::from_str_radix(size, 16) else {
            break;
        };
        lines.push(format!(
            "chunk {}: {size} bytes, chunk-signature={signature}",
            lines.len() + 1
        ));
        wire = wire.get(end + 2 + size + 2..).unwrap_or_default();
        if size == 0 {
            break;
        }
    }
    lines
}

/// Drops every credential but the route's, so no other OAuth2 credential
/// starts fetching tokens, and refuses a refresh_token grant: rotating its
/// refresh token here would spend the one the running countersign holds.
fn only_the_routes_credential(
    mut config: config::Config,
    route: &str,
) -> Result<config::Config, Failure> {
    let wanted = config
        .routes
        .iter()
        .find(|r| r.name == route)
        .map(|r| r.credential.clone())
        .unwrap_or_default();
    config.credentials.retain(|name, _| wanted.contains(name));
    let rotates = config.credentials.values().any(|c| {
        matches!(c, config::CredentialConfig::OAuth2(o)
            if matches!(o.grant, config::Grant::RefreshToken { .. } | config::Grant::AuthorizationCode(_)))
    });
    if rotates {
        return Err((
            2,
            format!("route `{route}` uses an OAuth2 grant that rotates refresh tokens (refresh_token or authorization_code); `sign` would spend the refresh token the running countersign holds"),
        ));
    }
    Ok(config)
}

fn build_request(args: &SignArgs) -> Result<Request<Full<Bytes>>, Failure> {
    let method = Method::from_bytes(args.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| (2, format!("`{}` is not an HTTP method", args.method)))?;
    let uri: Uri = args
        .url
        .parse()
        .map_err(|e| (2, format!("`{}` is not a URL: {e}", args.url)))?;
    let body = match &args.body_file {
        Some(path) => {
            std::fs::read(path).map_err(|e| (2, format!("cannot read {}: {e}", path.display())))?
        }
        None => Vec::new(),
    };
    let mut req = Request::builder().method(method).uri(uri);
    for h in &args.headers {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| (2, format!("header `{h}` must look like `Name: value`")))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| (2, format!("`{}` is not a header name", name.trim())))?;
        let value = HeaderValue::from_str(value.trim())
            .map_err(|_| (2, format!("the value of header `{name}` is not valid")))?;
        req = req.header(name, value);
    }
    req.body(Full::new(Bytes::from(body)))
        .map_err(|e| (2, format!("cannot build the request: {e}")))
}
