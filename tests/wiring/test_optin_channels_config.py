"""OPTIN_CONFIG for the other channels: the number customers write to, and the hosted page."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot import create_app
from bot.wiring.optin_file import OptinConfigError, load_catalog
from tests.wiring.test_settings import GOOD, write

TEMPLATE = '[double_opt_in]\nenabled = false\ntemplate = "optin_confirmation"\n'


def test_the_whatsapp_number_is_read_in_any_usual_spelling(tmp_path: Path) -> None:
    text = GOOD.replace(
        'languages = ["en", "ar"]\n',
        'languages = ["en", "ar"]\nwhatsapp_number = "+1 (555) 078-3881"\n',
    )
    catalog = load_catalog(write(tmp_path, text))
    assert catalog.company.whatsapp_number == "15550783881"
    assert load_catalog(write(tmp_path, GOOD)).company.whatsapp_number is None


def test_a_whatsapp_number_that_is_no_number_names_the_line(tmp_path: Path) -> None:
    text = GOOD.replace(
        'languages = ["en", "ar"]\n', 'languages = ["en", "ar"]\nwhatsapp_number = "call us"\n'
    )
    with pytest.raises(OptinConfigError) as excinfo:
        load_catalog(write(tmp_path, text))
    assert excinfo.value.line == 5
    assert "company.whatsapp_number" in excinfo.value.problem


def test_the_web_page_needs_the_double_opt_in_template(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "\n[web_optin]\nenabled = true\n")
    with pytest.raises(OptinConfigError) as excinfo:
        load_catalog(path)
    assert excinfo.value.line == 14
    assert "[double_opt_in] template" in excinfo.value.problem
    assert str(excinfo.value).startswith(f"{path}:14: web_optin.enabled needs")


def test_start_up_refuses_the_web_page_without_the_template(app_config, tmp_path: Path) -> None:
    app_config["OPTIN_CONFIG"] = str(write(tmp_path, GOOD + "[web_optin]\nenabled = true\n"))
    with pytest.raises(OptinConfigError, match=r"web_optin\.enabled needs"):
        create_app(app_config)


def test_the_web_page_with_the_template_is_enabled(tmp_path: Path) -> None:
    catalog = load_catalog(write(tmp_path, GOOD + TEMPLATE + "[web_optin]\nenabled = true\n"))
    assert catalog.web_optin.enabled
    assert catalog.double_opt_in.template == "optin_confirmation"
    assert not load_catalog(write(tmp_path, GOOD)).web_optin.enabled


def test_a_web_optin_flag_that_is_no_boolean_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(OptinConfigError) as excinfo:
        load_catalog(write(tmp_path, GOOD + TEMPLATE + '[web_optin]\nenabled = "yes"\n'))
    assert excinfo.value.line == 16
    assert "web_optin.enabled must be true or false" in excinfo.value.problem


def test_preferences_are_buttons_until_a_flow_is_named(tmp_path: Path) -> None:
    assert not load_catalog(write(tmp_path, GOOD)).preferences_flow.enabled
    text = GOOD + '\n[preferences_flow]\nflow_id = "1234567890123456"\n'
    flow = load_catalog(write(tmp_path, text)).preferences_flow
    assert flow.enabled and flow.flow_id == "1234567890123456"


@pytest.mark.parametrize("value", ["1234567890123456", '""', '"my flow"', '"12 34"'])
def test_a_flow_id_that_is_no_flow_id_stops_start_up_at_its_line(
    tmp_path: Path, value: str
) -> None:
    path = write(tmp_path, GOOD + f"\n[preferences_flow]\nflow_id = {value}\n")
    with pytest.raises(OptinConfigError) as excinfo:
        load_catalog(path)
    assert excinfo.value.line == len(GOOD.splitlines()) + 3
    assert "preferences_flow.flow_id" in excinfo.value.problem
    assert str(excinfo.value).startswith(f"{path}:{excinfo.value.line}: ")


def test_a_preferences_flow_without_its_id_names_the_table(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "\n[preferences_flow]\n")
    with pytest.raises(OptinConfigError) as excinfo:
        load_catalog(path)
    assert excinfo.value.line == len(GOOD.splitlines()) + 2
