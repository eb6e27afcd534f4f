"""GET /openapi.yaml: the API's OpenAPI 3.1 description, served without a token."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from flask import Response

from bot.api import bp

# openapi.yaml sits at the repository root, beside pyproject.toml (an editable install).
OPENAPI_FILE = Path(__file__).resolve().parents[2] / "openapi.yaml"


@cache
def _document() -> bytes:
    return OPENAPI_FILE.read_bytes()


@bp.get("/openapi.yaml", endpoint="openapi")
def openapi() -> Response:
    return Response(_document(), mimetype="application/yaml")
