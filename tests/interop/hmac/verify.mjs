// Checks a request signed by countersign's `hmac` recipes the way each
// provider's own published sample computes the signature, with Node.js's
// crypto (OpenSSL), not countersign's code:
//
// - line-pay-v3: https://developers-pay.line.me/online/pre-requisites
//   (its Node.js sample): base64 HMAC-SHA256 keyed with the channel
//   secret over channel secret + apiPath + (GET: queryString, else: the
//   request body) + nonce.
// - bitflyer: https://lightning.bitflyer.com/docs#authentication (its
//   Node.js sample): hex HMAC-SHA256 keyed with the API secret over
//   timestamp + method + path + body.
// - paypay-opa: PayPay's OPA-Auth (SCHEMES.md section 1): base64
//   HMAC-SHA256 over path, method, nonce, epoch, content type and
//   base64(MD5(content type ++ body)), or `empty` for both without a body.
//
// Reads one JSON object on stdin: recipe, method, path, query, headers
// (lowercase name -> value), body (base64), secret, api_key. Prints
// {"ok": true} or {"ok": false, "why": ...}.

import { createHash, createHmac } from "node:crypto";

const input = JSON.parse(await new Promise((done) => {
  let text = "";
  process.stdin.on("data", (c) => (text += c));
  process.stdin.on("end", () => done(text));
}));
const body = Buffer.from(input.body, "base64");
const h = input.headers;

function check() {
  if (input.recipe === "line-pay-v3") {
    if (h["x-line-channelid"] !== input.api_key) return `channel id ${h["x-line-channelid"]}`;
    const nonce = h["x-line-authorization-nonce"];
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(nonce ?? "")) {
      return `nonce ${nonce} is not a version 4 UUID`;
    }
    const middle = input.method === "GET" ? Buffer.from(input.query) : body;
    const message = Buffer.concat([Buffer.from(input.secret + input.path), middle, Buffer.from(nonce)]);
    const expected = createHmac("sha256", input.secret).update(message).digest("base64");
    return h["x-line-authorization"] === expected ? null : `signature ${h["x-line-authorization"]}, Node.js computes ${expected}`;
  }
  if (input.recipe === "bitflyer") {
    if (h["access-key"] !== input.api_key) return `key ${h["access-key"]}`;
    const timestamp = h["access-timestamp"];
    const age = Math.abs(Date.now() - Number(timestamp));
    if (!(age < 120000)) return `timestamp ${timestamp} is not Date.now()`;
    const path = input.query ? `${input.path}?${input.query}` : input.path;
    const text = Buffer.concat([Buffer.from(timestamp + input.method + path), body]);
    const expected = createHmac("sha256", input.secret).update(text).digest("hex");
    return h["access-sign"] === expected ? null : `sign ${h["access-sign"]}, Node.js computes ${expected}`;
  }
  if (input.recipe === "paypay-opa") {
    const fields = (h["authorization"] ?? "").replace(/^hmac OPA-Auth:/, "").split(":");
    if (fields.length !== 5) return `not an OPA-Auth header: ${h["authorization"]}`;
    const [key, mac, nonce, epoch, hash] = fields;
    if (key !== input.api_key) return `api key ${key}`;
    let contentType = "empty";
    let expectedHash = "empty";
    if (body.length > 0) {
      contentType = h["content-type"];
      expectedHash = createHash("md5").update(Buffer.concat([Buffer.from(contentType), body])).digest("base64");
    }
    if (hash !== expectedHash) return `body hash ${hash}, Node.js computes ${expectedHash}`;
    const message = [input.path, input.method, nonce, epoch, contentType, hash].join("\n");
    const expected = createHmac("sha256", input.secret).update(message).digest("base64");
    return mac === expected ? null : `mac ${mac}, Node.js computes ${expected}`;
  }
  return `no recipe ${input.recipe}`;
}

const why = check();
process.stdout.write(JSON.stringify(why === null ? { ok: true } : { ok: false, why }));
