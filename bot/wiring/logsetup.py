"""Application logging: one line per record, to stderr, at the level LOG_LEVEL names."""

from __future__ import annotations

import logging
import os


def configure_logging() -> None:
    root = logging.getLogger()
    if any(getattr(h, "_optin", False) for h in root.handlers):
        return
    handler = logging.StreamHandler()
    handler._optin = True  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())
    # Alembic narrates every migration context at INFO, including /readyz's schema check.
    logging.getLogger("alembic").setLevel(logging.WARNING)
