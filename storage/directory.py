"""The support console's contact listing: newest activity first, searchable, paginated.

A search by part of a number scans the contact table (LIKE '%digits%' has no index to use);
the console's page size bounds what is fetched, not what is scanned.

One page is one query: the page of contacts is chosen in a subquery (with the total matching
count as a window), then joined to their current consents by primary key, so the consent
summary never costs a query per row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, or_
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from storage.models import Consent, Contact

PER_PAGE = 50
SEARCH_MAX = 128  # longer than any wa_id, user_id or name worth typing
# From this many digits a number is found by any part of it ("the last four digits"); fewer
# would match most of the list, so they match from the start of the number only.
ANY_PART_DIGITS = 4
_PHONE_SPELLING = re.compile(r"\+?[0-9][0-9 ()\-.]*")


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsentSummary:
    granted: bool
    confirmed: bool
    source: str
    updated_at: datetime
    granted_at: datetime | None  # set once ever granted: tells a withdrawal from a decline


@dataclass(frozen=True, slots=True, kw_only=True)
class DirectoryRow:
    contact_id: int
    wa_id: str | None
    user_id: str | None
    name: str | None
    language: str | None
    last_inbound_at: datetime | None
    created_at: datetime
    consents: dict[str, ConsentSummary] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """How the console addresses the contact: wa_id, else user_id."""
        return self.wa_id or self.user_id or ""


@dataclass(frozen=True, slots=True, kw_only=True)
class DirectoryPage:
    rows: list[DirectoryRow]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def search_condition(search: str) -> ColumnElement[bool]:
    """Any part of the number (at least four digits, else its start), or of the user id, the
    name or the username (any case).

    A number typed as people write them ("+1 555-000") is matched by its digits, as wa_ids
    are stored.
    """
    conditions = [
        col(Contact.user_id).icontains(search, autoescape=True),
        col(Contact.name).icontains(search, autoescape=True),
        col(Contact.username).icontains(search, autoescape=True),
    ]
    digits = "".join(ch for ch in search if ch.isdigit())
    if digits and _PHONE_SPELLING.fullmatch(search):
        if len(digits) >= ANY_PART_DIGITS:
            conditions.append(col(Contact.wa_id).contains(digits, autoescape=True))
        else:
            conditions.append(col(Contact.wa_id).startswith(digits, autoescape=True))
    else:
        conditions.append(col(Contact.wa_id).startswith(search, autoescape=True))
    return or_(*conditions)


def list_contacts(
    session: Session, *, search: str | None = None, page: int = 1, per_page: int = PER_PAGE
) -> DirectoryPage:
    """One page of contacts, most recent inbound message first (new contacts without one last,
    newest created first), each with its current consent per category."""
    page = max(1, page)
    search = (search or "").strip()[:SEARCH_MAX]
    activity = (
        col(Contact.last_inbound_at).desc().nulls_last(),
        col(Contact.created_at).desc(),
        col(Contact.id).desc(),
    )
    chosen = select(
        Contact.id,
        Contact.wa_id,
        Contact.user_id,
        Contact.name,
        Contact.language,
        Contact.last_inbound_at,
        Contact.created_at,
        func.count().over().label("total"),
    )
    if search:
        chosen = chosen.where(search_condition(search))
    chosen_page = (
        chosen.order_by(*activity).limit(per_page).offset((page - 1) * per_page).subquery()
    )

    statement = (
        select(
            chosen_page,
            Consent.category,
            Consent.granted,
            Consent.confirmed,
            Consent.source,
            Consent.updated_at,
            Consent.granted_at,
        )
        .outerjoin(Consent, col(Consent.contact_id) == chosen_page.c.id)
        .order_by(
            chosen_page.c.last_inbound_at.desc().nulls_last(),
            chosen_page.c.created_at.desc(),
            chosen_page.c.id.desc(),
        )
    )
    rows: dict[int, DirectoryRow] = {}
    total = 0
    for record in session.exec(statement):
        total = record.total
        row = rows.get(record.id)
        if row is None:
            row = rows[record.id] = DirectoryRow(
                contact_id=record.id,
                wa_id=record.wa_id,
                user_id=record.user_id,
                name=record.name,
                language=record.language,
                last_inbound_at=record.last_inbound_at,
                created_at=record.created_at,
            )
        if record.category is not None:
            row.consents[record.category] = ConsentSummary(
                granted=record.granted,
                confirmed=record.confirmed,
                source=record.source,
                updated_at=record.updated_at,
                granted_at=record.granted_at,
            )
    if not rows and page > 1:
        # Past the last page the window has no row to report the total on.
        total = _count(session, search=search)
    return DirectoryPage(rows=list(rows.values()), total=total, page=page, per_page=per_page)


def _count(session: Session, *, search: str) -> int:
    statement = select(func.count()).select_from(Contact)
    if search:
        statement = statement.where(search_condition(search))
    return session.exec(statement).one()
