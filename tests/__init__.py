"""The suite. SLEEP_METER=1 adds how long it slept to the report (tests/sleep_meter.py)."""

import os

if os.environ.get("SLEEP_METER"):
    # Before anything imports the application, which binds time.sleep as default arguments.
    from tests import sleep_meter  # noqa: F401
