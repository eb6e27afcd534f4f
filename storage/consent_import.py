"""A batch of a consent import on PostgreSQL: COPY into staging tables, then a few set-based
statements with the effects bot.intake.record_collected has row by row (SQLite, and batches
naming a user id, still go that way):

- rows whose number is suppressed (by any identifier of its contact) are refused (C18);
- contacts are created, or found and locked in id order, as storage.contact_batch does;
- a category already in the ledger from this source with the same time and text, or earlier in
  the batch, is not recorded again; a row with nothing left is a duplicate;
- every other category becomes a ledger row, in file order, with the same evidence;
- the current state moves only for a decision at least as new as it (an older grant never
  overrides a newer withdrawal), confirmed unless the double opt-in holds it;
- a consent webhook row is queued for each change that moved the state and is not held (C29),
  in the same transaction and order.

Which rows await a double opt-in confirmation is returned; the caller queues the templates.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from storage import consent_webhooks
from storage.suppression import suppression_digester
from storage.types import utcnow

# JIT compiling costs more than these statements take; sorts of a batch stay in memory.
_STAGE = """
SET LOCAL jit = off;
SET LOCAL work_mem = '64MB';
CREATE TEMP TABLE import_row (
    line integer NOT NULL, wa_id text NOT NULL, categories text NOT NULL,
    collected_at text NOT NULL, text_id integer NOT NULL
) ON COMMIT DROP;
CREATE TEMP TABLE import_text (id integer NOT NULL, text text NOT NULL, version text NOT NULL)
    ON COMMIT DROP;
CREATE TEMP TABLE import_contact (id bigint, wa_id text, user_id text, new boolean)
    ON COMMIT DROP;
"""
# The current state of the contacts that existed before: looked up by key, not scanned.
_STATES = """
CREATE TEMP TABLE import_state ON COMMIT DROP AS
SELECT s.contact_id, s.category, s.updated_at, s.granted, s.confirmed
FROM consent s JOIN import_contact c ON c.id = s.contact_id WHERE NOT c.new
"""
# What the ledger holds already from this source about them (storage.consents.recorded_decisions).
_SEEN = """
CREATE TEMP TABLE import_seen ON COMMIT DROP AS
SELECT e.contact_id, e.category, e.occurred_at, e.text_version
FROM consent_event e JOIN import_contact c ON c.id = e.contact_id
WHERE NOT c.new AND e.source = %(source)s AND e.granted
"""

# New contacts first, in number order as lock_contacts inserts them; then the others, locked in
# id order.
_NEW_CONTACTS = """
WITH new AS (
    INSERT INTO contact (wa_id, created_at)
    SELECT DISTINCT wa_id, %(now)s::timestamptz FROM import_row
    WHERE wa_id NOT IN (SELECT wa_id FROM import_contact) ORDER BY wa_id
    ON CONFLICT DO NOTHING RETURNING id, wa_id
)
INSERT INTO import_contact SELECT id, wa_id, NULL, true FROM new
"""
_KNOWN_CONTACTS = """
INSERT INTO import_contact
SELECT c.id, c.wa_id, c.user_id, false FROM contact c
WHERE c.wa_id IN (SELECT wa_id FROM import_row)
    AND NOT EXISTS (SELECT FROM import_contact i WHERE i.id = c.id)
ORDER BY c.id FOR UPDATE OF c
"""
# Each category of each row that is new to the ledger, with what deciding its effect needs.
# `held`: marketing consent the double opt-in holds (not granted and confirmed before).
# `applied`: at least as new as the current state and every earlier change of the batch.
_CHANGES = """
CREATE TEMP TABLE import_change ON COMMIT DROP AS
SELECT x.*,
    coalesce(x.collected_at >= greatest(x.state_at, max(x.collected_at) OVER earlier), true)
        AS applied
FROM (
    SELECT r.line, k.ord, c.id AS contact_id, c.new, k.category,
        r.collected_at::timestamptz AS collected_at, r.collected_at AS occurred, r.text_id,
        t.version, s.updated_at AS state_at, coalesce(s.granted, false) AS granted,
        k.category = ANY(%(held)s::text[])
            AND NOT coalesce(s.granted AND s.confirmed, false) AS held,
        row_number() OVER (
            PARTITION BY c.id, k.category, r.collected_at::timestamptz, t.version
            ORDER BY r.line, k.ord
        ) AS nth
    FROM import_row r
    JOIN import_contact c ON c.wa_id = r.wa_id
    JOIN import_text t ON t.id = r.text_id
    CROSS JOIN LATERAL unnest(string_to_array(r.categories, ';'))
        WITH ORDINALITY AS k(category, ord)
    LEFT JOIN import_state s ON s.contact_id = c.id AND s.category = k.category
) x
WHERE x.nth = 1 AND NOT EXISTS (
    SELECT FROM import_seen e
    WHERE e.contact_id = x.contact_id AND e.category = x.category
        AND e.occurred_at = x.collected_at AND e.text_version = x.version
)
WINDOW earlier AS (
    PARTITION BY x.contact_id, x.category ORDER BY x.line, x.ord
    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
)
"""
_LEDGER = """
INSERT INTO consent_event
    (contact_id, category, granted, source, occurred_at, recorded_at, text_version, text, evidence)
SELECT x.contact_id, x.category, true, %(source)s, x.collected_at, %(now)s::timestamptz,
    x.version, t.text, jsonb_build_object('import_file', %(file)s::text, 'line', x.line)
FROM import_change x JOIN import_text t ON t.id = x.text_id
ORDER BY x.line, x.ord
"""
# The newest applied change of each (contact, category) is its state now: a new row for a new
# contact, else one that may exist.
_STATE = """
INSERT INTO consent (contact_id, category, granted, source, updated_at, granted_at, confirmed)
SELECT DISTINCT ON (contact_id, category)
    contact_id, category, true, %(source)s, collected_at, collected_at, NOT held
FROM import_change WHERE applied AND new = %(new)s
ORDER BY contact_id, category, line DESC, ord DESC
"""
_UPSERT = """
ON CONFLICT (contact_id, category) DO UPDATE SET
    granted = true, source = excluded.source, updated_at = excluded.updated_at,
    granted_at = excluded.granted_at, confirmed = excluded.confirmed
"""
# The body storage.consent_webhooks.queue writes, byte for byte (json.dumps, compact, UTF-8).
_WEBHOOKS = """
WITH w AS MATERIALIZED (
    SELECT replace(gen_random_uuid()::text, '-', '') AS id, x.line, x.ord, x.contact_id,
        x.category, x.occurred, c.wa_id, c.user_id
    FROM import_change x JOIN import_contact c ON c.id = x.contact_id
    WHERE x.applied AND NOT x.held
)
INSERT INTO consent_webhook (event_id, contact_id, type, body, created_at, due_at, attempts)
SELECT id, contact_id, %(type)s::text,
    '{"id":"' || id || '","type":' || to_json(%(type)s::text) || ',"occurred_at":'
    || to_json(occurred) || ',"contact":{"wa_id":' || to_json(wa_id) || ',"user_id":'
    || coalesce(to_json(user_id)::text, 'null') || '},"category":' || to_json(category)
    || ',"source":' || to_json(%(source)s::text) || '}',
    %(now)s::timestamptz, %(now)s::timestamptz, 0
FROM w ORDER BY line, ord
"""
# Rows whose held categories are granted now (just applied, or granted before): they await the
# person's tap, and a confirmation is queued for each, in file order.
_PENDING = """
SELECT line, contact_id, wa_id, array_agg(category ORDER BY ord)
FROM (
    SELECT x.line, x.ord, x.contact_id, c.wa_id, x.category, x.held,
        x.granted OR bool_or(x.applied) OVER (PARTITION BY x.contact_id, x.category) AS granted
    FROM import_change x JOIN import_contact c ON c.id = x.contact_id
) y
WHERE held AND granted
GROUP BY line, contact_id, wa_id
ORDER BY line
"""


@dataclass(slots=True)
class Staged:
    """One batch as the COPY into the staging tables carries it, built while the file is read."""

    rows: list[str] = field(default_factory=list)
    texts: dict[str, tuple[int, str]] = field(default_factory=dict)  # text → (id, version)
    _lists: dict[tuple[str, ...], str] = field(default_factory=dict)

    def add(
        self,
        line: int,
        wa_id: str,
        categories: tuple[str, ...],
        collected_at: str,
        text: str,
        version: str,
    ) -> None:
        """`collected_at`: datetime.isoformat(), as PostgreSQL reads it and as webhook bodies
        quote it."""
        known = self.texts.get(text)
        if known is None:
            known = self.texts[text] = (len(self.texts), version)
        listed = self._lists.get(categories)
        if listed is None:
            listed = self._lists[categories] = _escape(";".join(categories))
        self.rows.append(f"{line}\t{wa_id}\t{listed}\t{collected_at}\t{known[0]}\n")

    def __len__(self) -> int:
        return len(self.rows)


@dataclass(slots=True)
class Applied:
    refused: list[int]  # lines whose number is suppressed
    recorded: int  # rows with at least one new ledger row
    duplicates: int  # rows wholly in the ledger already
    pending: list[tuple[int, int, str, list[str]]]  # (line, contact id, wa_id, categories held)


def apply(
    session: Session,
    staged: Staged,
    *,
    source: str,
    file_name: str,
    suppression_key: bytes,
    held: Collection[str],
) -> Applied:
    """Record the staged rows in the session's transaction."""
    raw: Any = session.connection().connection.dbapi_connection
    now = utcnow()
    values = {"now": now, "source": source, "file": file_name, "held": list(held)}
    with raw.cursor() as cursor:
        _stage(cursor, staged)
        refused = _refuse_suppressed(cursor, suppression_key)
        _find_contacts(cursor, values)
        cursor.execute(_STATES)
        cursor.execute(_SEEN, values)
        cursor.execute(_CHANGES, values)
        recorded = cursor.execute("SELECT count(DISTINCT line) FROM import_change").fetchone()[0]
        cursor.execute(_LEDGER, values)
        cursor.execute(_STATE, values | {"new": True})
        cursor.execute(_STATE + _UPSERT, values | {"new": False})
        if consent_webhooks.enabled(session):
            cursor.execute(_WEBHOOKS, values | {"type": consent_webhooks.GRANTED})
        pending = list(cursor.execute(_PENDING)) if held else []
    return Applied(refused, recorded, len(staged) - len(refused) - recorded, pending)


def _stage(cursor: Any, staged: Staged) -> None:
    cursor.execute(_STAGE)
    with cursor.copy("COPY import_text FROM STDIN") as copy:
        for text, (text_id, version) in staged.texts.items():
            copy.write(f"{text_id}\t{_escape(text)}\t{version}\n")
    with cursor.copy("COPY import_row FROM STDIN") as copy:
        copy.write("".join(staged.rows))
    cursor.execute("ANALYZE import_row, import_text")


def _find_contacts(cursor: Any, values: dict[str, Any]) -> None:
    """import_contact: the contact of every staged number, created or found and locked."""
    wanted = cursor.execute("SELECT count(DISTINCT wa_id) FROM import_row").fetchone()[0]
    found = 0
    for _ in range(2):  # again for a number a concurrent erasure removed in between
        found += cursor.execute(_NEW_CONTACTS, values).rowcount
        if found < wanted:  # some existed already
            found += cursor.execute(_KNOWN_CONTACTS).rowcount
        if found >= wanted:
            break
    cursor.execute("ANALYZE import_contact")


def _refuse_suppressed(cursor: Any, key: bytes) -> list[int]:
    """Remove the rows of suppressed numbers from the stage; their lines. An import names
    numbers only, so a person is known by the number and their contact's user ids."""
    if not cursor.execute("SELECT EXISTS (SELECT FROM suppression)").fetchone()[0]:
        return []
    digest = suppression_digester(key)
    people: dict[str, list[str]] = {}
    for (number,) in cursor.execute("SELECT DISTINCT wa_id FROM import_row"):
        people.setdefault(digest(number), []).append(number)
    others = cursor.execute(
        "SELECT c.wa_id, c.user_id, c.parent_user_id FROM contact c"
        " WHERE c.wa_id IN (SELECT wa_id FROM import_row)"
        " AND (c.user_id IS NOT NULL OR c.parent_user_id IS NOT NULL)"
    )
    for number, *identifiers in others:
        for identifier in identifiers:
            if identifier:
                people.setdefault(digest(identifier), []).append(number)
    found = cursor.execute(
        "SELECT digest FROM suppression WHERE digest = ANY(%s)", (list(people),)
    ).fetchall()
    numbers = sorted({number for (d,) in found for number in people[d]})
    if not numbers:
        return []
    deleted = cursor.execute(
        "DELETE FROM import_row WHERE wa_id = ANY(%s) RETURNING line", (numbers,)
    )
    return sorted(line for (line,) in deleted)


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _escape(value: str) -> str:
    """A value in COPY's text format."""
    return value.translate(_COPY_ESCAPES)
