"""Meta's X-Hub-Signature-256: HMAC-SHA256 of the raw body with the App Secret."""

from __future__ import annotations

import hashlib
import hmac
from enum import Enum


class SignatureCheck(Enum):
    VALID = "valid"
    MISSING = "missing"
    INVALID = "invalid"


def expected_signature(body: bytes, app_secret: str) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def check_signature(body: bytes, header: str | None, app_secret: str) -> SignatureCheck:
    """Compare over the exact bytes received, in constant time; re-serialised JSON never matches."""
    if not header:
        return SignatureCheck.MISSING
    if not header.startswith("sha256="):
        return SignatureCheck.INVALID
    expected = expected_signature(body, app_secret)
    if hmac.compare_digest(expected.encode(), header.strip().lower().encode()):
        return SignatureCheck.VALID
    return SignatureCheck.INVALID
