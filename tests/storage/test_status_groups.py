"""Single statuses of concurrent requests share a commit: those arriving while one is in flight
go in the next, each request gets its own rows' newness, a refused group costs only the bad
request's body, and a database that is down reaches every request as an error (a 503)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from sqlalchemy.exc import OperationalError

from storage.status_groups import StatusGroups
from storage.status_steps import StatusRow
from tests.waiting import wait_until

AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def row(wamid: str) -> StatusRow:
    return StatusRow(wamid, "delivered", AT, "1", "447700900001", None, None, None, None, None)


class HeldCommit:
    """A commit that records each group and holds the first until released, so that requests
    arrive while it is in flight. A row whose wamid starts with "old" was kept before."""

    def __init__(self, refuse: Callable[[Sequence[StatusRow]], BaseException | None]) -> None:
        self.groups: list[list[str]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.refuse = refuse

    def __call__(self, rows: Sequence[StatusRow]) -> tuple[bool, ...]:
        self.groups.append([r.wamid for r in rows])
        if len(self.groups) == 1:
            self.entered.set()
            assert self.release.wait(10)
        if (error := self.refuse(rows)) is not None:
            raise error
        return tuple(not r.wamid.startswith("old") for r in rows)


def never(_rows: Sequence[StatusRow]) -> None:
    return None


def run_concurrently(
    groups: StatusGroups, commit: HeldCommit, first: str, later: list[str]
) -> dict[str, object]:
    """`first` leads and is held in its commit while every one of `later` joins; then all go."""
    outcomes: dict[str, object] = {}

    def request(wamid: str) -> None:
        try:
            outcomes[wamid] = groups.record([row(wamid)])
        except Exception as exc:
            outcomes[wamid] = exc

    threads = [threading.Thread(target=request, args=(first,))]
    threads[0].start()
    assert commit.entered.wait(10)
    for wamid in later:
        threads.append(threading.Thread(target=request, args=(wamid,)))
        threads[-1].start()
    # every later request waits behind the commit
    joined = wait_until(lambda: len(groups._waiting) >= len(later), timeout=10, interval=0.001)
    assert joined, "the later requests never joined"
    commit.release.set()
    for thread in threads:
        thread.join(10)
        assert not thread.is_alive()
    return outcomes


def test_requests_arriving_during_a_commit_share_the_next_one() -> None:
    commit = HeldCommit(never)
    groups = StatusGroups(commit)
    outcomes = run_concurrently(groups, commit, "w1", ["w2", "old3", "w4"])
    assert commit.groups[0] == ["w1"]
    assert sorted(commit.groups[1]) == ["old3", "w2", "w4"]  # in the order they arrived
    assert len(commit.groups) == 2
    assert outcomes == {"w1": (True,), "w2": (True,), "old3": (False,), "w4": (True,)}
    assert not groups._leading  # the next request leads at once


def test_one_request_at_a_time_commits_each_alone() -> None:
    seen: list[list[str]] = []

    def commit(rows: Sequence[StatusRow]) -> tuple[bool, ...]:
        seen.append([r.wamid for r in rows])
        return (True,) * len(rows)

    groups = StatusGroups(commit)
    assert [groups.record([row(f"w{n}")]) for n in range(3)] == [(True,)] * 3
    assert seen == [["w0"], ["w1"], ["w2"]]


def test_a_refused_group_costs_only_the_bad_request_its_body() -> None:
    refused = ValueError("value out of range")

    def refuse(rows: Sequence[StatusRow]) -> BaseException | None:
        return refused if any(r.wamid == "bad" for r in rows) else None

    commit = HeldCommit(refuse)
    outcomes = run_concurrently(StatusGroups(commit), commit, "w1", ["w2", "bad", "w3"])
    assert outcomes["w1"] == outcomes["w2"] == outcomes["w3"] == (True,)
    assert outcomes["bad"] is refused
    assert len(commit.groups) == 2 + 3  # the refused group, then each of its requests alone
    assert sorted(map(tuple, commit.groups[2:])) == [("bad",), ("w2",), ("w3",)]


def test_a_database_that_is_down_fails_every_request_of_the_group() -> None:
    down = OperationalError("commit", None, ConnectionError("server closed the connection"))

    def refuse(rows: Sequence[StatusRow]) -> BaseException | None:
        return down if len(rows) > 1 else None

    commit = HeldCommit(refuse)
    outcomes = run_concurrently(StatusGroups(commit), commit, "w1", ["w2", "w3"])
    assert outcomes == {"w1": (True,), "w2": down, "w3": down}
    assert len(commit.groups) == 2  # not tried again alone: Meta redelivers after the 503
