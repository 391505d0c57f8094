//! A request made ready for its route's upstream, all but the credential,
//! with the means to produce its body again: so that it can be signed and
//! sent a second time (new nonce and epoch, the current token) when the
//! first attempt never got an answer, or got a 401 a renewed token cures.
//!
//! ```text
//! rewrite URI + Host -> hygiene -> route headers -> early refusals
//!   -> body: no body            -> sent any number of times
//!            spooled and hashed -> each send reads the spool afresh
//!            streamed           -> sent once (hyper takes its first chunk
//!                                  before writing a byte, so a failed
//!                                  send never leaves it whole)
//!   -> signed(): credential applied to a copy of the parts, with a body
//! ```
//!
//! `replay` sends it (and once more when it may); `prepare` makes the
//! first signed request alone, for `countersign sign`.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, EXPECT, HOST};
use http::request::Parts;
use http::{HeaderValue, Request, Version};
use http_body::Body;

use super::{headers::strip_hop_by_hop, target};
use crate::body::{self, BoxError, ProxyBody, SpoolError, SpoolLimits, Spooled};
use crate::creds::sigv4::ChunkSigning;
use crate::creds::{BodyDigest, BodyHash, MemorySpent, SignParams};
use crate::error::ProxyError;
use crate::metrics::Metrics;
use crate::snapshot::Route;

pub struct Prepared {
    /// Everything but the credential (but for the fixed headers of the
    /// credentials at the front of the stack: `Stack::apply_fixed`).
    parts: Parts,
    digest: BodyDigest,
    body: Source,
    /// Whether the route's `resend_closed` lets the request go again after
    /// the upstream closed a reused connection, decided on the request as
    /// the app sent it.
    resend_closed: bool,
}

enum Source {
    /// No body: every send gets an empty one.
    Empty,
    /// Streams through once; `None` once handed out.
    Stream(Option<ProxyBody>),
    /// Read to its end (and hashed) before the first send.
    Spooled { spooled: Spooled, dir: PathBuf },
}

impl Prepared {
    /// Rewrites the app's request for `route` and, when the credential
    /// signs the body, reads it through its hash into the spool. Refuses
    /// what cannot be signed before reading any of the body.
    pub async fn new<B>(
        route: &Route,
        mut parts: Parts,
        body: B,
        limits: &SpoolLimits,
        params: &SignParams,
        metrics: Option<&Arc<Metrics>>,
    ) -> Result<Prepared, ProxyError>
    where
        B: Body<Data = Bytes> + Send + Sync + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        let config = &route.config;
        let resend_closed = config.resend_closed.allows(&parts.method, &parts.headers);
        strip_hop_by_hop(&mut parts.headers);
        parts.uri = target::route_uri(&route.target, &parts.uri)?;
        parts.version = Version::HTTP_11;
        parts.headers.insert(HOST, route.target.host().clone());
        if let Some(cred) = &route.credential {
            cred.remove_app_headers(&mut parts.headers);
        }
        for (name, value) in &config.headers {
            parts.headers.insert(name.clone(), value.clone());
        }
        if let Some(cred) = &route.credential {
            cred.refuse_early(&parts)?;
        }
        // hyper answers `Expect: 100-continue` to the app when the body is
        // first read; passing it on would make the upstream answer it again.
        parts.headers.remove(EXPECT);
        let hash = match &route.credential {
            Some(c) => c.body_hash(&parts, params)?,
            None => None,
        };
        // The fixed headers go last, as if each send wrote them first:
        // what came before saw the request without them.
        let Some(hash) = hash else {
            if let Some(cred) = &route.credential {
                cred.apply_fixed(&mut parts);
            }
            let body = if body.is_end_stream() {
                Source::Empty
            } else {
                Source::Stream(Some(body::boxed(body)))
            };
            return Ok(Prepared {
                parts,
                digest: BodyDigest::Absent,
                body,
                resend_closed,
            });
        };
        // Boxed: reading the body through its hash holds kilobytes of
        // state (the spool's, the running digests) that only requests whose
        // body is signed need; every other request's future would carry,
        // and move, them too.
        let (mut parts, digest, body) =
            Box::pin(spooled(parts, body, hash, limits, metrics)).await?;
        if let Some(cred) = &route.credential {
            cred.apply_fixed(&mut parts);
        }
        Ok(Prepared {
            parts,
            digest,
            body,
            resend_closed,
        })
    }

    /// Whether `signed` can make another request: true until a streamed
    /// body has been handed out.
    pub fn can_send(&self) -> bool {
        !matches!(self.body, Source::Stream(None))
    }

    /// Whether the route's `resend_closed` lets the request go again on a
    /// new connection when the upstream closed a reused one before
    /// answering.
    pub fn resend_closed(&self) -> bool {
        self.resend_closed
    }

    /// Whether the request has no body at all.
    pub fn is_bodyless(&self) -> bool {
        matches!(self.body, Source::Empty)
    }

    /// The request signed afresh (a new nonce and epoch, the credential's
    /// current token or key) with a new copy of its body; `None` once a
    /// streamed body has been sent. Nothing may change it afterwards.
    pub async fn signed(
        &mut self,
        route: &Route,
        params: &SignParams,
    ) -> Result<Option<Request<ProxyBody>>, ProxyError> {
        let Some(body) = self.body().await? else {
            return Ok(None);
        };
        let mut parts = if matches!(self.body, Source::Stream(None)) {
            // A streamed body goes once: nothing signs these parts again,
            // so they are moved, not copied.
            std::mem::replace(&mut self.parts, Request::new(()).into_parts().0)
        } else {
            self.parts.clone()
        };
        // A stack of fixed headers alone has nothing left to apply.
        if let Some(cred) = route.credential.as_ref().filter(|c| c.has_rest()) {
            cred.apply_rest(&mut parts, self.digest.clone(), params)
                .await?;
        }
        // aws-sigv4's streaming payload signs the body chunk by chunk as
        // it streams.
        let body = match parts.extensions.remove::<ChunkSigning>() {
            Some(signing) => signing.wrap(body),
            None => body,
        };
        Ok(Some(Request::from_parts(parts, body)))
    }

    async fn body(&mut self) -> Result<Option<ProxyBody>, ProxyError> {
        match &mut self.body {
            Source::Empty => Ok(Some(body::empty())),
            Source::Stream(body) => Ok(body.take()),
            Source::Spooled { spooled, dir } => {
                let again = spooled.body().await.map_err(|source| SpoolError::Disk {
                    dir: dir.clone(),
                    source,
                })?;
                Ok(Some(again))
            }
        }
    }
}

/// Turns the app's request into exactly what goes upstream for `route`: the
/// upstream URI and Host, hygiene, route headers, then the credential. Also
/// used by `countersign sign`, so what it prints is what the proxy sends.
pub async fn prepare<B>(
    route: &Route,
    parts: Parts,
    body: B,
    limits: &SpoolLimits,
    params: &SignParams,
    metrics: Option<&Arc<Metrics>>,
) -> Result<Request<ProxyBody>, ProxyError>
where
    B: Body<Data = Bytes> + Send + Sync + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let mut prepared = Prepared::new(route, parts, body, limits, params, metrics).await?;
    // A first request always has its body.
    prepared
        .signed(route, params)
        .await?
        .ok_or(ProxyError::Internal)
}

/// The rest of `Prepared::new` for a body a credential signs: read through
/// `hash` into the spool, within the bounds its credentials set.
async fn spooled<B>(
    mut parts: Parts,
    body: B,
    mut hash: BodyHash,
    limits: &SpoolLimits,
    metrics: Option<&Arc<Metrics>>,
) -> Result<(Parts, BodyDigest, Source), ProxyError>
where
    B: Body<Data = Bytes> + Send + Sync + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    // A credential that keeps the body in memory to sign it whole
    // (jws-detached) lowers the bound for this request.
    let kept = hash
        .message_limit()
        .filter(|(limit, _)| *limit < limits.max_body)
        .map(|(limit, who)| (limit, who.to_string()));
    let narrowed;
    let limits = match &kept {
        Some((limit, _)) => {
            narrowed = SpoolLimits {
                max_body: *limit,
                ..limits.clone()
            };
            &narrowed
        }
        None => limits,
    };
    let too_large = |e: SpoolError| match (e, &kept) {
        (SpoolError::TooLarge { limit }, Some((_, credential))) => SpoolError::TooLargeToSign {
            limit,
            credential: credential.clone(),
        },
        (e, _) => e,
    };
    refuse_declared_oversize(&parts, limits.max_body).map_err(too_large)?;
    // The one-shot `sign` command has no metrics, and no other request
    // to share a memory budget with.
    let usage = metrics
        .map(|m| Arc::clone(m.spool_usage()))
        .unwrap_or_default();
    // That copy takes from the spool's budget too; past it the body
    // fails as it is read (`MemorySpent`).
    hash.budget_message(|| usage.hold(), limits.memory_total);
    // The hash sees the body as it is read (on a thread of its own once
    // the body goes to disk), and is back here once it has seen it all.
    let mut hash = Some(hash);
    let spooled = body::spool(body, limits, &usage, &mut hash)
        .await
        .map_err(|e| spent(too_large(e)))?;
    let hash = hash.ok_or(ProxyError::Internal)?;
    if !spooled.is_empty() {
        parts
            .headers
            .insert(CONTENT_LENGTH, HeaderValue::from(spooled.len()));
    }
    Ok((
        parts,
        hash.finish().sharing(spooled.in_memory()),
        Source::Spooled {
            spooled,
            dir: limits.dir.clone(),
        },
    ))
}

/// The hash gave up the body's copy for the memory budget: that, not the
/// app's body, failed the read.
fn spent(e: SpoolError) -> ProxyError {
    match e {
        SpoolError::Client(e) => match e.downcast::<MemorySpent>() {
            Ok(spent) => ProxyError::MemorySpent(*spent),
            Err(e) => ProxyError::Body(SpoolError::Client(e)),
        },
        e => ProxyError::Body(e),
    }
}

/// A Content-Length over the limit is refused before any byte is read.
fn refuse_declared_oversize(parts: &Parts, max_body: u64) -> Result<(), SpoolError> {
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(len) if len > max_body => Err(SpoolError::TooLarge { limit: max_body }),
        _ => Ok(()),
    }
}
