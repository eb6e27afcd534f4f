"""Why a dispatcher stops claiming or sending: one state that the loop and the lanes both read."""

from __future__ import annotations

import threading
from enum import IntEnum


class Halt(IntEnum):
    """A reason to stop, from the least to the most that it holds back."""

    # The interpreter is exiting and refuses new threads: claim nothing more. Rows already in
    # a running lane still go; stopping follows at once (atexit).
    EXITING = 1
    # Meta rejected the token (a 190): send nothing more, give the rows back. Lifted once
    # everything in flight has settled; the pause flag then keeps every dispatcher from claiming.
    TOKEN_REJECTED = 2
    # Asked to stop: send nothing more, give the rows back, end the loop once all has settled.
    STOPPING = 3


class HaltState:
    """The stop Event the dispatcher's owner sets, plus the reason the dispatcher found itself.

    Written by the sending threads (a 190) and the loop; the most restrictive reason wins.
    """

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._found: Halt | None = None
        self._lock = threading.Lock()

    def watch(self, stop: threading.Event) -> None:
        """Stop when this event is set (the one `Dispatcher.run` was given)."""
        self._stop = stop

    @property
    def reason(self) -> Halt | None:
        return Halt.STOPPING if self._stop.is_set() else self._found

    def halt(self, reason: Halt) -> None:
        with self._lock:
            if self._found is None or reason > self._found:
                self._found = reason

    def all_settled(self) -> None:
        """Nothing is in flight any more: a rejected token is now the pause flag's to report.

        A halt for exiting that came before it is not restored: the pause flag already keeps
        this dispatcher from claiming, and the refusing interpreter would set it again.
        """
        with self._lock:
            if self._found is Halt.TOKEN_REJECTED:
                self._found = None

    def claims(self) -> bool:
        """Whether the loop may claim more rows."""
        return self.reason is None

    def sends(self) -> bool:
        """Whether a lane may send its next row (rather than give it back)."""
        return self.reason not in (Halt.TOKEN_REJECTED, Halt.STOPPING)

    def stopping(self) -> bool:
        return self._stop.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to seconds, woken by a stop; whether stopping."""
        return self._stop.wait(seconds)
