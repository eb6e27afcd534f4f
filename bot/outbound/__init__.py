"""The outbound pipeline, outbox to Graph API: the dispatch loop, the send-time consent
check, settling each answer, and what Meta's refusals mean for the person.

- :mod:`~bot.outbound.loop`: the :class:`Dispatcher`: claims due rows, settles what comes back.
- :mod:`~bot.outbound.lanes`: one lane per recipient, so that a person's messages leave in order.
- :mod:`~bot.outbound.attempt`: one send: the consent check at send time, the rate, the call.
- :mod:`~bot.outbound.settle`: attempts into database outcomes, acting on Meta's error outcomes.
- :mod:`~bot.outbound.halt`: why a dispatcher stops claiming or sending.
- :mod:`~bot.outbound.pause`: the pause after Meta rejects the token; one sender on SQLite.
- :mod:`~bot.outbound.refusals`: what 131050 and 131049 record about the person.
"""

from bot.outbound.loop import Dispatcher
from bot.outbound.pause import paused_reason, resume
from bot.outbound.settle import DispatchStats

__all__ = ["DispatchStats", "Dispatcher", "paused_reason", "resume"]
