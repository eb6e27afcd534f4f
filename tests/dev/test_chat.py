"""`flask --app wsgi chat`: a customer's conversation typed in the terminal."""

from __future__ import annotations

from bot import create_app
from bot.wiring.services import services
from tests.conftest import ROOT


def test_chat_shows_buttons_as_numbered_choices_and_follows_the_dialogue(app):
    result = app.test_cli_runner().invoke(
        args=["chat", "--wa-id", "15550009999"], input="hello\n1\nSTOP\nanyone there?\n/quit\n"
    )
    assert result.exit_code == 0, result.output
    output = result.output
    assert "1) Yes, all [optin:yes]" in output
    assert "2) Let me choose [optin:choose]" in output
    assert "Thank you. Nimbus Bakery will send you these messages on WhatsApp" in output
    assert "You will no longer receive any messages from Nimbus Bakery" in output
    assert output.rstrip().endswith("(no reply)") or "(no reply)" in output.split("anyone")[-1]


def test_chat_answers_in_arabic_to_arabic(app):
    result = app.test_cli_runner().invoke(args=["chat"], input="مرحبا\n/quit\n")
    assert result.exit_code == 0, result.output
    assert "تحديثات الطلبات" in result.output


def test_chat_shows_the_preferences_form_and_answers_it(app_config, tmp_path):
    path = tmp_path / "optin.toml"
    text = (ROOT / "optin.toml").read_text(encoding="utf-8")
    path.write_text(text + '\n[preferences_flow]\nflow_id = "1234567890"\n', encoding="utf-8")
    app = create_app({**app_config, "OPTIN_CONFIG": str(path)})
    try:
        result = app.test_cli_runner().invoke(
            args=["chat"], input="hello\n1\nPREFERENCES\n/form orders\n/quit\n"
        )
    finally:
        services(app).engine.dispose()
    assert result.exit_code == 0, result.output
    assert "☑ Order updates [orders]" in result.output and "☑ Offers [offers]" in result.output
    assert "Saved. Your choices with Nimbus Bakery on WhatsApp" in result.output
    assert "❌ Offers: off" in result.output
