"""A batch of a consent import on PostgreSQL: its decisions COPYed into a staging table, then a
few set-based statements with the effects bot.intake.record_collected has row by row (SQLite,
and batches naming a user id, still go that way):

- rows whose number is suppressed (by any identifier of its contact) are refused (C18);
- contacts are created, or found and locked in id order, as storage.contact_batch does;
- a category already in the ledger from this source with the same time and text, or earlier in
  the batch, is not recorded again; a row with nothing left is a duplicate;
- every other category becomes a ledger row, in file order, with the same evidence;
- the current state moves only for a decision at least as new as it and as every earlier one
  (an older grant never overrides a newer withdrawal), confirmed unless the double opt-in holds
  it;
- a consent webhook row is queued for each change that moved the state and is not held (C29),
  in the same transaction and order.

Which rows await a double opt-in confirmation is returned; the caller queues the templates.
What can be decided within the batch alone (a repeat, the newest earlier time of a category) is
decided while it is staged, so the statements need no sorting.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session

from storage import consent_webhooks
from storage.suppression import suppression_digester
from storage.types import utcnow

# JIT compiling costs more than these statements take; sorts of a batch stay in memory. The
# staging tables have no statistics: the planner would join them by sorting, where hashing
# takes half the time.
# `before`: the newest time of an earlier decision of the batch on the same category.
_STAGE = """
SET LOCAL jit = off;
SET LOCAL work_mem = '64MB';
SET LOCAL enable_mergejoin = off;
CREATE TEMP TABLE import_staged (
    line integer NOT NULL, ord integer NOT NULL, wa_id text NOT NULL, category text NOT NULL,
    collected_at text NOT NULL, text_id integer NOT NULL, before text
) ON COMMIT DROP;
CREATE TEMP TABLE import_text (id integer NOT NULL, text text NOT NULL, version text NOT NULL)
    ON COMMIT DROP;
CREATE TEMP TABLE import_contact (id bigint, wa_id text, user_id text, new boolean)
    ON COMMIT DROP;
"""
# New contacts first, in number order as lock_contacts inserts them (the numbers come sorted);
# then the others, locked in id order.
_NEW_CONTACTS = """
WITH new AS (
    INSERT INTO contact (wa_id, created_at)
    SELECT n, %(now)s::timestamptz FROM unnest(%(numbers)s::text[]) AS n
    WHERE NOT EXISTS (SELECT FROM import_contact i WHERE i.wa_id = n)
    ON CONFLICT DO NOTHING RETURNING id, wa_id
)
INSERT INTO import_contact SELECT id, wa_id, NULL, true FROM new
"""
_KNOWN_CONTACTS = """
INSERT INTO import_contact
SELECT c.id, c.wa_id, c.user_id, false FROM contact c
WHERE c.wa_id = ANY(%(numbers)s::text[])
    AND NOT EXISTS (SELECT FROM import_contact i WHERE i.id = c.id)
ORDER BY c.id FOR UPDATE OF c
"""
# For contacts that existed before: their current state, and what the ledger holds already
# from this source (storage.consents.recorded_decisions), looked up contact by contact by index
# (OFFSET 0 keeps the lookup a nested loop, not a scan of the whole table per batch).
_STATES = """
CREATE TEMP TABLE import_state ON COMMIT DROP AS
SELECT s.* FROM import_contact c CROSS JOIN LATERAL (
    SELECT s.contact_id, s.category, s.updated_at, s.granted, s.confirmed
    FROM consent s WHERE s.contact_id = c.id OFFSET 0
) s
WHERE NOT c.new
"""
_SEEN = """
CREATE TEMP TABLE import_seen ON COMMIT DROP AS
SELECT e.* FROM import_contact c CROSS JOIN LATERAL (
    SELECT e.contact_id, e.category, e.occurred_at, e.text_version
    FROM consent_event e
    WHERE e.contact_id = c.id AND e.source = %(source)s AND e.granted OFFSET 0
) e
WHERE NOT c.new
"""
# Each decision new to the ledger, with what deciding its effect needs. `held`: marketing
# consent the double opt-in holds (not granted and confirmed before). `applied`: at least as
# new as the current state and every earlier decision of the batch.
_DECISIONS = """
CREATE TEMP TABLE import_decision ON COMMIT DROP AS
SELECT d.line, d.ord, c.id AS contact_id, c.new, d.category,
    d.collected_at::timestamptz AS collected_at, d.collected_at AS occurred, d.text_id,
    t.version, {state}
FROM import_staged d
JOIN import_contact c ON c.wa_id = d.wa_id
JOIN import_text t ON t.id = d.text_id
{known}
"""
_NO_STATE = """false AS granted, d.category = ANY(%(held)s::text[]) AS held,
    d.before IS NULL OR d.collected_at::timestamptz >= d.before::timestamptz AS applied"""
_STATE = """coalesce(s.granted, false) AS granted,
    d.category = ANY(%(held)s::text[]) AND NOT coalesce(s.granted AND s.confirmed, false) AS held,
    coalesce(
        d.collected_at::timestamptz >= greatest(s.updated_at, d.before::timestamptz), true
    ) AS applied"""
_KNOWN_JOIN = """
LEFT JOIN import_state s ON s.contact_id = c.id AND s.category = d.category
WHERE NOT EXISTS (
    SELECT FROM import_seen e
    WHERE e.contact_id = c.id AND e.category = d.category
        AND e.occurred_at = d.collected_at::timestamptz AND e.text_version = t.version
)"""
_LEDGER = """
INSERT INTO consent_event
    (contact_id, category, granted, source, occurred_at, recorded_at, text_version, text, evidence)
SELECT x.contact_id, x.category, true, %(source)s, x.collected_at, %(now)s::timestamptz,
    x.version, t.text, jsonb_build_object('import_file', %(file)s::text, 'line', x.line)
FROM import_decision x JOIN import_text t ON t.id = x.text_id
ORDER BY x.line, x.ord
"""
# The newest applied decision of each (contact, category) is its state now: a new row for a
# new contact, else one that may exist.
_CURRENT = """
INSERT INTO consent (contact_id, category, granted, source, updated_at, granted_at, confirmed)
SELECT DISTINCT ON (contact_id, category)
    contact_id, category, true, %(source)s, collected_at, collected_at, NOT held
FROM import_decision WHERE applied AND new = %(new)s
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
    FROM import_decision x JOIN import_contact c ON c.id = x.contact_id
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
    FROM import_decision x JOIN import_contact c ON c.id = x.contact_id
) y
WHERE held AND granted
GROUP BY line, contact_id, wa_id
ORDER BY line
"""


@dataclass(slots=True)
class Staged:
    """One batch as the COPY into the staging tables carries it, built while the file is read:
    a line per decision about one category, less the repeats of an earlier one; sealed once
    complete."""

    numbers: dict[str, list[int]] = field(default_factory=dict)  # the lines naming each number
    lines: list[str] = field(default_factory=list)
    texts: dict[str, tuple[int, str]] = field(default_factory=dict)  # text → (id, version)
    _decided: set[tuple[str, str, datetime, str]] = field(default_factory=set)
    _latest: dict[tuple[str, str], datetime] = field(default_factory=dict)
    _escaped: dict[str, str] = field(default_factory=dict)  # category ids, as COPY carries them

    def add(
        self,
        line: int,
        wa_id: str,
        categories: tuple[str, ...],
        collected_at: datetime,
        text: str,
        version: str,
    ) -> None:
        lines = self.numbers.get(wa_id)
        if lines is None:
            self.numbers[wa_id] = [line]
        else:
            lines.append(line)
        known = self.texts.get(text)
        if known is None:
            known = self.texts[text] = (len(self.texts), version)
        # isoformat(): what PostgreSQL reads back as the same moment, and webhook bodies quote.
        when = collected_at.isoformat()
        for ord, category in enumerate(categories, 1):
            decision = (wa_id, category, collected_at, version)
            if decision in self._decided:
                continue  # the same as an earlier row's: recorded once
            self._decided.add(decision)
            latest = self._latest.get(decision[:2])
            if latest is None or collected_at > latest:
                self._latest[decision[:2]] = collected_at
            before = _NULL if latest is None else latest.isoformat()
            escaped = self._escaped.get(category)
            if escaped is None:
                escaped = self._escaped[category] = _escape(category)
            self.lines.append(f"{line}\t{ord}\t{wa_id}\t{escaped}\t{when}\t{known[0]}\t{before}\n")

    def seal(self) -> None:
        """Nothing more will be added: keep only what the COPY sends, as one string."""
        self.lines = ["".join(self.lines)]
        self._decided, self._latest = set(), {}


@dataclass(slots=True)
class Applied:
    refused: list[int]  # lines naming a number erased, and suppressed since
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
    """Record the staged batch in the session's transaction."""
    raw: Any = session.connection().connection.dbapi_connection
    values = {"now": utcnow(), "source": source, "file": file_name, "held": list(held)}
    rows = sum(len(lines) for lines in staged.numbers.values())
    with raw.cursor() as cursor:
        _stage(cursor, staged)
        suppressed = _suppressed(cursor, suppression_key, staged.numbers)
        if suppressed:
            cursor.execute("DELETE FROM import_staged WHERE wa_id = ANY(%s)", (list(suppressed),))
        numbers = sorted(number for number in staged.numbers if number not in suppressed)
        known = _find_contacts(cursor, values | {"numbers": numbers}, len(numbers))
        if known:
            cursor.execute(_STATES)
            cursor.execute(_SEEN, values)
            cursor.execute("ANALYZE import_state, import_seen")
        cursor.execute(_decisions(known), values)
        recorded = cursor.execute("SELECT count(DISTINCT line) FROM import_decision").fetchone()
        cursor.execute(_LEDGER, values)
        cursor.execute(_CURRENT, values | {"new": True})
        if known:
            cursor.execute(_CURRENT + _UPSERT, values | {"new": False})
        if consent_webhooks.enabled(session):
            cursor.execute(_WEBHOOKS, values | {"type": consent_webhooks.GRANTED})
        pending = list(cursor.execute(_PENDING, values)) if held else []
    refused = sorted(line for number in suppressed for line in staged.numbers[number])
    return Applied(refused, recorded[0], rows - len(refused) - recorded[0], pending)


def _stage(cursor: Any, staged: Staged) -> None:
    cursor.execute(_STAGE)
    ids, versions = zip(*staged.texts.values(), strict=True) if staged.texts else ((), ())
    cursor.execute(
        "INSERT INTO import_text SELECT * FROM unnest(%s::integer[], %s::text[], %s::text[])",
        (list(ids), list(staged.texts), list(versions)),
    )
    with cursor.copy("COPY import_staged FROM STDIN") as copy:
        copy.write("".join(staged.lines))


def _suppressed(cursor: Any, key: bytes, numbers: Collection[str]) -> set[str]:
    """The numbers suppressed by themselves or by a user id of their contact (an import names
    numbers only)."""
    if not numbers or not cursor.execute("SELECT EXISTS (SELECT FROM suppression)").fetchone()[0]:
        return set()
    digest = suppression_digester(key)
    people: dict[str, list[str]] = {}
    for number in numbers:
        people.setdefault(digest(number), []).append(number)
    others = cursor.execute(
        "SELECT wa_id, user_id, parent_user_id FROM contact WHERE wa_id = ANY(%s)"
        " AND (user_id IS NOT NULL OR parent_user_id IS NOT NULL)",
        (list(numbers),),
    )
    for number, *identifiers in others:
        for identifier in identifiers:
            if identifier:
                people.setdefault(digest(identifier), []).append(number)
    found = cursor.execute("SELECT digest FROM suppression WHERE digest = ANY(%s)", (list(people),))
    return {number for (d,) in found for number in people[d]}


def _find_contacts(cursor: Any, values: dict[str, Any], wanted: int) -> bool:
    """import_contact: the contact of every staged number, created or found and locked; whether
    any existed before."""
    found = known = 0
    for _ in range(2):  # again for a number a concurrent erasure removed meanwhile
        found += cursor.execute(_NEW_CONTACTS, values).rowcount
        if found < wanted:
            locked = cursor.execute(_KNOWN_CONTACTS, values).rowcount
            known, found = known + locked, found + locked
        if found >= wanted:
            break
    return known > 0


def _decisions(known: bool) -> str:
    """The statement deciding each staged decision's effect; when every contact is new there is
    no state or ledger to look at."""
    if known:
        return _DECISIONS.format(state=_STATE, known=_KNOWN_JOIN)
    return _DECISIONS.format(state=_NO_STATE, known="")


_NULL = "\\N"
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _escape(value: str) -> str:
    """A value in COPY's text format."""
    return value.translate(_COPY_ESCAPES)
