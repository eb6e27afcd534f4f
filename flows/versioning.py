"""A short stable version for a text, so a ledger row proves which wording was shown."""

import hashlib


def text_version(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
