"""The ten-line receiver the README shows accepts our signed webhooks and refuses forged ones."""

from __future__ import annotations

import re

import requests

from bot.wiring.services import services
from tests.api.conftest import grant
from tests.conftest import ROOT, Api
from tests.webhooks.test_consent_webhooks import SECRET


def readme_receiver():  # type: ignore[no-untyped-def]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    after = readme.split("A receiver that checks the signature", 1)[1]
    code = re.search(r"```python\n(.*?)```", after, re.DOTALL).group(1)  # type: ignore[union-attr]
    assert len(code.strip().splitlines()) <= 15  # short enough to copy
    namespace: dict = {"__name__": "__main__"}  # as when run as a script
    exec(compile(code, "README.md", "exec"), namespace)
    return namespace


def test_c29_the_readme_receiver_verifies_our_signature(
    app_config, make_app, live_server_factory, monkeypatch
):
    monkeypatch.setenv("CONSENT_WEBHOOK_SECRET", SECRET)
    receiver = readme_receiver()
    url = live_server_factory(receiver["app"]) + "/hooks/consent"
    app = make_app(CONSENT_WEBHOOK_URL=url, CONSENT_WEBHOOK_SECRET=SECRET)
    grant(Api(app.test_client()), categories=["orders"], source="paper")
    sender = services(app).webhook_sender()
    assert sender.run_once() == 1
    assert sender.stats.delivered == 1
    assert len(receiver["seen"]) == 1

    forged = requests.post(
        url,
        data=b'{"id": "x", "type": "consent.granted"}',
        headers={"X-Signature-256": "sha256=" + "0" * 64},
        timeout=5,
    )
    assert forged.status_code == 401
    assert len(receiver["seen"]) == 1
