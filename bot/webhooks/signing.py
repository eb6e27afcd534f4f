"""X-Signature-256: the receiver's proof that a body comes from us and was not changed."""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-Signature-256"


def signature(secret: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256(secret, raw body)>`, as Meta signs its webhooks to us."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    return bool(header) and hmac.compare_digest(signature(secret, body), header or "")
