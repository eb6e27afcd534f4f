"""The intake bench's slices read as one load: their latencies merged into one distribution."""

from __future__ import annotations

import random
from dataclasses import replace

from tests.bench.serving import TENTHS, Load, merged, percentile


def wrk_grid(latencies: list[float]) -> tuple[float, ...]:
    """What load.lua reports: wrk's percentile (the first value whose running count reaches
    round(p / 100 * count + 0.5)) at every tenth of a percentile, the largest at 100."""
    ordered = sorted(latencies)
    grid = []
    for tenth in range(1, TENTHS + 1):
        rank = int(tenth / TENTHS * len(ordered) + 0.5 + 0.5)  # C's round, half away from zero
        grid.append(ordered[min(max(rank, 1), len(ordered)) - 1])
    return tuple(grid)


def run_of(latencies: list[float]) -> Load:
    return Load(
        requests=len(latencies),
        seconds=2.0,
        non2xx=0,
        socket_errors=0,
        latency_ms=wrk_grid(latencies),
    )


def true_percentile(latencies: list[float], percent: float) -> float:
    ordered = sorted(latencies)
    return ordered[max(0, -(-len(ordered) * round(percent * 10) // TENTHS) - 1)]


def test_one_run_merged_is_that_run() -> None:
    rng = random.Random(7)
    latencies = [round(rng.lognormvariate(3, 0.5), 3) for _ in range(800)]
    run = run_of(latencies)
    assert merged([run]).latency_ms == run.latency_ms
    assert merged([run]).p99_ms == run.p99_ms


def test_a_stall_in_one_slice_is_weighed_against_every_request_of_the_load() -> None:
    """Five slices of 800 requests; in one, the machine stalls and 12 requests take 250 ms.
    That slice's own p99 is the stall; among all 4,000 requests, 12 are 0.3 %, below the 1 %."""
    rng = random.Random(11)
    slices = [[round(rng.uniform(10, 30), 3) for _ in range(800)] for _ in range(5)]
    slices[2][:12] = [250.0] * 12
    runs = [run_of(latencies) for latencies in slices]
    everything = [latency for latencies in slices for latency in latencies]

    load = merged(runs)

    assert max(run.p99_ms for run in runs) == 250.0  # the worst slice measured the stall
    assert true_percentile(everything, 99) <= load.p99_ms < 30
    assert load.requests == 4000


def test_merged_percentiles_are_never_below_the_true_ones_nor_past_a_tenth_of_a_percent() -> None:
    rng = random.Random(3)
    slices = [
        [round(rng.lognormvariate(mu, sigma), 3) for _ in range(size)]
        for mu, sigma, size in ((2.5, 0.4, 900), (3.0, 0.8, 500), (2.8, 1.2, 1200), (3.5, 0.3, 77))
    ]
    everything = [latency for latencies in slices for latency in latencies]

    load = merged([run_of(latencies) for latencies in slices])

    for percent in (50, 90, 99, 99.9):
        assert load.latency_ms[round(percent * 10) - 1] >= true_percentile(everything, percent)
    for percent in (50, 90, 99):
        assert percentile(load.latency_ms, percent) <= true_percentile(everything, percent + 0.2)


def test_a_disk_stall_in_one_slice_is_weighed_by_its_seconds() -> None:
    """A slice of 1 s whose every tick waited on the disk, beside one of 3 s that never did:
    the load waited a quarter of its time, whatever the slices' request counts."""
    quick = replace(run_of([1.0] * 900), seconds=3.0, stolen=0.02)
    stalled = replace(run_of([2000.0] * 2), seconds=1.0, disk_wait=1.0, stolen=0.10)

    load = merged([quick, stalled])

    assert load.disk_wait == 0.25
    assert load.stolen == (0.02 * 3 + 0.10 * 1) / 4
