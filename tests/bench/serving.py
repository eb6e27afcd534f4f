"""Serving a WSGI app under gunicorn, loading it with wrk, and reading what its processes cost.

Shared by the intake benches: the bare Flask webhook and the app are served and loaded the same
way, so their figures can be compared as ratios.
"""

from __future__ import annotations

import bisect
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import text

from storage.db import make_engine

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
# A load's seconds come in slices, each between two of the bare webhook's: a small machine's
# speed drifts within a minute, and a run of each in turn weighs the drift alike on both.
SLICES = int(os.environ.get("BENCH_SLICES", "5"))
SLICE_SECONDS = max(1, SECONDS // SLICES)  # wrk takes whole seconds
TENTHS = 1000  # load.lua reports the latency at every tenth of a percentile
CONNECTIONS = 8
WRK_THREADS = 2
APPLICATION_NAME = "optin-bench-intake"  # tells the app's database backends apart


@dataclass(frozen=True, slots=True)
class Load:
    """What wrk reported for one run."""

    requests: int
    seconds: float
    non2xx: int
    socket_errors: int
    # The latency at every tenth of a percentile (0.1 to 100): the distribution, to merge by.
    latency_ms: tuple[float, ...]
    cpu_ms: float = 0.0  # CPU per request of the workers
    database_cpu_ms: float = 0.0  # and of the database backends serving them
    stolen: float = 0.0  # share of the machine's CPU time its host took back meanwhile
    disk_wait: float = 0.0  # share it sat idle with a process waiting on the disk (iowait)
    end: int = 0  # each wrk thread's place in the body file when the run ended (at most)
    repeats: int = 0  # bodies posted a second time: the run ran out of fresh ones

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def p50_ms(self) -> float:
        return percentile(self.latency_ms, 50)

    @property
    def p99_ms(self) -> float:
        return percentile(self.latency_ms, 99)


def merged(runs: list[Load]) -> Load:
    """Runs of one load as one: requests and seconds added, CPU per request over them all, and
    the latencies those of all their requests together (merged_latencies)."""
    requests = sum(run.requests for run in runs)
    return Load(
        requests=requests,
        seconds=sum(run.seconds for run in runs),
        non2xx=sum(run.non2xx for run in runs),
        socket_errors=sum(run.socket_errors for run in runs),
        latency_ms=merged_latencies(runs),
        cpu_ms=sum(run.cpu_ms * run.requests for run in runs) / max(requests, 1),
        database_cpu_ms=sum(run.database_cpu_ms * run.requests for run in runs) / max(requests, 1),
        stolen=_time_weighted(runs, "stolen"),
        disk_wait=_time_weighted(runs, "disk_wait"),
        end=max(run.end for run in runs),
        repeats=sum(run.repeats for run in runs),
    )


def _time_weighted(runs: list[Load], share: str) -> float:
    return sum(getattr(run, share) * run.seconds for run in runs) / sum(run.seconds for run in runs)


def percentile(latencies: tuple[float, ...], percent: float) -> float:
    """The latency at `percent` from a grid of every tenth of a percentile."""
    return latencies[round(percent * 10) - 1]


def merged_latencies(runs: list[Load]) -> tuple[float, ...]:
    """The latency at every tenth of a percentile of all the runs' requests together, read off
    each run's own.

    A 2-s slice's p99 is its 1 % slowest, a handful of requests: one stall of the machine puts
    it in the hundreds of milliseconds, so the worst slice's p99 measured the stall, not the
    load. Here each run counts as many of its requests at or below a latency as its own grid
    shows there (a tenth of a percent of them under, at most), so a figure read off the merged
    grid is never below the true one, and for one run it is that run's own."""
    total = sum(run.requests for run in runs)
    grid: list[float] = []
    for latency in sorted({value for run in runs for value in run.latency_ms}):
        # Requests at or below this latency, in thousandths of a request.
        at_most = sum(run.requests * bisect.bisect_right(run.latency_ms, latency) for run in runs)
        while len(grid) < TENTHS and at_most >= (len(grid) + 1) * total:
            grid.append(latency)
    return tuple(grid)


@dataclass(frozen=True, slots=True)
class Served:
    """A server to load: its port, and the processes whose CPU its requests cost."""

    port: int
    serving: Callable[[], list[int]]
    database: Callable[[], list[int]] = list


class Baselines:
    """The bare webhook, loaded in turn with the app it is the baseline of: a slice of each,
    alternately, the bare webhook's first and last."""

    def __init__(self, port: int, master_pid: int) -> None:
        self.bare = Served(port, lambda: workers(master_pid))
        self.runs: list[Load] = []

    def around(self, bodies: Path, app: Served, app_bodies: Path) -> tuple[Load, Load]:
        """The app's SLICES slices of `app_bodies`, each going on where the last stopped, so
        every body is posted once; their baseline, the bare slices around them (`bodies`,
        from the top each time: the bare webhook keeps nothing). Each merged."""
        bare = [self._slice(bodies)]
        loaded: list[Load] = []
        for _ in range(SLICES):
            start = loaded[-1].end if loaded else 0
            loaded.append(wrk(app, app_bodies, SLICE_SECONDS, start))
            bare.append(self._slice(bodies))
        return merged(loaded), merged(bare)

    def _slice(self, bodies: Path) -> Load:
        load = wrk(self.bare, bodies, SLICE_SECONDS)
        self.runs.append(load)
        return load


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def in_scratch_folder(bench: str, run: Callable[[Path], list[Any]]) -> list[Any]:
    """A wrk bench's results, run in a folder deleted afterwards; without wrk, a clear stop."""
    if shutil.which("wrk") is None:
        raise SystemExit(f"the {bench} bench needs wrk: apt-get install wrk")
    with tempfile.TemporaryDirectory() as folder:
        return run(Path(folder))


@contextmanager
def gunicorn(
    app: str, env: dict[str, str], workers: int, threads: int = 1
) -> Iterator[tuple[int, int]]:
    """A gunicorn master serving `app` until the block ends, with sync workers or, given
    threads, threaded ones (keeping connections alive); (port, master pid)."""
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        "sync" if threads == 1 else "gthread",
        "--threads",
        str(threads),
        "--log-level",
        "warning",
        app,
    ]
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env})
    try:
        _wait_until_answering(port, process)
        yield port, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_until_answering(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}")
        try:
            requests.post(f"http://127.0.0.1:{port}/webhook", data=b"{}", timeout=30)
            return
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.1)
    raise RuntimeError("gunicorn did not answer within 60 s")


def wrk(server: Served, bodies: Path, seconds: int, start: int = 0) -> Load:
    """Load the server for `seconds` with the bodies, each wrk thread from its `start`-th on;
    the CPU per request is that of the server's processes."""
    before = cpu_seconds(server.serving()), cpu_seconds(server.database())
    host_before = host_ticks()
    output = subprocess.run(
        [
            "wrk",
            f"-t{WRK_THREADS}",
            f"-c{CONNECTIONS}",
            f"-d{seconds}s",
            "-s",
            str(HERE / "load.lua"),
            f"http://127.0.0.1:{server.port}",
        ],
        env={
            **os.environ,
            "BENCH_BODIES": str(bodies),
            "BENCH_THREADS": str(WRK_THREADS),
            "BENCH_START": str(start),
        },
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    report = json.loads(output.strip().splitlines()[-1])
    load = Load(**{**report, "latency_ms": tuple(report["latency_ms"])})
    per_request = 1000 / max(load.requests, 1)
    stolen, disk_wait, total = (
        after - earlier for after, earlier in zip(host_ticks(), host_before, strict=True)
    )
    return replace(
        load,
        cpu_ms=(cpu_seconds(server.serving()) - before[0]) * per_request,
        database_cpu_ms=(cpu_seconds(server.database()) - before[1]) * per_request,
        stolen=stolen / max(total, 1),
        disk_wait=disk_wait / max(total, 1),
    )


def host_ticks() -> tuple[int, int, int]:
    """CPU time the host has stolen from this virtual machine, CPU time spent idle while a
    process waited on the disk, and all its CPU time, so far (/proc/stat; steal stays 0 on bare
    metal). A run the host stole from measures the host; a run whose commits waited on a slow
    disk (a virtual disk's flush can stall for seconds) measures the disk."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return fields[7], fields[4], sum(fields)


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU the processes have used so far (those gone since count nothing)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def workers(master_pid: int) -> list[int]:
    return [
        int(p) for p in Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    ]


def backends(database_url: str) -> list[int]:
    """The PostgreSQL backends serving the app's connections (by application_name)."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return list(
                connection.execute(
                    text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"),
                    {"name": APPLICATION_NAME},
                ).scalars()
            )
    finally:
        engine.dispose()


def workers_rss_mb(master_pid: int) -> float:
    """The largest resident set among the master's worker processes."""
    largest = 0
    for pid in workers(master_pid):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                largest = max(largest, int(line.split()[1]))
    return largest / 1024
