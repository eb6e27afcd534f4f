"""Outbound calls to Meta's WhatsApp Cloud API.

- :mod:`~bot.graph.payloads` builds Meta's exact message bodies and refuses any that break a limit.
- :mod:`~bot.graph.client` posts them (:class:`GraphClient`) behind the :class:`Transport` protocol.
- :mod:`~bot.graph.console` implements the same protocol by printing, when no token is configured.
- :mod:`~bot.graph.errors` parses Meta's errors; :func:`classify` says retry, fail or pause, and
  :func:`slowdown` which rate a retry should slow.
"""

from bot.graph.client import DEFAULT_BASE_URL, DEFAULT_TIMEOUT, GraphClient, Transport
from bot.graph.console import ConsoleTransport
from bot.graph.errors import (
    GraphError,
    GraphTransportError,
    Outcome,
    Slowdown,
    classify,
    slowdown,
)
from bot.graph.payloads import (
    MessageLimitError,
    buttons_payload,
    list_payload,
    read_receipt_payload,
    template_payload,
    text_payload,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "ConsoleTransport",
    "GraphClient",
    "GraphError",
    "GraphTransportError",
    "MessageLimitError",
    "Outcome",
    "Slowdown",
    "Transport",
    "buttons_payload",
    "classify",
    "list_payload",
    "read_receipt_payload",
    "slowdown",
    "template_payload",
    "text_payload",
]
