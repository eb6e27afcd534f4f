"""Secrets generated for development, kept in the instance folder so they survive restarts.

Without this, every `make run` would print a new verify token and app secret, and the one typed
into Meta's dashboard would stop working. Production never reads this file.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

NAMES = ("WHATSAPP_VERIFY_TOKEN", "WHATSAPP_APP_SECRET", "SECRET_KEY")


def development_secrets(path: Path) -> dict[str, str]:
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        kept = {}
    if not isinstance(kept, dict):
        kept = {}
    missing = [name for name in NAMES if not isinstance(kept.get(name), str)]
    if missing:
        kept.update({name: secrets.token_urlsafe(24) for name in missing})
        path.parent.mkdir(parents=True, exist_ok=True)
        # Created readable by the owner only: these are secrets, if only development ones.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            json.dump(kept, file, indent=2)
    return kept
