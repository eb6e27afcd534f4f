"""Single statuses of requests served at once by one process, committed together: one round
trip and one COMMIT for the group instead of one each.

A campaign's statuses arrive one to a body, many bodies at once. Alone, each costs a round trip
and a commit whose flush of the write-ahead log is half the database's work on it; under
threads (the deployed gunicorn runs them) those requests overlap. So a request's status joins a
group: the first to arrive finds no commit in flight and leads, committing its group; those
arriving meanwhile wait, and when the commit returns, the first of them leads the next group
with everyone who came since. Nobody waits for more than the commit in flight and their own,
each answer still follows its own row's COMMIT, and a process serving one request at a time
(sync workers) commits each alone, as before.

The group's rows keep their order, so what was new is what it would have been had the bodies
come one after another: a (wamid, status) named twice is new in the first body only. Should
the database refuse the group for anything but being unavailable, each request runs its own
rows again alone, so a bad row costs only its own body.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from storage.db import storage_unavailable
from storage.status_steps import StatusRow

# Commits rows in one transaction and says which were new.
Commit = Callable[[Sequence[StatusRow]], tuple[bool, ...]]


@dataclass(slots=True)
class _Waiting:
    """One request's rows, and what became of them."""

    rows: Sequence[StatusRow]
    woken: threading.Event | None = None  # a follower's; a leader never waits
    new: tuple[bool, ...] | None = None
    error: BaseException | None = None
    alone: bool = False  # its group was refused: these rows run again by themselves
    answered: bool = False  # False when woken to lead the next group


class StatusGroups:
    """Commits the rows of concurrent callers in groups, through `commit`."""

    def __init__(self, commit: Commit) -> None:
        self._commit = commit
        self._lock = threading.Lock()
        self._waiting: list[_Waiting] = []
        self._leading = False

    def record(self, rows: Sequence[StatusRow]) -> tuple[bool, ...]:
        """Which rows were new, once committed with whatever group they joined."""
        mine = _Waiting(rows)
        with self._lock:
            if self._leading:  # a commit is in flight: wait to be answered, or to lead
                mine.woken = threading.Event()
            self._leading = True
            self._waiting.append(mine)
        if mine.woken is not None:
            mine.woken.wait()
        if not mine.answered:
            self._lead()
        return self._outcome(mine)

    def _lead(self) -> None:
        with self._lock:
            group, self._waiting = self._waiting, []
        try:
            self._commit_group(group)
        finally:
            with self._lock:
                if self._waiting:
                    successor = self._waiting[0].woken
                    assert successor is not None  # it came while this group was led
                    successor.set()  # unanswered: it leads whoever came since
                else:
                    self._leading = False

    def _commit_group(self, group: list[_Waiting]) -> None:
        try:
            new = self._commit([row for waiting in group for row in waiting.rows])
        except BaseException as exc:
            refused = isinstance(exc, Exception) and not storage_unavailable(exc)
            for waiting in group:
                if refused and len(group) > 1:
                    waiting.alone = True
                else:
                    waiting.error = exc
                _answer(waiting)
            return
        start = 0
        for waiting in group:
            waiting.new = new[start : start + len(waiting.rows)]
            start += len(waiting.rows)
            _answer(waiting)

    def _outcome(self, mine: _Waiting) -> tuple[bool, ...]:
        if mine.alone:
            return self._commit(mine.rows)
        if mine.error is not None:
            raise mine.error
        assert mine.new is not None
        return mine.new


def _answer(waiting: _Waiting) -> None:
    waiting.answered = True
    if waiting.woken is not None:
        waiting.woken.set()
