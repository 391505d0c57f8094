// A real, third-party OAuth2 authorization server for countersign's interop
// tests: panva's oidc-provider (the version pinned in package.json), set up
// here with the clients the tests use. Run by tests/interop/main.rs:
//
//   RSA_KEY=path/to/rsa.pem EC_KEY=path/to/ec.pem node server.mjs
//
// RSA_KEY and EC_KEY are PKCS#8 private keys; only their public halves are
// registered (as the jwt clients' jwks), countersign signs with the private
// ones. The server listens on 127.0.0.1 on a port the OS picks, mints a
// refresh token for `refresh-client` (as if a person had authorised it once),
// prints one JSON line on stdout and serves until it is killed:
//
//   {"issuer": "http://127.0.0.1:PORT", "token_endpoint": "...",
//    "introspection_endpoint": "...", "revocation_endpoint": "...",
//    "events_endpoint": "...",
//    "refresh_token": "...", ...}
//
// `dpop-client` (client_credentials, client_secret_basic) is registered with
// `dpop_bound_access_tokens: true`: its tokens are DPoP-bound (RFC 9449),
// and its token requests must carry a server nonce (the first proof without
// one is answered `use_dpop_nonce`). The DPoP feature is on for every
// client, but only a request with a DPoP header is affected by it: the
// other clients send none, so they see no change.
//
// Tokens are opaque, so the tests can ask the server itself whether a token
// that reached the upstream is one it issued and still honours (RFC 7662
// introspection, as client `introspector`).
//
// Every token endpoint success and error is recorded (GET /interop/events,
// and a line on stderr): the tests count on it and show it when they fail.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';

import { Provider, errors } from 'oidc-provider';

// Characters that HTTP Basic garbles unless the id and secret are
// form-encoded first (RFC 6749 section 2.3.1): `:` would split the pair,
// `+` would decode as a space, `%` starts an escape. (Only printable ASCII:
// RFC 6749 Appendix A.2 allows nothing else in a secret, and oidc-provider
// refuses anything else in a Basic header.)
const BASIC_SECRET = 's3cr:et/+&%= ~';
const REFRESH_SECRET = 'refresh:secret+%';
const INTROSPECTOR_SECRET = 'introspector-secret';
const DPOP_SECRET = 'dpop-secret';
const DPOP_CLIENT = 'dpop-client';
// The API countersign's client_credentials tokens are for (RFC 8707).
const RESOURCE = 'https://api.interop.test';
const ACCOUNT = 'interop-user';
const FLEET_CLIENT = 'fleet-client';
const FLEET_ACCESS_TTL = 3;

function publicJwk(envName, kid) {
  const path = process.env[envName];
  if (!path) {
    throw new Error(`${envName} must name a PKCS#8 PEM private key`);
  }
  const jwk = crypto.createPublicKey(fs.readFileSync(path)).export({ format: 'jwk' });
  return { ...jwk, kid };
}

const rsa = publicJwk('RSA_KEY', 'rsa-1');
const ec = publicJwk('EC_KEY', 'ec-1');

const clientCredentialsOnly = {
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
};

function jwtClient(clientId, alg, jwk) {
  return {
    client_id: clientId,
    token_endpoint_auth_method: 'private_key_jwt',
    token_endpoint_auth_signing_alg: alg,
    jwks: { keys: [jwk] },
    ...clientCredentialsOnly,
  };
}

const clients = [
  {
    client_id: 'basic-client',
    client_secret: BASIC_SECRET,
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'api:read api:write',
    ...clientCredentialsOnly,
  },
  {
    client_id: 'post-client',
    client_secret: BASIC_SECRET,
    token_endpoint_auth_method: 'client_secret_post',
    scope: 'api:read api:write',
    ...clientCredentialsOnly,
  },
  jwtClient('jwt-client', 'RS256', rsa),
  jwtClient('jwt-client-ps256', 'PS256', rsa),
  jwtClient('jwt-client-es256', 'ES256', ec),
  {
    client_id: 'refresh-client',
    client_secret: REFRESH_SECRET,
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: ['http://127.0.0.1/callback'],
  },
  // The fleet test's client: three countersigns share its grant, with
  // 3 s access tokens so that it rotates often.
  {
    client_id: 'fleet-client',
    client_secret: REFRESH_SECRET,
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: ['http://127.0.0.1/callback'],
  },
  {
    client_id: DPOP_CLIENT,
    client_secret: DPOP_SECRET,
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'api:read api:write',
    dpop_bound_access_tokens: true,
    ...clientCredentialsOnly,
  },
  {
    client_id: 'introspector',
    client_secret: INTROSPECTOR_SECRET,
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: [],
    response_types: [],
    redirect_uris: [],
  },
];

// The server's own signing key (ID tokens); a fresh one per run.
const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'server-1', alg: 'ES256', use: 'sig' };

const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(0, '127.0.0.1', resolve);
});
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients,
  scopes: ['openid', 'offline_access', 'api:read', 'api:write'],
  jwks: { keys: [signingKey] },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  clientDefaults: { id_token_signed_response_alg: 'ES256' },
  async findAccount(ctx, sub) {
    return { accountId: sub, async claims() { return { sub }; } };
  },
  features: {
    devInteractions: { enabled: false },
    dPoP: {
      enabled: true,
      nonceSecret: crypto.randomBytes(32),
      requireNonce(ctx) {
        return ctx.oidc?.client?.clientId === DPOP_CLIENT;
      },
    },
    clientCredentials: { enabled: true },
    introspection: {
      enabled: true,
      // Only the test's own client may look tokens up.
      async allowedPolicy(ctx, client) {
        return client.clientId === 'introspector';
      },
    },
    // RFC 7009, for countersign ending a session (tests/interop/sessions.rs).
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      async defaultResource() {
        return undefined;
      },
      async useGrantedResource() {
        return false;
      },
      async getResourceServerInfo(ctx, resource) {
        if (resource !== RESOURCE) {
          throw new errors.InvalidTarget();
        }
        // Opaque, so that introspection can vouch for it.
        return { scope: 'api:read api:write', accessTokenFormat: 'opaque', accessTokenTTL: 60 };
      },
    },
  },
  // A refresh token is spent when used: the response carries a new one, and
  // presenting a spent one again revokes the whole grant (oidc-provider's
  // reuse detection).
  rotateRefreshToken: true,
  ttl: {
    AccessToken(ctx, token, client) {
      return client?.clientId === FLEET_CLIENT ? FLEET_ACCESS_TTL : 60;
    },
    ClientCredentials: 60,
    Grant: 24 * 60 * 60,
    IdToken: 60,
    Interaction: 60,
    Session: 60,
    RefreshToken: 24 * 60 * 60,
  },
});

// What happened at the token endpoint, in order, recorded before the
// response goes out: GET /interop/events returns it, so a test that has its
// answer can count the server's successes and errors without racing a log.
const events = [];
function record(entry) {
  events.push(entry);
  console.error(`oidc-provider ${JSON.stringify(entry)}`);
}

for (const event of ['grant.error', 'introspection.error', 'server_error']) {
  provider.on(event, (ctx, err) => {
    record({
      event,
      client_id: ctx?.oidc?.client?.clientId ?? ctx?.oidc?.params?.client_id,
      grant_type: ctx?.oidc?.params?.grant_type,
      error: err.error ?? String(err),
      error_description: err.error_description,
      // oidc-provider keeps the precise reason here, out of the response.
      error_detail: err.error_detail,
      cause: err.cause ? String(err.cause) : undefined,
    });
  });
}
provider.on('grant.success', (ctx) => {
  record({
    event: 'grant.success',
    client_id: ctx.oidc.client.clientId,
    grant_type: ctx.oidc.params.grant_type,
  });
});
provider.on('grant.revoked', (ctx, grantId) => {
  record({ event: 'grant.revoked', grant_id: grantId });
});

const callback = provider.callback();
server.on('request', (req, res) => {
  if (req.method === 'GET' && req.url === '/interop/events') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(events));
    return;
  }
  callback(req, res);
});

// What a person's consent would leave behind: a grant for a client and a
// refresh token for it, made through the provider's own models.
async function consented(clientId) {
  const client = await provider.Client.find(clientId);
  const grant = new provider.Grant({ accountId: ACCOUNT, clientId });
  grant.addOIDCScope('openid offline_access');
  const grantId = await grant.save();
  const refreshToken = await new provider.RefreshToken({
    accountId: ACCOUNT,
    client,
    gty: 'authorization_code',
    grantId,
    scope: 'openid offline_access',
  }).save();
  return { grantId, refreshToken };
}
const { grantId, refreshToken } = await consented('refresh-client');
const fleet = await consented(FLEET_CLIENT);
// A grant countersign serves as a user session, and then ends.
const session = await consented('refresh-client');

process.stdout.write(`${JSON.stringify({
  issuer,
  token_endpoint: `${issuer}/token`,
  introspection_endpoint: `${issuer}/token/introspection`,
  revocation_endpoint: `${issuer}/token/revocation`,
  events_endpoint: `${issuer}/interop/events`,
  refresh_token: refreshToken,
  grant_id: grantId,
  fleet_refresh_token: fleet.refreshToken,
  session_refresh_token: session.refreshToken,
  resource: RESOURCE,
  secrets: {
    'basic-client': BASIC_SECRET,
    'post-client': BASIC_SECRET,
    'refresh-client': REFRESH_SECRET,
    'fleet-client': REFRESH_SECRET,
    introspector: INTROSPECTOR_SECRET,
    [DPOP_CLIENT]: DPOP_SECRET,
  },
})}\n`);

// The test kills the server; closing stdin (the test went away) ends it too.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
