//! Sender-constrained tokens of an `oauth2` credential: `dpop = true`
//! (RFC 9449, with `dpop_alg`) and `certificate_bound = true` (RFC 8705),
//! and the rule that binds them to routes: a route using a
//! certificate-bound credential presents the very certificate the tokens
//! are bound to.

use std::collections::BTreeMap;

use crate::config::raw::RawOAuth2;
use crate::config::validate::Checker;
use crate::config::{CredentialConfig, DpopAlg, Grant, RouteConfig};

impl Checker<'_> {
    /// `(dpop, certificate_bound)`.
    pub(super) fn sender_constraint(
        &mut self,
        path: &str,
        raw: &RawOAuth2,
        grant: Option<&Grant>,
        has_cert: bool,
    ) -> (Option<DpopAlg>, bool) {
        let alg = match raw.dpop_alg.as_deref() {
            None | Some("ES256") => DpopAlg::Es256,
            Some("EdDSA") => DpopAlg::EdDsa,
            Some(_) => {
                self.problem(
                    format!("{path}.dpop_alg"),
                    "is not supported; use \"ES256\" (the default) or \"EdDSA\"",
                );
                DpopAlg::Es256
            }
        };
        let dpop = raw.dpop == Some(true);
        if !dpop && raw.dpop_alg.is_some() {
            self.problem(format!("{path}.dpop_alg"), "is only used with dpop = true");
        }
        if dpop && self.shared_store.is_some() && matches!(grant, Some(Grant::RefreshToken { .. }))
        {
            self.problem(
                format!("{path}.dpop"),
                "cannot be used with grant = \"refresh_token\" and [store]: each replica has a DPoP key of its own, so the fleet cannot share one renewal of a rotating refresh token; use client_credentials, or run one replica without [store]",
            );
        }
        let bound = raw.certificate_bound == Some(true);
        if bound && !has_cert {
            self.problem(
                format!("{path}.client_cert"),
                "missing; certificate_bound = true binds the tokens to the client certificate presented to the token endpoint (set client_cert and client_key)",
            );
        }
        (dpop.then_some(alg), bound)
    }

    /// A route using a certificate-bound credential must present the same
    /// certificate to its upstream, or the upstream refuses every token.
    pub(in crate::config::validate) fn bound_certificates(
        &mut self,
        routes: &[(usize, RouteConfig)],
        credentials: &BTreeMap<String, CredentialConfig>,
    ) {
        for (i, route) in routes {
            for name in &route.credential {
                let Some(CredentialConfig::OAuth2(o)) = credentials.get(name) else {
                    continue;
                };
                if !o.certificate_bound {
                    continue;
                }
                let Some(bound) = o
                    .client_identity
                    .as_ref()
                    .and_then(|id| id.key.cert.first())
                else {
                    continue;
                };
                let presented = route
                    .client_identity
                    .as_ref()
                    .and_then(|id| id.key.cert.first());
                match presented {
                    Some(cert) if cert == bound => {}
                    Some(_) => self.problem(
                        format!("route[{i}].client_cert"),
                        format!("is not the certificate credential `{name}`'s tokens are bound to (certificate_bound = true): the upstream would refuse every token; use the client_cert and client_key of credential `{name}`"),
                    ),
                    None => self.problem(
                        format!("route[{i}].client_cert"),
                        format!("missing; credential `{name}` has certificate-bound tokens (certificate_bound = true), so this route must present the same client certificate to its upstream; set client_cert and client_key to those of credential `{name}`"),
                    ),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
