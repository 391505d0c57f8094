"""Verifies an RFC 9421 HTTP message signature with the PyPI package
http-message-signatures (pinned in .ci/run), as a receiving API would.

Reads one JSON object on stdin: the request the upstream received (method,
url rebuilt from the Host header and the request target, headers as
[name, value] pairs, body in base64), the algorithm, the keyid and the key
to verify with (a PKCS#8 PEM private key file whose public half is used,
or an HMAC secret in base64), the tag to expect and the components the
signature must cover. The package recomputes the signature base from the
request and checks the signature, and checks the signed Content-Digest
against the body. Prints a JSON verdict: {"ok": true, "covered": [...],
"params": {...}} or {"ok": false, "why": ...}.
"""

import base64
import json
import sys

from cryptography.hazmat.primitives import serialization
from http_message_signatures import (
    HTTPMessageVerifier,
    InvalidSignature,
    MappingKeyResolver,
    algorithms,
)

ALGORITHMS = {
    "hmac-sha256": algorithms.HMAC_SHA256,
    "ed25519": algorithms.ED25519,
    "ecdsa-p256-sha256": algorithms.ECDSA_P256_SHA256,
    "rsa-pss-sha512": algorithms.RSA_PSS_SHA512,
    "rsa-v1_5-sha256": algorithms.RSA_V1_5_SHA256,
}


class Message:
    """A request as the package's component resolver reads it."""

    def __init__(self, method, url, headers):
        self.method = method
        self.url = url
        combined = {}
        for name, value in headers:
            key = name.lower()
            combined[key] = f"{combined[key]}, {value}" if key in combined else value
        self.headers = combined


def public_key(req):
    if req["algorithm"] == "hmac-sha256":
        return base64.b64decode(req["secret"])
    with open(req["private_key_file"], "rb") as f:
        private = serialization.load_pem_private_key(f.read(), password=None)
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def main():
    req = json.load(sys.stdin)
    message = Message(req["method"], req["url"], req["headers"])
    verifier = HTTPMessageVerifier(
        signature_algorithm=ALGORITHMS[req["algorithm"]],
        key_resolver=MappingKeyResolver(
            public_keys={req["keyid"]: public_key(req)}, private_keys={}
        ),
    )
    body = base64.b64decode(req["body"])
    try:
        results = verifier.verify(
            message,
            max_age=None,
            expect_tag=req.get("tag"),
            require_components=req["require"],
            body=body if req.get("digest") else None,
        )
    except InvalidSignature as e:
        print(json.dumps({"ok": False, "why": f"InvalidSignature: {e}"}))
        return
    result = results[0]
    print(
        json.dumps(
            {
                "ok": True,
                "label": result.label,
                "covered": list(result.covered_components),
                "params": {k: v for k, v in result.parameters.items()},
                "body_checked": result.body is not None,
            }
        )
    )


if __name__ == "__main__":
    main()
