"""Verifies an AWS SigV4 signed request with botocore, as AWS would.

Reads one JSON object on stdin: the request the upstream received
(method, target = path and query as sent, headers as [name, value] pairs,
body in base64) and the key, region and service the signature must be
made with. Rebuilds the request from the headers the Authorization header
says it signed and has botocore (SigV4Auth, or S3SigV4Auth for s3) compute
the signature; for S3 also checks x-amz-content-sha256 against the body.
Prints a JSON verdict: {"ok": true} or {"ok": false, "why": ...}.
"""

import base64
import hashlib
import hmac
import json
import sys

from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def verdict(req):
    headers = req["headers"]
    auths = [v for n, v in headers if n.lower() == "authorization"]
    if len(auths) != 1:
        return f"expected one Authorization header, got {len(auths)}"
    algorithm, _, fields = auths[0].partition(" ")
    if algorithm != "AWS4-HMAC-SHA256":
        return f"algorithm {algorithm!r}"
    parts = dict(f.strip().split("=", 1) for f in fields.split(","))
    amz_date = next((v for n, v in headers if n.lower() == "x-amz-date"), None)
    if amz_date is None:
        return "no x-amz-date"
    scope = f"{req['access_key_id']}/{amz_date[:8]}/{req['region']}/{req['service']}/aws4_request"
    if parts.get("Credential") != scope:
        return f"credential scope {parts.get('Credential')!r}, want {scope!r}"
    signed = parts["SignedHeaders"].split(";")
    for must in ["host", "x-amz-date"] + (["x-amz-security-token"] if req.get("session_token") else []):
        if must not in signed:
            return f"{must} is not signed: {signed}"
    body = base64.b64decode(req["body"])
    s3 = req["service"] == "s3"
    sha = next((v for n, v in headers if n.lower() == "x-amz-content-sha256"), None)
    if sha == STREAMING:
        if not req.get("streaming"):
            return "a streaming payload where none was asked for"
        why = verify_chunks(req, headers, body, amz_date, scope, parts["Signature"])
        if why:
            return why
    elif req.get("streaming"):
        return f"x-amz-content-sha256 is {sha!r}, not the streaming payload"
    elif s3 and sha not in (hashlib.sha256(body).hexdigest(), "UNSIGNED-PAYLOAD"):
        return f"x-amz-content-sha256 {sha!r} is not the body's SHA-256"
    if sha == "UNSIGNED-PAYLOAD" and not req.get("unsigned"):
        return "UNSIGNED-PAYLOAD where the body must be signed"
    token = next((v for n, v in headers if n.lower() == "x-amz-security-token"), None)
    if token != req.get("session_token"):
        return "x-amz-security-token is not the session token"
    kept = {}
    for name, value in headers:
        if name.lower() in signed:
            kept[name.lower()] = value if name.lower() not in kept else kept[name.lower()] + "," + value
    host = kept["host"]
    aws = AWSRequest(method=req["method"], url=f"http://{host}{req['target']}", headers=kept, data=body)
    aws.context["timestamp"] = amz_date
    creds = Credentials(req["access_key_id"], req["secret_access_key"], req.get("session_token"))
    signer = (S3SigV4Auth if s3 else SigV4Auth)(creds, req["service"], req["region"])
    canonical = signer.canonical_request(aws)
    expected = signer.signature(signer.string_to_sign(aws, canonical), aws)
    if signer.signed_headers(signer.headers_to_sign(aws)) != parts["SignedHeaders"]:
        return "signed header list differs"
    if parts.get("Signature") != expected:
        return f"signature {parts.get('Signature')} != botocore's {expected}; botocore's canonical request:\n{canonical}"
    return None


STREAMING = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"


def hmac256(key, text):
    return hmac.new(key, text.encode() if isinstance(text, str) else text, hashlib.sha256).digest()


def verify_chunks(req, headers, body, amz_date, scope, seed):
    """The aws-chunked body, each chunk's signature chained from the seed
    (the headers' signature, checked by botocore), as AWS documents it."""
    get = lambda name: next((v for n, v in headers if n.lower() == name), None)
    if get("content-encoding") is None or not get("content-encoding").startswith("aws-chunked"):
        return "no aws-chunked Content-Encoding"
    declared = int(get("x-amz-decoded-content-length"))
    if int(get("content-length")) != len(body):
        return "Content-Length is not the encoded body's length"
    key = ("AWS4" + req["secret_access_key"]).encode()
    for part in scope.split("/")[1:]:
        key = hmac256(key, part)
    prev, decoded, rest = seed, b"", body
    while True:
        head, sep, rest = rest.partition(b"\r\n")
        if not sep:
            return "a chunk header without CRLF"
        size, _, sig = head.decode().partition(";chunk-signature=")
        size = int(size, 16)
        data, trailer, rest = rest[:size], rest[size:size + 2], rest[size + 2:]
        if trailer != b"\r\n":
            return "a chunk not followed by CRLF"
        sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope.split("/", 1)[1], prev,
                         hashlib.sha256(b"").hexdigest(), hashlib.sha256(data).hexdigest()])
        expected = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
        if sig != expected:
            return f"chunk {len(decoded)}: signature {sig} != {expected}"
        prev = expected
        decoded += data
        if size == 0:
            break
    if rest:
        return "bytes after the final chunk"
    if len(decoded) != declared or decoded != base64.b64decode(req["decoded"]):
        return "the decoded body is not what the app sent"
    return None


def main():
    why = verdict(json.load(sys.stdin))
    print(json.dumps({"ok": why is None, "why": why}))


if __name__ == "__main__":
    main()
