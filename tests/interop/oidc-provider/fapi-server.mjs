// A second oidc-provider instance for countersign's interop tests, set up
// the way a UK open banking (FAPI 1.0 Advanced style) authorization server
// is: request objects must be signed, pushed authorization requests
// (RFC 9126) are offered, `code id_token` (the hybrid flow) is allowed, the
// `claims` parameter carries the consent's `openbanking_intent_id`, and the
// provider's ID tokens are signed PS256. Its own login and consent pages
// (devInteractions) are on, so a test can play the person: the test's
// scripted browser logs in and consents by posting those forms. server.mjs,
// which the other tests use, is untouched.
//
//   RSA_KEY=path/to/rsa.pem EC_KEY=... REDIRECT_URI=https://... node fapi-server.mjs
//   (and TLS_CERT=... TLS_KEY=... CLIENT_CA=... CLIENT_DN='CN=...' for the mTLS host)
//
// (add WRONG_JWKS=1 to publish other keys than it signs with, see below).
//
// Prints one JSON line on stdout (the fields server.mjs prints, those it
// has no use for empty, and `mtls_base`, the mTLS host's URL or empty)
// and serves until it is killed. Every
// authorization request the provider accepted into an interaction is
// recorded with the claims it asked for (GET /interop/events), so a test
// can see what the provider read out of countersign's signed request
// object.
//
// A third client, `fapi2-client`, is registered the way a FAPI 2.0
// (Security Profile) bank registers one: private_key_jwt (ES256), pushed
// authorization requests required, PKCE (the provider asks it of every
// code flow), and DPoP-bound access tokens (RFC 9449) required, with the
// server's DPoP nonce. It needs no signed request object: the signed
// request object stays required per client for the two UK-style clients.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';

import { Provider } from 'oidc-provider';

import { recordEvents } from './fapi-events.mjs';
import { clientDn, listenHttps, mtlsFeature } from './mtls.mjs';

const INTROSPECTOR_SECRET = 'introspector-secret';
const FAPI2_CLIENT = 'fapi2-client';
// The clients run under FAPI 1.0 Advanced (the rest of the UK ones are
// added below, with the mTLS host).
const UK_CLIENTS = new Set(['fapi-client', 'fapi-client-es256']);

function publicJwk(envName, kid) {
  const path = process.env[envName];
  if (!path) {
    throw new Error(`${envName} must name a PKCS#8 PEM private key`);
  }
  const jwk = crypto.createPublicKey(fs.readFileSync(path)).export({ format: 'jwk' });
  return { ...jwk, kid };
}

const redirectUri = process.env.REDIRECT_URI;
if (!redirectUri) {
  throw new Error('REDIRECT_URI must be the redirect URI countersign is configured with');
}

const rsa = publicJwk('RSA_KEY', 'rsa-1');
const ec = publicJwk('EC_KEY', 'ec-1');

// A client the way a UK open banking TPP registers: private_key_jwt,
// PS256 request objects, PS256 ID tokens; ES256 for the second one.
function tpp(clientId, alg, jwk) {
  return {
    client_id: clientId,
    token_endpoint_auth_method: 'private_key_jwt',
    token_endpoint_auth_signing_alg: alg,
    request_object_signing_alg: alg,
    require_signed_request_object: true,
    id_token_signed_response_alg: alg,
    // JARM responses, when the request asks for a JWT response mode.
    authorization_signed_response_alg: alg,
    jwks: { keys: [jwk] },
    grant_types: ['authorization_code', 'refresh_token', 'implicit'],
    response_types: ['code', 'code id_token'],
    redirect_uris: [redirectUri],
    scope: 'openid offline_access accounts',
  };
}

// The mTLS host, when its certificate files are given.
const mtls = process.env.TLS_CERT ? await listenHttps() : null;

const clients = [
  tpp('fapi-client', 'PS256', rsa),
  tpp('fapi-client-es256', 'ES256', ec),
  {
    client_id: FAPI2_CLIENT,
    token_endpoint_auth_method: 'private_key_jwt',
    token_endpoint_auth_signing_alg: 'ES256',
    id_token_signed_response_alg: 'ES256',
    authorization_signed_response_alg: 'ES256',
    jwks: { keys: [ec] },
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: [redirectUri],
    scope: 'openid offline_access accounts',
    require_pushed_authorization_requests: true,
    dpop_bound_access_tokens: true,
  },
  {
    client_id: 'introspector',
    client_secret: INTROSPECTOR_SECRET,
    token_endpoint_auth_method: 'client_secret_basic',
    // The server has no RS256 key, the default.
    id_token_signed_response_alg: 'ES256',
    authorization_signed_response_alg: 'ES256',
    grant_types: [],
    response_types: [],
    redirect_uris: [],
  },
];

if (mtls) {
  const bound = { tls_client_certificate_bound_access_tokens: true };
  const { token_endpoint_auth_signing_alg: _, ...byCertificate } = tpp('fapi-mtls-client', 'PS256', rsa);
  clients.push(
    {
      ...byCertificate,
      ...bound,
      token_endpoint_auth_method: 'tls_client_auth',
      tls_client_auth_subject_dn: clientDn(),
    },
    { ...tpp('fapi-mtls-jwt-client', 'PS256', rsa), ...bound },
  );
  UK_CLIENTS.add('fapi-mtls-client');
  UK_CLIENTS.add('fapi-mtls-jwt-client');
}

// The server's own signing keys (ID tokens), fresh per run.
function serverKey(kind, options, alg, kid) {
  const { privateKey } = crypto.generateKeyPairSync(kind, options);
  return { ...privateKey.export({ format: 'jwk' }), kid, alg, use: 'sig' };
}
const keys = [
  serverKey('rsa', { modulusLength: 2048 }, 'PS256', 'server-ps256'),
  serverKey('ec', { namedCurve: 'P-256' }, 'ES256', 'server-es256'),
];

const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(0, '127.0.0.1', resolve);
});
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients,
  scopes: ['openid', 'offline_access', 'accounts'],
  // openbanking_intent_id is a claim of its own (no scope brings it): it
  // is only there when the request's `claims` asks for it.
  claims: { openid: ['sub'], openbanking_intent_id: null },
  jwks: { keys },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  responseTypes: ['code', 'code id_token'],
  clientAuthMethods: ['client_secret_basic', 'private_key_jwt', ...(mtls ? ['tls_client_auth'] : [])],
  // RFC 8705 section 5: where a client with a certificate sends its
  // back-channel requests (the provider's own paths, on the mTLS host).
  ...(mtls
    ? {
      discovery: {
        mtls_endpoint_aliases: {
          token_endpoint: `${mtls.base}/token`,
          pushed_authorization_request_endpoint: `${mtls.base}/request`,
          revocation_endpoint: `${mtls.base}/token/revocation`,
          introspection_endpoint: `${mtls.base}/token/introspection`,
        },
      },
    }
    : {}),
  async findAccount(ctx, sub) {
    return {
      accountId: sub,
      // `claims` is what the request asked of this use (id_token or
      // userinfo): the account's intent is the one the TPP named, as a
      // bank would answer with the consent it authorised.
      async claims(use, scope, claims) {
        const intent = claims?.openbanking_intent_id?.value;
        return intent ? { sub, openbanking_intent_id: intent } : { sub };
      },
    };
  },
  // The person consents in the test, never asked about offline access on
  // its own: every code grant comes with a refresh token.
  async issueRefreshToken(ctx, client) {
    return client.grantTypeAllowed('refresh_token');
  },
  features: {
    fapi: {
      enabled: true,
      profile(ctx, client) {
        const id = client?.clientId;
        if (id === FAPI2_CLIENT) {
          return '2.0';
        }
        return UK_CLIENTS.has(id) ? '1.0 Final' : undefined;
      },
    },
    ...(mtls ? { mTLS: mtlsFeature() } : {}),
    devInteractions: { enabled: true },
    claimsParameter: { enabled: true },
    // Required per client (require_signed_request_object), not for all.
    requestObjects: { request: true, requireSignedRequestObject: false },
    dPoP: {
      enabled: true,
      nonceSecret: crypto.randomBytes(32),
      requireNonce(ctx) {
        return ctx.oidc?.client?.clientId === FAPI2_CLIENT;
      },
    },
    pushedAuthorizationRequests: { enabled: true },
    revocation: { enabled: true },
    jwtResponseModes: { enabled: true },
    introspection: {
      enabled: true,
      async allowedPolicy(ctx, client) {
        return client.clientId === 'introspector';
      },
    },
  },
  ttl: {
    AccessToken: 60,
    AuthorizationCode: 60,
    Grant: 60 * 60,
    IdToken: 60,
    Interaction: 60,
    PushedAuthorizationRequest: 60,
    Session: 60,
    RefreshToken: 60 * 60,
  },
});

const events = recordEvents(provider);

// WRONG_JWKS=1: the JWKS served is fresh keys under the server's own kids,
// so every ID token (signed with the real keys) fails its signature check,
// as if someone else had signed it.
const wrongJwks = process.env.WRONG_JWKS
  ? JSON.stringify({
    keys: [
      serverKey('rsa', { modulusLength: 2048 }, 'PS256', 'server-ps256'),
      serverKey('ec', { namedCurve: 'P-256' }, 'ES256', 'server-es256'),
    ].map((k) => {
      const { d, p, q, dp, dq, qi, ...pub } = k;
      return pub;
    }),
  })
  : null;

const callback = provider.callback();
const handle = (req, res) => {
  if (wrongJwks && req.method === 'GET' && req.url === '/jwks') {
    res.writeHead(200, { 'content-type': 'application/jwk-set+json' });
    res.end(wrongJwks);
    return;
  }
  if (req.method === 'GET' && req.url === '/interop/events') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(events));
    return;
  }
  callback(req, res);
};
server.on('request', handle);
mtls?.server.on('request', handle);

process.stdout.write(`${JSON.stringify({
  issuer,
  token_endpoint: `${issuer}/token`,
  introspection_endpoint: `${issuer}/token/introspection`,
  revocation_endpoint: `${issuer}/token/revocation`,
  events_endpoint: `${issuer}/interop/events`,
  refresh_token: '',
  fleet_refresh_token: '',
  session_refresh_token: '',
  resource: '',
  secrets: { introspector: INTROSPECTOR_SECRET },
  mtls_base: mtls?.base ?? '',
})}\n`);

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
