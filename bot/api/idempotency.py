"""Idempotency-Key: a POST retried with the same key and body answers as the first time, once.

The first successful answer is stored in the same transaction as the change it reports, so a
retry can never see the change without the answer (or the answer without the change). Keys are
scoped to the API token that used them and remembered for 24 hours. Refusals (4xx) are not
remembered: they changed nothing, so the client may fix the cause and retry with the same key.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Response, g, jsonify, request
from sqlmodel import Session

from bot.api.errors import ApiError
from bot.wiring.services import services
from storage import limits
from storage.db import session_scope
from storage.models import IdempotencyRecord
from storage.types import utcnow
from storage.upsert import insert_ignoring_conflict

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
RETENTION = timedelta(hours=24)
# Printable ASCII, as in the IETF draft's examples; stored after the token's fingerprint.
KEY_SHAPE = re.compile(rf"[\x21-\x7e]{{1,{limits.IDEMPOTENCY_CLIENT_KEY}}}")

View = TypeVar("View", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class _Claim:
    key: str
    digest: str


class _KeyTaken(Exception):
    """A concurrent request with the same key committed first; its answer is replayed."""


def idempotent(view: View) -> View:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        client_key = request.headers.get(HEADER)
        if client_key is None:
            return view(*args, **kwargs)
        if not KEY_SHAPE.fullmatch(client_key):
            raise ApiError(
                422,
                "invalid_idempotency_key",
                f"{HEADER}: 1 to {limits.IDEMPOTENCY_CLIENT_KEY} printable ASCII characters "
                "without spaces, e.g. a UUID",
            )
        claim = _Claim(key=f"{g.token_fingerprint}:{client_key}", digest=_request_digest())
        engine = services().engine
        with session_scope(engine) as session:
            record = _fresh_record(session, claim.key)
        if record is not None:
            return _replay(record, claim)
        g.idempotency_claim = claim
        try:
            return view(*args, **kwargs)
        except _KeyTaken:
            with Session(engine) as session:
                record = session.get(IdempotencyRecord, claim.key)
            if record is None:  # the winner's record expired in between: vanishingly rare
                raise ApiError(409, "idempotency_conflict", "retry the request") from None
            return _replay(record, claim)

    return cast(View, wrapper)


def remember(session: Session, status: int, body: dict[str, Any]) -> None:
    """Store this answer for the request's key, in the caller's transaction (no key: no-op)."""
    claim: _Claim | None = g.get("idempotency_claim")
    if claim is None:
        return
    inserted = insert_ignoring_conflict(
        session,
        IdempotencyRecord,
        {
            "key": claim.key,
            "request_digest": claim.digest,
            "status_code": status,
            "response": body,
            "created_at": utcnow(),
        },
    )
    if not inserted:
        raise _KeyTaken()


def _request_digest() -> str:
    """Same method, path and JSON body (whatever its key order or spacing) → same digest."""
    raw = request.get_data(cache=True)
    try:
        canonical = json.dumps(
            json.loads(raw), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    except ValueError:
        canonical = raw
    hasher = hashlib.sha256(f"{request.method} {request.path}\n".encode())
    hasher.update(canonical)
    return hasher.hexdigest()


def _fresh_record(session: Session, key: str) -> IdempotencyRecord | None:
    record = session.get(IdempotencyRecord, key)
    if record is not None and record.created_at < utcnow() - RETENTION:
        session.delete(record)
        return None
    return record


def _replay(record: IdempotencyRecord, claim: _Claim) -> tuple[Response, int]:
    if record.request_digest != claim.digest:
        raise ApiError(
            422,
            "idempotency_key_reused",
            f"{HEADER} was already used with a different request; use a new key for a new request",
        )
    response = jsonify(record.response)
    response.headers[REPLAYED_HEADER] = "true"
    return response, record.status_code
