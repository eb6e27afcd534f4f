"""Benchmarks: timed runs against real services, reported as a table; never part of the tests.

Run them all with `python -m tests.bench` (or `make bench`), or one by name:
`python -m tests.bench audience`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Result:
    benchmark: str
    figure: str
    value: float
    unit: str
    goal: str
    met: bool


def table(results: list[Result]) -> str:
    header = ("benchmark", "figure", "value", "goal", "met")
    rows = [
        (r.benchmark, r.figure, f"{r.value:,.1f} {r.unit}", r.goal, "yes" if r.met else "NO")
        for r in results
    ]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(header, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)
