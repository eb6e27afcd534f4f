"""Errors from Meta's Graph API, and what the dispatcher should do about each one.

Meta answers a refused send with ``{"error": {"message", "type", "code", "error_subcode",
"error_data": {"details"}, "fbtrace_id"}}``. :func:`classify` turns the code into an
:class:`Outcome` following the send error table in META.md, and :func:`slowdown` says which rate a
retry should slow down; the dispatcher acts on those and never needs to know the codes.
"""

from __future__ import annotations

from enum import Flag, StrEnum, auto
from typing import Any

import requests

# Throughput, pair-rate, app or account limits, and temporary failures: worth another try.
RETRY_CODES = frozenset({130429, 131056, 4, 80007, 131000, 131016, 2})
# A business-scoped user id cannot receive this message: some authentication templates need the
# person's phone number. The same request to the same id would be refused again.
USER_ID_NOT_ALLOWED_CODE = 131062
# Meta will refuse the same request again: retrying only burns rate limit.
FAIL_CODES = frozenset(
    {131047, 131026, 131048, 130403, 100, 132000, 132001, USER_ID_NOT_ALLOWED_CODE}
)
# Our own words for refusals whose cause Meta's title leaves unclear to the business.
_REASONS = {
    USER_ID_NOT_ALLOWED_CODE: (
        "131062: this message cannot be sent to a business-scoped user id; the person's phone "
        "number is needed (some authentication templates require it). Not retried."
    ),
}
MARKETING_LIMIT_CODE = 131049
MARKETING_OPT_OUT_CODE = 131050
TOKEN_EXPIRED_CODE = 190
# Too many messages to one person: Meta paces each recipient (about one message per 6 s).
PAIR_RATE_CODE = 131056
# The business number's, the account's or the app's throughput limit.
THROUGHPUT_CODES = frozenset({130429, 80007, 4})

_BODY_SNIPPET = 200  # enough of a non-JSON answer (an HTML error page) to diagnose it


class Outcome(StrEnum):
    RETRY = "retry"  # back off with jitter and send again; slowdown() says what else to slow
    FAIL = "fail"  # give up on this message
    FAIL_HOLD_24H = "fail_hold_24h"  # 131049: give up; no marketing to this user for 24 hours
    OPTED_OUT = "opted_out"  # 131050: never retry; record a marketing opt-out (source "meta")
    PAUSE = "pause"  # 190: the token expired; stop dispatching until a new token is set


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _as_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


class GraphError(Exception):
    """Meta refused a request, or answered in a way we cannot use."""

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        subcode: int | None = None,
        title: str | None = None,
        details: str | None = None,
        http_status: int | None = None,
        fbtrace_id: str | None = None,
        error_type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.subcode = subcode
        self.title = title
        self.details = details
        self.http_status = http_status
        self.fbtrace_id = fbtrace_id
        self.error_type = error_type  # Meta's "type", e.g. "OAuthException"

    def __str__(self) -> str:
        parts = ["Graph API error"]
        if self.code is not None:
            parts.append(f"{self.code}" if self.subcode is None else f"{self.code}/{self.subcode}")
        if self.http_status is not None:
            parts.append(f"(HTTP {self.http_status})")
        text = " ".join(parts) + f": {self.message}"
        if self.details and self.details != self.message:
            text += f" — {self.details}"
        if self.fbtrace_id:
            text += f" [fbtrace_id={self.fbtrace_id}]"  # what Meta support asks for
        return text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, subcode={self.subcode!r}, "
            f"http_status={self.http_status!r}, message={self.message!r})"
        )

    @classmethod
    def from_response(cls, response: requests.Response) -> GraphError:
        """Read Meta's error object from an answer; survives HTML pages and empty bodies."""
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            snippet = (response.text or "").strip()[:_BODY_SNIPPET]
            reason = response.reason or "no reason given"
            message = f"HTTP {status} {reason}" + (f": {snippet}" if snippet else "")
            return cls(message, http_status=status)

        error_data = error.get("error_data")
        details = _as_str(error_data.get("details")) if isinstance(error_data, dict) else None
        return cls(
            _as_str(error.get("message")) or f"HTTP {status} without an error message",
            code=_as_int(error.get("code")),
            subcode=_as_int(error.get("error_subcode")),
            # The human title: "error_user_title" on Graph errors, "title" on Cloud API ones.
            title=_as_str(error.get("error_user_title")) or _as_str(error.get("title")),
            details=details or _as_str(error.get("error_user_msg")),
            http_status=status,
            fbtrace_id=_as_str(error.get("fbtrace_id")),
            error_type=_as_str(error.get("type")),
        )


class GraphTransportError(GraphError):
    """No usable answer arrived: a timeout, a refused or dropped connection. Always retried."""

    @classmethod
    def from_exception(cls, exc: BaseException) -> GraphTransportError:
        return cls(f"{type(exc).__name__}: {exc}")


def classify(error: GraphError) -> Outcome:
    """What to do after a failed send, per META.md's send error table.

    Meta's error code decides when we know it. Otherwise the HTTP status does: 5xx and 429 are
    temporary, any other status (or none) is treated as final so a bad request is not repeated.
    """
    if isinstance(error, GraphTransportError):
        return Outcome.RETRY
    code = error.code
    if code == TOKEN_EXPIRED_CODE:
        return Outcome.PAUSE
    if code == MARKETING_OPT_OUT_CODE:
        return Outcome.OPTED_OUT
    if code == MARKETING_LIMIT_CODE:
        return Outcome.FAIL_HOLD_24H
    if code in RETRY_CODES:
        return Outcome.RETRY
    if code in FAIL_CODES:
        return Outcome.FAIL
    status = error.http_status
    if status is not None and (status >= 500 or status == 429):
        return Outcome.RETRY
    return Outcome.FAIL


def failure_reason(error: GraphError) -> str:
    """Why a send failed for good, in words the business can act on."""
    if error.code in _REASONS:
        return _REASONS[error.code]
    return error.title or error.message or "send failed"


class Slowdown(Flag):
    """Which rate a retried error asks to slow, beside backing off the message itself."""

    NONE = 0
    RECIPIENT = auto()  # 131056: send nothing more to this person for a while
    EVERYONE = auto()  # a throughput limit: slow the rate every dispatcher shares


def slowdown(error: GraphError) -> Slowdown:
    """What Meta's answer says about the pace of sending, apart from this one message."""
    found = Slowdown.NONE
    if error.code == PAIR_RATE_CODE:
        found |= Slowdown.RECIPIENT
    if error.code in THROUGHPUT_CODES or error.http_status == 429:
        found |= Slowdown.EVERYONE
    return found
