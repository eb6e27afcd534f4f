"""GET /optin/link and /optin/qr.svg: a wa.me link whose prefilled text carries a source tag,
and its QR code, for posters, receipts and IVR scripts ("send the message to ...")."""

from __future__ import annotations

import io
from urllib.parse import quote

import segno
from flask import Response, jsonify, request

from bot.api.errors import ApiError
from bot.web import bp
from bot.web.wording import page_languages
from bot.wiring.services import services
from flows.catalog import Catalog
from flows.entry import is_tag, prefilled_text


def _link(catalog: Catalog) -> tuple[str, str]:
    """(url, prefilled text) for the request's source tag and language."""
    number = catalog.company.whatsapp_number
    if number is None:
        raise ApiError(
            404,
            "not_configured",
            "set [company] whatsapp_number in the OPTIN_CONFIG file to offer wa.me links",
        )
    tag = request.args.get("source")
    if tag is not None and not is_tag(tag):
        raise ApiError(
            422,
            "invalid_field",
            "source: 1 to 64 letters, digits and . _ - (starting with a letter or digit), "
            "e.g. poster-42",
        )
    languages = page_languages(catalog)
    language = request.args.get("lang", languages[0])
    if language not in languages:
        raise ApiError(422, "invalid_field", f"lang: one of {', '.join(languages)}")
    text = prefilled_text(catalog.company.name, language, tag)
    return f"https://wa.me/{number}?text={quote(text, safe='')}", text


@bp.get("/link")
def link() -> Response:
    url, text = _link(services().catalog)
    return jsonify({"url": url, "text": text})


@bp.get("/qr.svg")
def qr_code() -> Response:
    url, _ = _link(services().catalog)
    svg = io.BytesIO()
    # Error correction M survives a crease or a smudge on a printed poster.
    segno.make(url, error="m", micro=False).save(
        svg, kind="svg", scale=8, border=4, xmldecl=False, title="WhatsApp"
    )
    response = Response(svg.getvalue(), mimetype="image/svg+xml")
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response
