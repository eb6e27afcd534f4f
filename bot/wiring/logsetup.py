"""Application logging: one line per record, to stderr, at the level the settings name."""

from __future__ import annotations

import logging

from bot.wiring.logmask import MaskingFormatter


def configure_logging(level: str = "INFO") -> None:
    root = logging.getLogger()
    root.setLevel(level)
    if any(getattr(h, "_optin", False) for h in root.handlers):
        return
    handler = logging.StreamHandler()
    handler._optin = True  # type: ignore[attr-defined]
    handler.setFormatter(MaskingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    # Alembic narrates every migration context at INFO, including /readyz's schema check.
    logging.getLogger("alembic").setLevel(logging.WARNING)
