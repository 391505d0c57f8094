// A bank's resource server for the jws-detached interop test: it verifies
// every request's x-jws-signature with panva's `jose` (installed with
// oidc-provider, pinned in ../oidc-provider/package-lock.json), the way a
// UK open banking ASPSP does, over the exact bytes of the body it received.
//
// Started with the signer's PEM key files in RSA_KEY and EC_KEY (the public
// halves are derived by node's crypto) and the expected kid, iss and tan in
// EXPECT (JSON); with TLS_CERT, TLS_KEY and CLIENT_CA it serves HTTPS and
// requires a client certificate issued by CLIENT_CA (UK OB's MA-TLS).
// Prints {"port": N} once it listens, and exits when its stdin closes.
// Every request is answered with a JSON verdict: 200 and {"ok": true,
// "header": ..., ...} when the signature verifies and the header follows
// UK OB's rules; 400 and {"ok": false, "why": ...} if not. As a control,
// each good signature is also checked over the body with one bit changed,
// which jose must refuse ("control": "refused").

import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createRequire } from 'node:module';

const require = createRequire(new URL('../oidc-provider/package.json', import.meta.url));
const jose = require('jose');

const IAT = 'http://openbanking.org.uk/iat';
const ISS = 'http://openbanking.org.uk/iss';
const TAN = 'http://openbanking.org.uk/tan';

const keys = {
  PS256: createPublicKey(readFileSync(process.env.RSA_KEY)),
  ES256: createPublicKey(readFileSync(process.env.EC_KEY)),
};
const expect = JSON.parse(process.env.EXPECT);

// UK OB's rules for the protected header, beyond what jose checks.
function checkHeader(h) {
  const crit = [...(h.crit ?? [])].sort();
  const want = [IAT, ISS, TAN];
  if (h.b64 !== undefined) {
    if (h.b64 !== false) throw new Error('b64 present but not false');
    want.push('b64');
  }
  if (JSON.stringify(crit) !== JSON.stringify(want.sort())) {
    throw new Error(`crit is ${JSON.stringify(h.crit)}, expected ${JSON.stringify(want)}`);
  }
  if (!Number.isInteger(h[IAT])) throw new Error('iat is not an integer');
  const skew = Math.abs(Date.now() / 1000 - h[IAT]);
  if (skew > 300) throw new Error(`iat is ${skew}s away from now`);
  if (h.kid !== expect.kid) throw new Error(`kid ${h.kid}`);
  if (h[ISS] !== expect.iss) throw new Error(`iss ${h[ISS]}`);
  if (h[TAN] !== expect.tan) throw new Error(`tan ${h[TAN]}`);
  if (h.cty !== undefined && h.cty !== 'application/json' && h.cty !== 'json') {
    throw new Error(`cty ${h.cty}`);
  }
  if (h.typ !== undefined && h.typ !== 'JOSE') throw new Error(`typ ${h.typ}`);
}

async function verify(signature, body) {
  const parts = signature.split('.');
  if (parts.length !== 3 || parts[1] !== '') {
    throw new Error('not a compact JWS with a detached payload');
  }
  const header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
  const key = keys[header.alg];
  if (!key) throw new Error(`alg ${header.alg}`);
  // Detached: the payload is the body as received; base64url-encoded for
  // the signing input unless the header says b64=false (RFC 7797), which
  // jose handles itself.
  const check = (bytes) => jose.flattenedVerify(
    {
      protected: parts[0],
      payload: header.b64 === false ? bytes : jose.base64url.encode(bytes),
      signature: parts[2],
    },
    key,
    {
      algorithms: ['PS256', 'ES256'],
      crit: { [IAT]: true, [ISS]: true, [TAN]: true },
    },
  );
  const { protectedHeader } = await check(body);
  checkHeader(protectedHeader);
  const changed = Buffer.from(body);
  changed[changed.length >> 1] ^= 1;
  let control = 'accepted';
  try {
    await check(changed);
  } catch (e) {
    if (e.code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') control = 'refused';
  }
  return { header: protectedHeader, control };
}

const tls = process.env.TLS_CERT
  ? {
    cert: readFileSync(process.env.TLS_CERT),
    key: readFileSync(process.env.TLS_KEY),
    ca: readFileSync(process.env.CLIENT_CA),
    requestCert: true,
    rejectUnauthorized: true,
  }
  : null;

const handle = (req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    const body = Buffer.concat(chunks);
    const seen = {
      method: req.method,
      url: req.url,
      length: body.length,
      authorization: req.headers.authorization ?? null,
      interaction_id: req.headers['x-fapi-interaction-id'] ?? null,
      idempotency_key: req.headers['x-idempotency-key'] ?? null,
      jws: req.headers['x-jws-signature'] ?? null,
      peer: req.socket.getPeerCertificate?.()?.subject?.CN ?? null,
    };
    const signature = req.headers['x-jws-signature'];
    let status = 200;
    let verdict;
    if (signature === undefined) {
      verdict = { ok: body.length === 0, why: 'no x-jws-signature', ...seen };
      status = body.length === 0 ? 200 : 400;
    } else {
      try {
        verdict = { ok: true, ...(await verify(signature, body)), ...seen };
      } catch (e) {
        status = 400;
        verdict = { ok: false, why: `${e.code ?? e.name}: ${e.message}`, ...seen };
      }
    }
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(verdict));
  });
};
const server = tls ? createHttpsServer(tls, handle) : createHttpServer(handle);

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
