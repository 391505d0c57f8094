// A DPoP resource server's checks (RFC 9449 section 4.3 and 7.1), made with
// panva's `jose` (installed with oidc-provider, pinned in
// ../oidc-provider/package-lock.json), on one request countersign sent.
//
// Reads one JSON document on stdin:
//   {"method": "GET", "url": "http://host:port/path?query",
//    "authorization": "DPoP ...", "dpop": "<proof>"}
// and writes one on stdout:
//   {"ok": true, "jkt": "<RFC 7638 thumbprint of the proof's key>",
//    "header": {...}, "claims": {...}}  or  {"ok": false, "why": "..."}.
// As a control, the proof is also checked for another method, which must
// be refused ("control": "refused").

import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';

const require = createRequire(new URL('../oidc-provider/package.json', import.meta.url));
const jose = require('jose');

let input = '';
for await (const chunk of process.stdin) input += chunk;
const req = JSON.parse(input);

// What the server compares htu with: the request URL without query and
// fragment.
function htu(url) {
  const u = new URL(url);
  u.search = '';
  u.hash = '';
  return u.href;
}

async function check(method) {
  if (!req.authorization?.startsWith('DPoP ')) {
    throw new Error(`Authorization is not a DPoP token: ${req.authorization?.split(' ')[0]}`);
  }
  const token = req.authorization.slice('DPoP '.length);
  const { payload, protectedHeader } = await jose.jwtVerify(req.dpop, jose.EmbeddedJWK, {
    typ: 'dpop+jwt',
    algorithms: ['ES256', 'EdDSA'],
    maxTokenAge: '60s',
  });
  if (typeof payload.jti !== 'string' || payload.jti.length < 16) throw new Error('jti');
  if (payload.htm !== method) throw new Error(`htm ${payload.htm}`);
  if (payload.htu !== htu(req.url)) throw new Error(`htu ${payload.htu}, expected ${htu(req.url)}`);
  const ath = createHash('sha256').update(token).digest('base64url');
  if (payload.ath !== ath) throw new Error('ath does not match the access token');
  if ('d' in protectedHeader.jwk) throw new Error('the private key is in the header');
  const jkt = await jose.calculateJwkThumbprint(protectedHeader.jwk, 'sha256');
  return { jkt, header: protectedHeader, claims: payload };
}

let answer;
try {
  answer = { ok: true, ...(await check(req.method)) };
  try {
    await check(req.method === 'GET' ? 'POST' : 'GET');
    answer.control = 'accepted';
  } catch {
    answer.control = 'refused';
  }
} catch (e) {
  answer = { ok: false, why: String(e.message ?? e) };
}
process.stdout.write(`${JSON.stringify(answer)}\n`);
