"""The hosted opt-in page enabled (it needs the double opt-in template), with a sender."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tests.api.conftest import PHONE_NUMBER_ID
from tests.conftest import ROOT

FIELD = re.compile(r'name="(csrf_token|version)" value="([^"]+)"')


def web_optin_config(tmp_path: Path, *, double_opt_in: bool = False) -> str:
    path = tmp_path / "optin-web.toml"
    head, _, _ = (ROOT / "optin.toml").read_text(encoding="utf-8").partition("[double_opt_in]")
    path.write_text(
        head
        + f"[double_opt_in]\nenabled = {str(double_opt_in).lower()}\n"
        + 'template = "optin_confirmation"\nlanguage = "en"\n\n'
        + '[web_optin]\nenabled = true\nembed_origins = ["https://shop.nimbus.example"]\n',
        encoding="utf-8",
    )
    return str(path)


@pytest.fixture
def app_config(app_config: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {
        **app_config,
        "OPTIN_CONFIG": web_optin_config(tmp_path),
        "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
    }


def form_fields(client: FlaskClient, path: str = "/optin") -> dict[str, str]:
    """The hidden fields of a freshly served page: its csrf_token and version."""
    page = client.get(path).get_data(as_text=True)
    return dict(FIELD.findall(page))


@pytest.fixture
def make_app(app_config: dict[str, str]):  # type: ignore[no-untyped-def]
    """Another app on the same database with some settings changed (None: back to the suite's
    default for OPTIN_CONFIG, removed for the others)."""
    from bot import create_app
    from bot.wiring.services import services

    apps = []

    def make(**changes: str | None):  # type: ignore[no-untyped-def]
        config = dict(app_config)
        for key, value in changes.items():
            if value is not None:
                config[key] = value
            elif key == "OPTIN_CONFIG":
                config[key] = str(ROOT / "optin.toml")
            else:
                config.pop(key, None)
        made = create_app(config)
        apps.append(made)
        return made

    yield make
    for made in apps:
        services(made).engine.dispose()
