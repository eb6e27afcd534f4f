"""Rows sent to PostgreSQL as one JSON document, read back into rows of a table.

However many rows, the statement is short and constant, so the server plans it once per
connection and the driver has one parameter to send, not one per value: a statement of a
thousand rows with a parameter each cost more in the driver's splitting of its text than in
the database. The document is written by orjson, ten times quicker than the standard library
on a body's rows, which takes over only for an integer past 64 bits.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from storage.types import aware, aware_text

# Times through _time_fragment, so a naive one is refused; an aware one is then written by
# orjson itself, as isoformat() writes it but a sixth of the time.
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME


def document(rows: list[dict[str, Any]]) -> str:
    """The rows as one JSON array (times as ISO text, which PostgreSQL reads back)."""
    return dumps(rows)


def dumps(value: Any) -> str:
    """JSON text of a value of JSON's types and times."""
    try:
        return orjson.dumps(value, default=_time_fragment, option=_OPTIONS).decode()
    except TypeError:
        # An integer past 64 bits (Meta's items are read as Python reads them, any number of
        # digits), or a value not to be stored: the standard library writes the one and says
        # what is wrong with the other.
        return json.dumps(value, default=_json_value)


def rows_of(table: str, parameter: str) -> str:
    """The document in parameter `parameter` read as rows of `table` (absent keys NULL)."""
    return f'json_populate_recordset(NULL::"{table}", %({parameter})s::json)'


def row_of(table: str, parameter: str) -> str:
    """A JSON object in parameter `parameter` read as one row of `table`. Joined to the table,
    the row is looked up by key: the recordset's estimate of a hundred rows, whatever the
    document holds, makes the planner hash them and scan the whole table instead, up to
    tens of thousands of rows."""
    return f'json_populate_record(NULL::"{table}", %({parameter})s::json)'


def insert_rows(
    table: str, columns: Sequence[str], parameter: str, *, after: str | None = None
) -> str:
    """An INSERT of the document's rows into these columns of `table`, in the document's order.

    after: a query of the same statement (a WITH's name) that must have run to its end before
    the first row goes in; the rows are made to depend on its count.
    """
    names = ", ".join(f'"{column}"' for column in columns)
    condition = f" WHERE (SELECT count(*) FROM {after}) >= 0" if after else ""
    return (
        f'INSERT INTO "{table}" ({names}) SELECT {names}'
        f" FROM {rows_of(table, parameter)} WITH ORDINALITY AS v{condition} ORDER BY v.ordinality"
    )


def _time_fragment(value: object) -> orjson.Fragment:
    if isinstance(value, datetime):
        return orjson.Fragment(orjson.dumps(aware(value)))
    raise TypeError(f"{type(value).__name__} cannot be stored as JSON")


def _json_value(value: object) -> str:
    if isinstance(value, datetime):
        return aware_text(value)
    raise TypeError(f"{type(value).__name__} cannot be stored as JSON")
