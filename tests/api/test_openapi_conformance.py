"""A schemathesis run against openapi.yaml on the running app: no 5xx, every answer as described.

The app is served on a loopback port (as gunicorn's threads would serve it) on the suite's
database, SQLite or PostgreSQL, with a contact who has consented and written recently, so that
the description's examples reach the success paths too. Schemathesis's own command line runs
every phase (examples, coverage, fuzzing, stateful) with a fixed seed and a bounded number of
examples per operation, with the bearer token.

positive_data_acceptance is left out: a schema-valid body can still be refused by rules a schema
cannot state (a number unassigned in its country's plan, a time in the future, the category ids
of the running OPTIN_CONFIG, the contact's consent).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.api.conftest import WA_ID, grant, hours_ago, say
from tests.conftest import API_TOKEN

MAX_EXAMPLES = 30  # per operation: enough to find mismatches, few enough for every test run
SEED = 20250301


# Every phase of schemathesis in a process of its own, given five minutes below: longer than
# the suite's two, so that its own timeout reports first.
@pytest.mark.timeout(360)
def test_schemathesis_finds_no_server_error_and_no_mismatch(app, api, meta, live_server_factory):
    say(meta, WA_ID, at=hours_ago(1))
    grant(api, WA_ID, categories=["orders", "offers"])
    base = live_server_factory(app)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{base}/api/v1/openapi.yaml",
            "--header",
            f"Authorization: Bearer {API_TOKEN}",
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            str(SEED),
            "--generation-database",
            "none",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-6000:]
    assert " passed" in report
