// RFC 8705 for the interop instances that take client certificates
// (mtls-server.mjs, and fapi-server.mjs with TLS_CERT set): an HTTPS
// listener that asks every client for a certificate, and the provider's
// `mTLS` feature reading that certificate off the request's TLS connection.
//
//   TLS_CERT=server.pem TLS_KEY=server-key.pem CLIENT_CA=clients-ca.pem
//
// The listener asks but does not insist: whether the certificate chained
// to CLIENT_CA is the provider's question (certificateAuthorized), so a
// client without one (the introspector) still connects.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';

function env(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} must be set (see the usage line at the top)`);
  }
  return value;
}

// An HTTPS server on 127.0.0.1:0 with the test CA's `localhost`
// certificate, listening; its URL base is https://localhost:PORT.
export async function listenHttps() {
  const server = https.createServer({
    cert: fs.readFileSync(env('TLS_CERT')),
    key: fs.readFileSync(env('TLS_KEY')),
    ca: fs.readFileSync(env('CLIENT_CA')),
    requestCert: true,
    rejectUnauthorized: false,
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return { server, base: `https://localhost:${server.address().port}` };
}

// The peer certificate of the request's TLS connection, as PEM (or
// undefined on plain HTTP, or when the client presented none).
export function peerCertificate(ctx) {
  const peer = ctx.req.socket.getPeerX509Certificate?.();
  return peer ? peer.toString() : undefined;
}

// features.mTLS: certificate-bound access tokens, tls_client_auth (the
// registered subject DN against the certificate's) and
// self_signed_tls_client_auth.
export function mtlsFeature() {
  return {
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
  };
}

// The subject DN the mTLS clients are registered with.
export function clientDn() {
  return env('CLIENT_DN');
}
