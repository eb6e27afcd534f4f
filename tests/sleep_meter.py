"""How long the suite sleeps, per test: `python -m pytest -p tests.sleep_meter`.

Wraps time.sleep (loaded with -p, before anything imports it, so that defaults bound at import
time are wrapped too) and, at the end, prints the tests that slept longest. Two figures each:
the wall time during which some thread of the test slept (what a sleep costs the suite), and
the part of it spent in the test's own thread (a fixed wait, a polling loop). Process-wide
waits elsewhere (worker processes, Event.wait) are not counted: they wait for a state.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import pytest

_real_sleep = time.sleep
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_lock = threading.Lock()
_current: str = "(outside tests)"


@dataclass
class _Slept:
    spans: list[tuple[float, float]] = field(default_factory=list)
    own_thread: float = 0.0
    by_caller: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def wall(self) -> float:
        """The length of the union of the spans: overlapping sleeps count once."""
        total, end = 0.0, float("-inf")
        for start, stop in sorted(self.spans):
            if stop <= end:
                continue
            total += stop - max(start, end)
            end = stop
        return total


_slept: dict[str, _Slept] = defaultdict(_Slept)


def _caller() -> str:
    """Where the sleep was called from: file and function, relative to the checkout."""
    frame = sys._getframe(2)
    path = frame.f_code.co_filename
    path = path[len(_ROOT) :] if path.startswith(_ROOT) else path.rsplit("/", 1)[-1]
    return f"{path}:{frame.f_code.co_name}"


def _sleep(seconds: float) -> None:
    test = _current
    caller = _caller()
    start = time.monotonic()
    try:
        _real_sleep(seconds)
    finally:
        stop = time.monotonic()
        with _lock:
            record = _slept[test]
            record.spans.append((start, stop))
            record.by_caller[caller] += stop - start
            if threading.current_thread() is threading.main_thread():
                record.own_thread += stop - start


time.sleep = _sleep


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
        rows = sorted(((s.wall(), s.own_thread, t) for t, s in _slept.items()), reverse=True)
    write = terminalreporter.write_line
    terminalreporter.section("time in time.sleep")
    write(f"{'wall s':>8} {'test thread s':>14}  test")
    for wall, own, test in rows[:25]:
        write(f"{wall:8.2f} {own:14.2f}  {test}")
    write(
        f"total: {sum(r[0] for r in rows):.1f} s wall, "
        f"{sum(r[1] for r in rows):.1f} s in test threads, over {len(rows)} tests"
    )
    callers: dict[str, float] = defaultdict(float)
    with _lock:
        for slept in _slept.values():
            for caller, seconds in slept.by_caller.items():
                callers[caller] += seconds
    write("by caller (summed over threads):")
    for caller, seconds in sorted(callers.items(), key=lambda item: -item[1])[:15]:
        write(f"{seconds:8.2f}  {caller}")
