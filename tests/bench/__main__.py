"""Run every benchmark this package knows, or the one named, and print a results table."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from tests.bench import Result, table

# name → module with run() -> list[Result]
BENCHMARKS = {
    "audience": "tests.bench.bench_audience",
    "dispatcher": "tests.bench.bench_dispatcher",
    "import": "tests.bench.bench_import",
    "intake": "tests.bench.bench_intake",
    "statuses": "tests.bench.bench_statuses",
    "webhook": "tests.bench.bench_webhook",
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    parser.add_argument("name", nargs="?", choices=sorted(BENCHMARKS), help="run only this one")
    args = parser.parse_args(argv)
    names = [args.name] if args.name else list(BENCHMARKS)
    results: list[Result] = []
    for name in names:
        print(f"== {name}", file=sys.stderr, flush=True)
        results.extend(importlib.import_module(BENCHMARKS[name]).run())
    print(table(results))
    return 0 if all(r.met for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
