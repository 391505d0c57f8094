// What fapi-server.mjs records of the provider's work, for the tests to
// read (GET /interop/events) and for failure messages (stderr): every
// authorization request accepted into an interaction with the claims it
// asked for, pushed requests, grants, refusals and revocations. Back-channel
// events say which host took them (`host`: the issuer's, or the mTLS
// alias's) and whether the client presented a certificate (`mtls`).

import { peerCertificate } from './mtls.mjs';

// Starts recording `provider`'s events; returns the list, appended to.
export function recordEvents(provider) {
  const events = [];
  function record(entry) {
    events.push(entry);
    console.error(`oidc-provider ${JSON.stringify(entry)}`);
  }
  const where = (ctx) => ({ host: ctx.host, mtls: Boolean(peerCertificate(ctx)) });

  provider.on('interaction.started', (ctx, prompt) => {
    const { params } = ctx.oidc;
    record({
      event: 'interaction.started',
      client_id: params.client_id,
      prompt: prompt.name,
      response_type: params.response_type,
      claims: params.claims ? JSON.parse(params.claims) : null,
      // Set only when the request arrived as a pushed request.
      pushed: Boolean(ctx.oidc.entities.PushedAuthorizationRequest),
      // The DPoP key the code will be bound to (RFC 9449 section 10).
      dpop_jkt: params.dpop_jkt ?? null,
    });
  });
  provider.on('pushed_authorization_request.success', (ctx) => {
    record({ event: 'par.success', client_id: ctx.oidc.client.clientId, ...where(ctx) });
  });
  for (const event of ['grant.error', 'authorization.error', 'pushed_authorization_request.error', 'revocation.error', 'server_error']) {
    provider.on(event, (ctx, err) => {
      record({
        event,
        client_id: ctx?.oidc?.client?.clientId ?? ctx?.oidc?.params?.client_id,
        error: err.error ?? String(err),
        error_description: err.error_description,
        error_detail: err.error_detail,
        ...(ctx ? where(ctx) : {}),
      });
    });
  }
  provider.on('grant.success', (ctx) => {
    const { AuthorizationCode, RefreshToken } = ctx.oidc.entities;
    record({
      event: 'grant.success',
      client_id: ctx.oidc.client.clientId,
      grant_type: ctx.oidc.params.grant_type,
      grant_id: (AuthorizationCode ?? RefreshToken)?.grantId ?? null,
      ...where(ctx),
    });
  });
  // A revoked refresh token revokes its grant, and every token of it.
  provider.on('grant.revoked', (ctx, grantId) => {
    record({
      event: 'grant.revoked',
      client_id: ctx.oidc.client?.clientId,
      grant_id: grantId,
      ...where(ctx),
    });
  });
  return events;
}
