"""GET /audience?category=X: every contact who may receive category X now, as streamed CSV."""

from __future__ import annotations

from flask import Response, request, stream_with_context

from bot.api import bp
from bot.api.validation import category_query
from bot.wiring.services import services
from storage.audience import audience_csv


@bp.get("/audience")
def audience() -> Response:
    app_services = services()
    category = category_query(request.args.get("category"), app_services.catalog)
    chunks = audience_csv(app_services.engine, category=category)
    # The first chunk is read before answering, so a database that cannot be reached is an
    # error status, not a 200 cut short.
    first = next(chunks)

    def body():  # type: ignore[no-untyped-def]
        yield first
        yield from chunks

    return Response(
        stream_with_context(body()),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="audience-{category}.csv"',
            "Cache-Control": "no-store",
        },
    )
