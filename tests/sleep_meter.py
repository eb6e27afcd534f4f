"""How long the suite sleeps: `SLEEP_METER=1 pytest`, or `python -m pytest -p tests.sleep_meter`.

Counts two kinds of deliberate waiting:

- time.sleep, wherever it is called in this process: a test's fixed wait, a polling loop, a
  dispatcher waiting for its rate slot. Wrapped when tests/__init__.py is imported, before
  anything binds time.sleep as a default argument.
- a deadline in test code: Event.wait, Condition.wait or Condition.wait_for called from a file
  under tests/ that ran to its timeout. One that returns because the state it waits for came
  is not counted, nor is any wait in the application's own code.

Waits in other processes (gunicorn, `outbox work`) are not seen. At the end it prints the tests
and the test files that waited longest, and the total. Two figures each: the wall time during
which some thread of the test waited (what the waiting costs the suite), and the part of it spent
in the test's own thread.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import pytest

_real_sleep = time.sleep
_real_event_wait = threading.Event.wait
_real_condition_wait = threading.Condition.wait
_real_condition_wait_for = threading.Condition.wait_for
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_SELF = os.path.abspath(__file__)
_lock = threading.Lock()
_current: str = "(outside tests)"


@dataclass
class _Slept:
    spans: list[tuple[float, float]] = field(default_factory=list)
    own_thread: float = 0.0
    by_caller: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def wall(self) -> float:
        """The length of the union of the spans: overlapping waits count once."""
        total, end = 0.0, float("-inf")
        for start, stop in sorted(self.spans):
            if stop <= end:
                continue
            total += stop - max(start, end)
            end = stop
        return total


_slept: dict[str, _Slept] = defaultdict(_Slept)


def _where(frame: Any) -> str:
    path = frame.f_code.co_filename
    return path[len(_ROOT) :] if path.startswith(_ROOT) else path.rsplit("/", 1)[-1]


def _record(caller: str, start: float) -> None:
    stop = time.monotonic()
    with _lock:
        record = _slept[_current]
        record.spans.append((start, stop))
        record.by_caller[caller] += stop - start
        if threading.current_thread() is threading.main_thread():
            record.own_thread += stop - start


def _sleep(seconds: float) -> None:
    frame = sys._getframe(1)
    caller = f"{_where(frame)}:{frame.f_code.co_name}"
    start = time.monotonic()
    try:
        _real_sleep(seconds)
    finally:
        _record(caller, start)


def _deadline(wait: Callable[..., Any]) -> Callable[..., Any]:
    """wait, counted when test code called it with a timeout and the timeout ran out."""

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        frame = sys._getframe(1)
        path = frame.f_code.co_filename
        at = 1 if wait is _real_condition_wait_for else 0  # wait_for(predicate, timeout)
        timeout = args[at] if len(args) > at else kwargs.get("timeout")
        if timeout is None or not path.startswith(_ROOT + "tests" + os.sep) or path == _SELF:
            return wait(self, *args, **kwargs)
        start = time.monotonic()
        result = wait(self, *args, **kwargs)
        if not result:  # the deadline, not the state, ended it
            _record(f"{_where(frame)}:{frame.f_code.co_name} (deadline)", start)
        return result

    return counted


def install() -> None:
    time.sleep = _sleep
    threading.Event.wait = _deadline(_real_event_wait)  # type: ignore[method-assign]
    threading.Condition.wait = _deadline(_real_condition_wait)  # type: ignore[method-assign]
    threading.Condition.wait_for = _deadline(_real_condition_wait_for)  # type: ignore[method-assign]


install()  # on import: by tests/__init__.py when SLEEP_METER is set, or by -p


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, Any, Any]:
    global _current
    _current = item.nodeid
    try:
        return (yield)
    finally:
        _current = "(outside tests)"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    with _lock:
        tests = {test: (s.wall(), s.own_thread) for test, s in _slept.items()}
        callers: dict[str, float] = defaultdict(float)
        for slept in _slept.values():
            for caller, seconds in slept.by_caller.items():
                callers[caller] += seconds
    files: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for test, (wall, own) in tests.items():
        totals = files[test.split("::", 1)[0]]
        totals[0] += wall
        totals[1] += own
    write = terminalreporter.write_line
    terminalreporter.section("time in sleeps and test deadlines")
    write(f"{'wall s':>8} {'test thread s':>14}  test")
    for test, (wall, own) in sorted(tests.items(), key=lambda item: -item[1][0])[:25]:
        write(f"{wall:8.2f} {own:14.2f}  {test}")
    write("by test file:")
    for path, (wall, own) in sorted(files.items(), key=lambda item: -item[1][0]):
        write(f"{wall:8.2f} {own:14.2f}  {path}")
    write("by caller (summed over threads):")
    for caller, seconds in sorted(callers.items(), key=lambda item: -item[1])[:15]:
        write(f"{seconds:8.2f}  {caller}")
    write(
        f"total: {sum(w for w, _ in tests.values()):.1f} s wall, "
        f"{sum(o for _, o in tests.values()):.1f} s in test threads, over {len(tests)} tests"
    )
