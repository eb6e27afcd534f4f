"""Whether a configured key is strong enough for production.

A short or well-known SECRET_KEY lets anyone who guesses it sign cookies the console accepts, so
production refuses one at start-up. Nothing here ever repeats the key in a message.
"""

from __future__ import annotations

import re

KEY_MIN_LENGTH = 32
KEY_MIN_DISTINCT = 8  # fewer distinct characters than this is a pattern, not randomness
# Compared after case-folding and dropping everything but letters and digits.
PLACEHOLDERS = frozenset(
    {
        "changeme",
        "change",
        "secret",
        "secretkey",
        "dev",
        "development",
        "devkey",
        "test",
        "testing",
        "testkey",
        "default",
        "password",
        "key",
        "mysecretkey",
        "supersecret",
        "supersecretkey",
        "flasksecretkey",
        "todo",
        "xxx",
    }
)
# Words that mark a value copied from an example or a tutorial, whatever its length.
PLACEHOLDER_MARKERS = (
    "changeme",
    "changethis",
    "replaceme",
    "yoursecret",
    "placeholder",
    "example",
    "insecure",
    "notsecret",
    "dontuse",
    "donotuse",
)
GENERATE_HINT = "python -c 'import secrets; print(secrets.token_urlsafe(48))'"


def weak_key_problem(value: str) -> str | None:
    """Why value is no production key (None: it may be used)."""
    folded = re.sub(r"[^0-9a-z]", "", value.casefold())
    if folded in PLACEHOLDERS or any(marker in folded for marker in PLACEHOLDER_MARKERS):
        return "is a known placeholder"
    if len(value) < KEY_MIN_LENGTH:
        return f"is {len(value)} characters long; production needs at least {KEY_MIN_LENGTH}"
    if len(set(value)) < KEY_MIN_DISTINCT:
        return "repeats too few different characters to be random"
    return None
