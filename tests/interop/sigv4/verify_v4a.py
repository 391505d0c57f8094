"""Verifies an AWS SigV4A signed request with the AWS Common Runtime.

Reads the same JSON as verify.py, plus "region_set". SigV4A signatures
are ECDSA, so no second signer reproduces one; instead:

1. awscrt (the AWS Common Runtime that botocore's SigV4A signer is built
   on, pinned in .ci/run) signs the same request at the same time with the
   same credentials: its credential scope and signed header list must be
   countersign's.
2. The string to sign is built from botocore's canonical request (the
   same rules as SigV4) with SigV4A's algorithm and region-less scope.
3. The public key is derived from the credentials by AWS's documented
   KDF, here in Python with the `cryptography` package. awscrt's
   signature must verify with it over that string to sign, which shows
   both the key and the string to sign are AWS's; then countersign's
   signature must verify too.

Prints a JSON verdict: {"ok": true} or {"ok": false, "why": ...}.
"""

import datetime
import hashlib
import hmac
import json
import sys

from awscrt import auth, http
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

ALGORITHM = "AWS4-ECDSA-P256-SHA256"
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def public_key(access_key_id, secret):
    """SP 800-108 counter-mode KDF (HMAC-SHA256) as AWS documents it."""
    for counter in range(1, 256):
        fixed = ALGORITHM.encode() + b"\0" + access_key_id.encode() + bytes([counter]) + (256).to_bytes(4, "big")
        k0 = int.from_bytes(hmac.new(("AWS4A" + secret).encode(), (1).to_bytes(4, "big") + fixed,
                                     hashlib.sha256).digest(), "big")
        if k0 <= N - 2:
            return ec.derive_private_key(k0 + 1, ec.SECP256R1()).public_key()
    raise ValueError("no key")


def fields(authorization):
    algorithm, _, rest = authorization.partition(" ")
    return algorithm, dict(f.strip().split("=", 1) for f in rest.split(","))


def crt_sign(req, kept, body_hash, content_sha256, amz_date, s3):
    """awscrt's SigV4A Authorization for the same request."""
    added = {"x-amz-date", "x-amz-region-set", "x-amz-security-token", "x-amz-content-sha256"}
    headers = http.HttpHeaders([(n, v) for n, v in kept.items() if n not in added])
    request = http.HttpRequest(req["method"], req["target"], headers)
    date = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    config = auth.AwsSigningConfig(
        algorithm=auth.AwsSigningAlgorithm.V4_ASYMMETRIC,
        credentials_provider=auth.AwsCredentialsProvider.new_static(
            req["access_key_id"], req["secret_access_key"], req.get("session_token")),
        region=req["region_set"],
        service=req["service"],
        date=date,
        use_double_uri_encode=not s3,
        should_normalize_uri_path=not s3,
        signed_body_value=body_hash,
        signed_body_header_type=(auth.AwsSignedBodyHeaderType.X_AMZ_CONTENT_SHA_256 if content_sha256
                                 else auth.AwsSignedBodyHeaderType.NONE),
    )
    signed = auth.aws_sign_request(request, config).result()
    return signed.headers.get("Authorization")


def verifies(key, der_hex, text):
    try:
        key.verify(bytes.fromhex(der_hex), text.encode(), ec.ECDSA(hashes.SHA256()))
        return True
    except (InvalidSignature, ValueError):
        return False


def verdict(req):
    import base64
    headers = req["headers"]
    get = lambda name: next((v for n, v in headers if n.lower() == name), None)
    auths = [v for n, v in headers if n.lower() == "authorization"]
    if len(auths) != 1:
        return f"expected one Authorization header, got {len(auths)}"
    algorithm, parts = fields(auths[0])
    if algorithm != ALGORITHM:
        return f"algorithm {algorithm!r}"
    amz_date = get("x-amz-date")
    if amz_date is None:
        return "no x-amz-date"
    scope = f"{amz_date[:8]}/{req['service']}/aws4_request"
    if parts.get("Credential") != f"{req['access_key_id']}/{scope}":
        return f"credential scope {parts.get('Credential')!r}"
    if get("x-amz-region-set") != req["region_set"]:
        return f"x-amz-region-set {get('x-amz-region-set')!r}, want {req['region_set']!r}"
    if get("x-amz-security-token") != req.get("session_token"):
        return "x-amz-security-token is not the session token"
    signed = parts["SignedHeaders"].split(";")
    for must in ["host", "x-amz-date", "x-amz-region-set"]:
        if must not in signed:
            return f"{must} is not signed: {signed}"
    body = base64.b64decode(req["body"])
    s3 = req["service"] == "s3"
    sha = get("x-amz-content-sha256")
    if sha == "UNSIGNED-PAYLOAD":
        if not req.get("unsigned"):
            return "UNSIGNED-PAYLOAD where the body must be signed"
        body_hash = sha
    else:
        body_hash = hashlib.sha256(body).hexdigest()
        if s3 and sha != body_hash:
            return f"x-amz-content-sha256 {sha!r} is not the body's SHA-256"
    kept = {}
    for name, value in headers:
        if name.lower() in signed:
            kept[name.lower()] = value if name.lower() not in kept else kept[name.lower()] + "," + value

    crt = crt_sign(req, kept, body_hash, sha is not None, amz_date, s3)
    crt_algorithm, crt_parts = fields(crt)
    if crt_algorithm != ALGORITHM or crt_parts["Credential"] != parts["Credential"]:
        return f"awscrt signs {crt!r}"
    if crt_parts["SignedHeaders"] != parts["SignedHeaders"]:
        return f"signed headers {parts['SignedHeaders']!r}, awscrt's {crt_parts['SignedHeaders']!r}"

    aws = AWSRequest(method=req["method"], url=f"http://{kept['host']}{req['target']}", headers=kept, data=body)
    aws.context["timestamp"] = amz_date
    creds = Credentials(req["access_key_id"], req["secret_access_key"], req.get("session_token"))
    signer = (S3SigV4Auth if s3 else SigV4Auth)(creds, req["service"], "unused")
    canonical = signer.canonical_request(aws)
    string_to_sign = "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = public_key(req["access_key_id"], req["secret_access_key"])
    if not verifies(key, crt_parts["Signature"], string_to_sign):
        return f"awscrt's own signature does not verify over botocore's canonical request:\n{canonical}"
    if not verifies(key, parts["Signature"], string_to_sign):
        return f"the signature does not verify; the canonical request:\n{canonical}"
    return None


def main():
    why = verdict(json.load(sys.stdin))
    print(json.dumps({"ok": why is None, "why": why}))


if __name__ == "__main__":
    main()
