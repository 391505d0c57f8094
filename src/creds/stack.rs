//! The credentials of one route, applied in order (`credential = ["a",
//! "b"]`; a single name is a stack of one). When several sign the body,
//! one pass over it feeds every digest they asked for. `check` has made
//! sure no two write the same header and that aws-sigv4, which signs what
//! the others wrote, comes last.

use std::sync::Arc;

use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Uri};

use super::{BodyDigest, BodyHash, CredError, Credential, SignParams};

#[derive(Debug)]
pub struct Stack {
    creds: Vec<Arc<Credential>>,
    /// Every header some credential writes, gathered once: every request
    /// has the app's own removed.
    header_names: Vec<HeaderName>,
    /// Whether any credential can ask for the body; when none can, a
    /// request makes no `BodyHash` at all.
    reads_body: bool,
    /// How many credentials at the front write the same headers on every
    /// request (`header`): written once per request, not once per send.
    fixed: usize,
    /// Whether a credential renews what it sends on a 401.
    renews: bool,
    /// Whether a credential reads the upstream's answers (DPoP nonces).
    hears_answers: bool,
}

impl Stack {
    /// `None` for a route without credentials.
    pub fn new(creds: Vec<Arc<Credential>>) -> Option<Stack> {
        let header_names = creds.iter().flat_map(|c| c.header_names()).collect();
        let reads_body = creds.iter().any(|c| c.may_read_body());
        let fixed = creds.iter().take_while(|c| c.is_fixed()).count();
        let renews = creds.iter().any(|c| c.renews_on_unauthorized());
        let hears_answers = creds.iter().any(|c| c.hears_answers());
        (!creds.is_empty()).then_some(Stack {
            creds,
            header_names,
            reads_body,
            fixed,
            renews,
            hears_answers,
        })
    }

    /// Removes the app's own `Authorization` and every header a
    /// credential of the stack writes.
    pub fn remove_app_headers(&self, headers: &mut HeaderMap) {
        if !self.header_names.contains(&http::header::AUTHORIZATION) {
            headers.remove(http::header::AUTHORIZATION);
        }
        for name in &self.header_names {
            headers.remove(name);
        }
    }

    /// The kind, for logs: the credential's own, or `stacked`.
    pub fn kind(&self) -> &'static str {
        match self.creds.as_slice() {
            [one] => one.kind(),
            _ => "stacked",
        }
    }

    /// Every header some credential of the stack writes.
    pub fn header_names(&self) -> &[HeaderName] {
        &self.header_names
    }

    pub fn refuse_early(&self, parts: &Parts) -> Result<(), CredError> {
        self.creds.iter().try_for_each(|c| c.refuse_early(parts))
    }

    /// One hash for every digest the credentials sign; `None` when none
    /// signs the body, which then streams straight through.
    pub fn body_hash(
        &self,
        parts: &Parts,
        params: &SignParams,
    ) -> Result<Option<BodyHash>, CredError> {
        if !self.reads_body {
            return Ok(None);
        }
        let mut hash = BodyHash::default();
        for c in &self.creds {
            c.body_hash(parts, &mut hash, params)?;
        }
        Ok(hash.is_wanted().then_some(hash))
    }

    /// Writes the headers of the credentials at the front of the stack
    /// that write the same ones on every request (`header`). Done once per
    /// request, on the parts every send copies, before `apply_rest`: so
    /// the rest sees them as it would if each send applied them.
    pub fn apply_fixed(&self, parts: &mut Parts) {
        for c in &self.creds[..self.fixed] {
            if let Credential::Header(h) = c.as_ref() {
                h.apply(parts);
            }
        }
    }

    /// Whether credentials follow those `apply_fixed` writes: when none
    /// do, a send has nothing to apply.
    pub fn has_rest(&self) -> bool {
        self.fixed < self.creds.len()
    }

    /// Applies the credentials after those `apply_fixed` wrote, in order;
    /// each sees what the ones before it wrote.
    pub async fn apply_rest(
        &self,
        parts: &mut Parts,
        digest: BodyDigest,
        params: &SignParams,
    ) -> Result<(), CredError> {
        for c in &self.creds[self.fixed..] {
            c.apply(parts, digest.clone(), params).await?;
        }
        Ok(())
    }

    /// The signature bases the credentials signed on `parts`, for
    /// `countersign sign`.
    pub fn signature_bases(&self, parts: &Parts) -> Vec<String> {
        self.creds
            .iter()
            .filter_map(|c| c.signature_base(parts))
            .collect()
    }

    pub fn renews_on_unauthorized(&self) -> bool {
        self.renews
    }

    /// Whether `answered` can ask for anything: when not, a request need
    /// not keep its URI for it.
    pub fn hears_answers(&self) -> bool {
        self.hears_answers
    }

    /// The credential a 401 is about: the first that can renew what it
    /// sends (a token, an issued key), else the first.
    fn primary(&self) -> &Credential {
        self.creds
            .iter()
            .find(|c| c.renews_on_unauthorized())
            .unwrap_or(&self.creds[0])
    }

    pub fn presented(&self, headers: &HeaderMap, uri: &Uri) -> Option<HeaderValue> {
        self.primary().presented(headers, uri)
    }

    pub fn scrub_response(&self, sent: &HeaderValue, headers: &mut HeaderMap) {
        self.primary().scrub_response(sent, headers);
    }

    /// Every credential sees the answer; whether one asks for the request
    /// once more (a DPoP nonce).
    pub fn answered(&self, uri: &Uri, status: http::StatusCode, headers: &HeaderMap) -> bool {
        let mut again = false;
        for c in &self.creds {
            // Not `any`: each keeps its nonce, whatever the others say.
            again |= c.answered(uri, status, headers);
        }
        again
    }

    pub fn unauthorized(&self, sent: &HeaderValue) -> bool {
        self.primary().unauthorized(sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use crate::creds::{header::StaticHeaders, PayPayOpa};

    fn stack(creds: Vec<Credential>) -> Stack {
        Stack::new(creds.into_iter().map(Arc::new).collect()).unwrap()
    }

    fn post() -> Parts {
        let req = http::Request::post("http://api.test/p")
            .header("content-type", "application/json")
            .body(())
            .unwrap();
        req.into_parts().0
    }

    /// The names are gathered once, in order; a stack of kinds that never
    /// sign the body makes no hash, one with a body-signing kind does.
    #[test]
    fn header_names_and_the_body_are_decided_once() {
        let api_key = HeaderName::from_static("x-api-key");
        let header = || {
            Credential::Header(StaticHeaders::new(vec![(
                api_key.clone(),
                HeaderValue::from_static("k"),
            )]))
        };
        let paypay =
            || Credential::PayPayOpa(PayPayOpa::new(Secret::new("k"), Secret::new("s"), 8));
        let params = SignParams::default();

        let plain = stack(vec![header()]);
        assert_eq!(plain.header_names(), std::slice::from_ref(&api_key));
        assert!(plain.body_hash(&post(), &params).unwrap().is_none());

        let signed = stack(vec![header(), paypay()]);
        assert_eq!(
            signed.header_names(),
            [api_key, http::header::AUTHORIZATION]
        );
        assert!(signed.body_hash(&post(), &params).unwrap().is_some());
    }

    /// The fixed headers written once, then the rest: the same headers, in
    /// the same order, as every credential applied in turn, whether the
    /// `header` credential leads the stack or follows a signer.
    #[tokio::test]
    async fn fixed_then_rest_writes_what_applying_each_in_turn_writes() {
        let header = || {
            Credential::Header(StaticHeaders::new(vec![(
                HeaderName::from_static("x-api-key"),
                HeaderValue::from_static("k"),
            )]))
        };
        let paypay =
            || Credential::PayPayOpa(PayPayOpa::new(Secret::new("k"), Secret::new("s"), 8));
        let params = SignParams {
            nonce: Some("nonce123".into()),
            epoch: Some(1_700_000_000),
        };
        let get = || {
            http::Request::get("http://api.test/p")
                .body(())
                .unwrap()
                .into_parts()
                .0
        };
        let written = |parts: Parts| -> Vec<(HeaderName, HeaderValue)> {
            parts
                .headers
                .into_iter()
                .map(|(n, v)| (n.unwrap(), v))
                .collect()
        };
        for (creds, fixed) in [(vec![header(), paypay()], 1), (vec![paypay(), header()], 0)] {
            let creds: Vec<Arc<Credential>> = creds.into_iter().map(Arc::new).collect();
            let mut each = get();
            for c in &creds {
                c.apply(&mut each, BodyDigest::Absent, &params)
                    .await
                    .unwrap();
            }
            let s = Stack::new(creds).unwrap();
            assert_eq!(s.fixed, fixed);
            let mut split = get();
            s.apply_fixed(&mut split);
            s.apply_rest(&mut split, BodyDigest::Absent, &params)
                .await
                .unwrap();
            assert_eq!(written(split), written(each));
        }
        let alone = stack(vec![header()]);
        assert!(!alone.has_rest());
    }
}
