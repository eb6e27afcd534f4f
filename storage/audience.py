"""The audience of a category as CSV, streamed in constant memory however many contacts match.

Who is in it: contacts whose consent to the category is granted now, and confirmed where a
double opt-in is pending, in contact order; each by number (`wa_id`) and business-scoped user id
(`user_id`), either empty where unknown: a person without a number is reached by user id (C27).

Suppressed (erased) numbers are left out by construction rather than by hashing every row here:
erasure deletes the contact with its consents, and no path grants consent to a suppressed
number without lifting the suppression (POST /consents refuses it with 409; only the person's
own opt-in on WhatsApp grants, and that lifts it). Checking the keyed hash of a million numbers
on every export would more than double its cost for rows that cannot exist; and every send is
checked against suppression again, at the API and by the dispatcher.

On PostgreSQL the server formats the lines and hands them over in chunks of consecutive contact
ids through a server-side cursor, so Python handles a few hundred strings per million rows.
Elsewhere (SQLite, the embedded default for small installs) rows are read through a cursor
and formatted here.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC

from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine
from sqlmodel import col

from storage.db import is_postgres
from storage.models import Consent, Contact

HEADER = b"wa_id,user_id,granted_at\n"
CHUNK_BYTES = 64 * 1024  # what one write to the client carries, on the generic path
FETCH_ROWS = 5_000  # rows per round trip on the generic path
IDS_PER_CHUNK = 2_000  # contact ids per chunk the database sends, on PostgreSQL
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f+00:00"  # ISO 8601, UTC, the same on every database

# The inner query's order is the order string_agg sees (PostgreSQL's documented way to order an
# aggregate's input), so lines come in contact order within and across chunks.
_PG_CHUNKS = text(
    """
    SELECT string_agg(line, '') AS chunk
    FROM (
        SELECT consent.contact_id AS id,
               coalesce(contact.wa_id, '') || ',' || coalesce(contact.user_id, '') || ',' ||
               to_char(coalesce(consent.granted_at, consent.updated_at) AT TIME ZONE 'UTC',
                       'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"') || E'\\n' AS line
        FROM consent
        JOIN contact ON contact.id = consent.contact_id
        WHERE consent.category = :category
          AND consent.granted
          AND consent.confirmed
        ORDER BY consent.contact_id
    ) AS lines
    GROUP BY id / :ids_per_chunk
    ORDER BY id / :ids_per_chunk
    """
)


def audience_csv(engine: Engine, *, category: str) -> Iterator[bytes]:
    """The CSV, header first, then chunks of lines; the database is read as the client reads.

    The generator holds a database connection until it is exhausted or closed.
    """
    if is_postgres(engine):
        return _postgres_csv(engine, category=category)
    return _generic_csv(engine, category=category)


def _postgres_csv(engine: Engine, *, category: str) -> Iterator[bytes]:
    with engine.connect() as connection:
        result = connection.execution_options(stream_results=True, yield_per=16).execute(
            _PG_CHUNKS, {"category": category, "ids_per_chunk": IDS_PER_CHUNK}
        )
        yield HEADER
        for (chunk,) in result:
            yield chunk.encode()


def _generic_csv(engine: Engine, *, category: str) -> Iterator[bytes]:
    granted_at = func.coalesce(Consent.granted_at, Consent.updated_at)
    statement = (
        select(Contact.wa_id, Contact.user_id, granted_at)
        .join(Contact, col(Contact.id) == col(Consent.contact_id))
        .where(
            Consent.category == category,
            col(Consent.granted).is_(True),
            col(Consent.confirmed).is_(True),
        )
        .order_by(col(Consent.contact_id))
    )
    with engine.connect() as connection:
        result = connection.execution_options(stream_results=True, yield_per=FETCH_ROWS).execute(
            statement
        )
        yield HEADER
        lines: list[str] = []
        size = 0
        for wa_id, user_id, at in result:
            line = f"{wa_id or ''},{user_id or ''},{at.astimezone(UTC).strftime(TIME_FORMAT)}\n"
            lines.append(line)
            size += len(line)
            if size >= CHUNK_BYTES:
                yield "".join(lines).encode()
                lines.clear()
                size = 0
        if lines:
            yield "".join(lines).encode()
