"""Rows sent to PostgreSQL as one JSON document, read back into rows of a table.

However many rows, the statement is short and constant, so the server plans it once per
connection and the driver has one parameter to send, not one per value: a statement of a
thousand rows with a parameter each cost more in the driver's splitting of its text than in
the database.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any


def document(rows: list[dict[str, Any]]) -> str:
    """The rows as one JSON array (times as ISO text, which PostgreSQL reads back)."""
    return json.dumps(rows, default=_json_value)


def rows_of(table: str, parameter: str) -> str:
    """The document in parameter `parameter` read as rows of `table` (absent keys NULL)."""
    return f'json_populate_recordset(NULL::"{table}", %({parameter})s::json)'


def insert_rows(table: str, columns: Sequence[str], parameter: str) -> str:
    """An INSERT of the document's rows into these columns of `table`, in the document's order."""
    names = ", ".join(f'"{column}"' for column in columns)
    return (
        f'INSERT INTO "{table}" ({names}) SELECT {names}'
        f" FROM {rows_of(table, parameter)} WITH ORDINALITY AS v ORDER BY v.ordinality"
    )


def _json_value(value: object) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime given; every stored time must carry a zone")
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} cannot be stored as JSON")
