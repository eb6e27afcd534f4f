"""One item of a batch stored apart, so that the database refusing it loses nothing else (C26):
the item is kept for support and the rest of the batch goes on."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bot.meta.storable import support_copy
from storage.db import storage_unavailable
from storage.inbox import keep_failed_payload

log = logging.getLogger(__name__)

KEPT = object()  # what keep_apart gives for an item it kept for support instead


def item_bytes(raw: object) -> bytes:
    return support_copy(raw)


def keep_apart(session: Session, act: Callable[[], object], *, raw: object, what: str) -> object:
    """Store one item of a batch in a SAVEPOINT of its own; what ``act`` returns, or KEPT."""

    def attempt() -> object:
        with session.begin_nested():
            return act()

    def keep(problem: str) -> None:
        keep_failed_payload(session, body=item_bytes(raw), problem=problem)

    return isolated(attempt, keep, what)


def isolated(act: Callable[[], object], keep: Callable[[str], None], what: str) -> object:
    """What ``act`` returns; KEPT when the database refused the item, which is then kept.

    The parser lets through only what the columns can hold, so a refusal here is a gap in those
    checks: the item goes to support, logged with its traceback, and the rest of the batch goes
    on. A unique key broken by a concurrent writer is tried once more, as the retry then sees
    that writer's row. Storage failing is no item's fault: it is raised (503, redelivery).
    """
    retried = False
    while True:
        try:
            return act()
        except Exception as exc:
            if storage_unavailable(exc):
                raise
            if isinstance(exc, IntegrityError) and not retried:
                retried = True
                continue
            log.error("%s could not be stored; kept for support", what, exc_info=True)
            keep(f"{what}: could not be stored ({exc.__class__.__name__})")
            return KEPT
