// A third oidc-provider instance for countersign's interop tests: RFC 8705
// mutual TLS. The provider is served over HTTPS (a node `https` server with
// the test CA's `localhost` certificate) that asks every client for a
// certificate; client `mtls-client` authenticates with `tls_client_auth`
// (its registered subject DN must match the certificate's, and the
// certificate must chain to the client CA) and gets certificate-bound
// access tokens (`cnf.x5t#S256`). The introspector authenticates with
// client_secret_basic over the same HTTPS, without a certificate.
// `self_signed_tls_client_auth` is switched on as well, but no client is
// registered with it yet.
// server.mjs and fapi-server.mjs are untouched.
//
//   TLS_CERT=server.pem TLS_KEY=server-key.pem CLIENT_CA=clients-ca.pem \
//   CLIENT_DN='CN=...' node mtls-server.mjs
//
// Prints one JSON line on stdout (server.mjs's fields, those it has no
// use for empty) and serves until it is killed.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';

import { Provider } from 'oidc-provider';

const INTROSPECTOR_SECRET = 'introspector-secret';

function env(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} must be set (see the usage line at the top)`);
  }
  return value;
}

const clientDn = env('CLIENT_DN');

const server = https.createServer({
  cert: fs.readFileSync(env('TLS_CERT')),
  key: fs.readFileSync(env('TLS_KEY')),
  ca: fs.readFileSync(env('CLIENT_CA')),
  // Asked of every client; whether it chained to the CA is the
  // provider's question (certificateAuthorized), so the introspector can
  // come without one.
  requestCert: true,
  rejectUnauthorized: false,
});
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(0, '127.0.0.1', resolve);
});
const issuer = `https://localhost:${server.address().port}`;

// The peer certificate of the request's TLS connection, as PEM (or
// undefined when the client presented none).
function peerCertificate(ctx) {
  const peer = ctx.req.socket.getPeerX509Certificate?.();
  return peer ? peer.toString() : undefined;
}

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
    mTLS: {
      enabled: true,
      certificateBoundAccessTokens: true,
      tlsClientAuth: true,
      selfSignedTlsClientAuth: true,
      getCertificate: peerCertificate,
      // node verified the chain against CLIENT_CA during the handshake.
      certificateAuthorized(ctx) {
        return ctx.req.socket.authorized === true;
      },
      certificateSubjectMatches(ctx, property, expected) {
        if (property !== 'tls_client_auth_subject_dn') {
          return false;
        }
        const pem = peerCertificate(ctx);
        return Boolean(pem) && new crypto.X509Certificate(pem).subject === expected;
      },
    },
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
