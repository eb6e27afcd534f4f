"""The HTTP client for Meta's Cloud API ``/messages`` endpoint, and the interface it shares with the
console transport.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies

from bot.graph.errors import GraphError, GraphTransportError
from bot.graph.payloads import read_receipt_payload, recipient_of
from bot.wiring.logmask import mask_recipient

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://graph.facebook.com/v23.0"
# Connect slightly above a multiple of 3 s (TCP's retransmit window); read long enough for Meta's
# slow moments but short enough that a stuck request does not hold an outbox row for long.
DEFAULT_TIMEOUT: tuple[float, float] = (3.05, 10.0)

# Failures where the request may not have reached Meta, or the answer did not reach us.
_TRANSPORT_FAILURES = (
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
)


def pooled_session(base_url: str, pool_size: int) -> requests.Session:
    """A session for the one Graph API host, with the environment's settings read once.

    By default requests reads the proxy variables and the CA bundle variables again on every
    call. The host never changes, so they are resolved here: HTTPS_PROXY/NO_PROXY and
    REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE still apply, as they stand when the process starts. The
    app's dispatcher posts through the leaner :class:`bot.graph.http.PooledHTTP`; this session
    is for whoever wants requests itself (the dispatcher bench's HTTP ceiling).
    """
    session = requests.Session()
    session.proxies = get_environ_proxies(base_url)
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    session.verify = bundle or True
    session.trust_env = False
    # One pooled connection per sending thread, so none is opened and dropped per message.
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


@runtime_checkable
class Transport(Protocol):
    """Something that delivers outbound WhatsApp messages: Meta's API, or the console."""

    def send(self, phone_number_id: str, payload: dict[str, Any]) -> str:
        """Send one message body built by :mod:`bot.graph.payloads`; return its wamid."""
        ...

    def mark_read(self, phone_number_id: str, message_id: str) -> None:
        """Mark an inbound message as read."""
        ...


class Poster(Protocol):
    """What GraphClient posts through: a ``requests.Session``, or the dispatcher's leaner
    :class:`bot.graph.http.PooledHTTP` (same answers, same exceptions)."""

    def post(self, url: str, *, json: Any, headers: dict[str, str], timeout: Any) -> Any: ...


class GraphClient:
    """Posts messages to ``{base_url}/{phone_number_id}/messages`` with a bearer token.

    The session is passed in and owned by the caller, so connections are pooled across sends
    and tests can hand in a session of their own.
    """

    def __init__(
        self,
        session: Poster,
        *,
        access_token: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    ) -> None:
        if not access_token or not access_token.strip():
            raise ValueError("GraphClient needs an access token; use ConsoleTransport without one")
        if not base_url or not base_url.strip():
            raise ValueError("GraphClient needs a base URL such as " + DEFAULT_BASE_URL)
        self._session = session
        self._token = access_token.strip()
        self.base_url = base_url.strip().rstrip("/")
        self.timeout = timeout

    def __repr__(self) -> str:
        # Deliberately without the token: reprs end up in logs and tracebacks.
        return f"GraphClient(base_url={self.base_url!r}, timeout={self.timeout!r})"

    def messages_url(self, phone_number_id: str) -> str:
        if not phone_number_id or not str(phone_number_id).strip():
            raise ValueError("phone_number_id must not be empty")
        # Quoted so that an id from configuration can never walk to another path.
        return f"{self.base_url}/{quote(str(phone_number_id).strip(), safe='')}/messages"

    def send(self, phone_number_id: str, payload: dict[str, Any]) -> str:
        """Send a message and return the wamid Meta assigned to it.

        Raises :class:`GraphError` when Meta refuses it, :class:`GraphTransportError` when no
        answer arrived; pass either to :func:`bot.graph.errors.classify`.
        """
        body = self._post(phone_number_id, payload)
        messages = body.get("messages")
        wamid = None
        if isinstance(messages, list) and messages and isinstance(messages[0], dict):
            wamid = messages[0].get("id")
        if not isinstance(wamid, str) or not wamid:
            # Meta accepted the request yet named no message: classified FAIL, since a retry
            # could deliver the message twice.
            # Only the keys are quoted: the answer's "contacts" repeat the phone number.
            raise GraphError(f"Meta's answer carries no message id (keys: {sorted(body)})")
        if log.isEnabledFor(logging.DEBUG):  # the masking is not free, once per message
            log.debug(
                "sent %s to %s from %s: %s",
                payload.get("type"),
                mask_recipient(recipient_of(payload)),
                phone_number_id,
                wamid,
            )
        return wamid

    def mark_read(self, phone_number_id: str, message_id: str) -> None:
        """Mark an inbound message as read; Meta answers ``{"success": true}``."""
        body = self._post(phone_number_id, read_receipt_payload(message_id))
        if body.get("success") is not True:
            raise GraphError(f"Meta did not confirm the read receipt (keys: {sorted(body)})")

    def _post(self, phone_number_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        url = self.messages_url(phone_number_id)
        try:
            response = self._session.post(
                url,
                json=payload,
                headers={"Authorization": f"Bearer {self._token}"},
                timeout=self.timeout,
            )
        except _TRANSPORT_FAILURES as exc:
            log.warning("Graph API unreachable at %s: %s", url, type(exc).__name__)
            raise GraphTransportError.from_exception(exc) from exc
        except requests.RequestException as exc:
            # A malformed URL or header: a configuration fault that no retry will cure.
            raise GraphError(f"request to the Graph API failed: {type(exc).__name__}") from exc

        if not response.ok:
            error = GraphError.from_response(response)
            log.warning("Graph API refused a request to %s: %s", url, error)
            raise error
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise GraphError(
                f"Meta answered HTTP {response.status_code} without a JSON object",
                http_status=response.status_code,
            )
        return body
