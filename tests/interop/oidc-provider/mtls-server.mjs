// A third oidc-provider instance for countersign's interop tests: RFC 8705
// mutual TLS. The provider is served over HTTPS (a node `https` server with
// the test CA's `localhost` certificate) that asks every client for a
// certificate; client `mtls-client` authenticates with `tls_client_auth`
// (its registered subject DN must match the certificate's, and the
// certificate must chain to the client CA) and gets certificate-bound
// access tokens (`cnf.x5t#S256`). The introspector authenticates with
// client_secret_basic over the same HTTPS, without a certificate.
// `self_signed_tls_client_auth` is switched on as well, but no client is
// registered with it yet. The HTTPS listener and the `mTLS` feature are
// mtls.mjs's, shared with fapi-server.mjs.
//
//   TLS_CERT=server.pem TLS_KEY=server-key.pem CLIENT_CA=clients-ca.pem \
//   CLIENT_DN='CN=...' node mtls-server.mjs
//
// Prints one JSON line on stdout (server.mjs's fields, those it has no
// use for empty) and serves until it is killed.

import * as crypto from 'node:crypto';

import { Provider } from 'oidc-provider';

import { clientDn as registeredDn, listenHttps, mtlsFeature } from './mtls.mjs';

const INTROSPECTOR_SECRET = 'introspector-secret';

const clientDn = registeredDn();
const { server, base: issuer } = await listenHttps();

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'mtls-client',
      token_endpoint_auth_method: 'tls_client_auth',
      tls_client_auth_subject_dn: clientDn,
      tls_client_certificate_bound_access_tokens: true,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
    },
    {
      client_id: 'introspector',
      client_secret: INTROSPECTOR_SECRET,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: [],
      response_types: [],
      redirect_uris: [],
    },
  ],
  clientAuthMethods: ['client_secret_basic', 'tls_client_auth', 'self_signed_tls_client_auth'],
  scopes: ['api:read'],
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: {
      enabled: true,
      async allowedPolicy(ctx, client) {
        return client.clientId === 'introspector';
      },
    },
    mTLS: mtlsFeature(),
  },
  ttl: { AccessToken: 300 },
});

const events = [];
function record(entry) {
  events.push(entry);
  console.error(`oidc-provider ${JSON.stringify(entry)}`);
}
provider.on('grant.success', (ctx) => {
  record({
    event: 'grant.success',
    client_id: ctx.oidc.client.clientId,
    grant_type: ctx.oidc.params.grant_type,
  });
});
for (const event of ['grant.error', 'introspection.error', 'server_error']) {
  provider.on(event, (ctx, err) => {
    record({
      event,
      client_id: ctx?.oidc?.client?.clientId ?? ctx?.oidc?.params?.client_id,
      error: err.error ?? String(err),
      error_description: err.error_description,
      error_detail: err.error_detail,
    });
  });
}

const callback = provider.callback();
server.on('request', (req, res) => {
  if (req.method === 'GET' && req.url === '/interop/events') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(events));
    return;
  }
  callback(req, res);
});

process.stdout.write(`${JSON.stringify({
  issuer,
  token_endpoint: `${issuer}/token`,
  introspection_endpoint: `${issuer}/token/introspection`,
  revocation_endpoint: '',
  events_endpoint: `${issuer}/interop/events`,
  refresh_token: '',
  fleet_refresh_token: '',
  session_refresh_token: '',
  resource: '',
  secrets: { introspector: INTROSPECTOR_SECRET },
})}\n`);

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
