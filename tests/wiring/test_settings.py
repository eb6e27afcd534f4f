"""Start-up: settings from the environment and the OPTIN_CONFIG file, refused clearly when bad."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot import create_app
from bot.wiring.optin_file import OptinConfigError, load_catalog
from bot.wiring.settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parents[2]


def test_production_refuses_to_start_naming_every_missing_secret():
    with pytest.raises(SettingsError) as excinfo:
        Settings.from_env({"APP_ENV": "production", "WHATSAPP_VERIFY_TOKEN": "v"})
    message = str(excinfo.value)
    assert "WHATSAPP_APP_SECRET" in message
    assert "SECRET_KEY" in message
    assert "WHATSAPP_VERIFY_TOKEN" not in message


def test_unset_app_env_means_production():
    with pytest.raises(SettingsError):
        Settings.from_env({})


def test_development_generates_and_prints_secrets(capsys):
    settings = Settings.from_env({"APP_ENV": "development"})
    assert settings.verify_token and settings.app_secret and settings.secret_key
    assert set(settings.generated) == {"WHATSAPP_VERIFY_TOKEN", "WHATSAPP_APP_SECRET", "SECRET_KEY"}
    settings.announce_generated()
    printed = capsys.readouterr().err
    assert settings.verify_token in printed
    assert settings.app_secret in printed
    assert settings.secret_key not in printed


def test_defaults_match_the_contract():
    settings = Settings.from_env({"APP_ENV": "development"})
    assert settings.api_url == "https://graph.facebook.com/v23.0"
    assert settings.database_url == "sqlite:///instance/optin.db"
    assert settings.redis_url is None
    assert settings.optin_config == Path("optin.toml")
    assert settings.api_tokens == ()


def test_secrets_are_not_in_the_settings_repr():
    settings = Settings.from_env(
        {
            "WHATSAPP_VERIFY_TOKEN": "v",
            "WHATSAPP_APP_SECRET": "app-secret-value",
            "SECRET_KEY": "secret-key-value-0123456789abcdefghij",
            "WHATSAPP_ACCESS_TOKEN": "access-token-value",
            "API_TOKENS": "api-token-value",
        }
    )
    text = repr(settings)
    for secret in ("app-secret-value", "secret-key-value", "access-token-value", "api-token-value"):
        assert secret not in text


def test_bad_app_env_is_refused():
    with pytest.raises(SettingsError, match="APP_ENV"):
        Settings.from_env({"APP_ENV": "staging"})


def test_shipped_optin_file_is_valid():
    catalog = load_catalog(ROOT / "optin.toml")
    assert catalog.company.name == "Nimbus Bakery"
    assert catalog.company.languages == ("en", "ar")
    assert catalog.category_ids == ("orders", "offers")
    assert catalog.marketing_ids == ("offers",)


GOOD = """\
[company]
name = "Nimbus Bakery"
support = "help@nimbus.example"
languages = ["en", "ar"]

[[categories]]
id = "orders"
marketing = false
title = { en = "Order updates", ar = "تحديثات الطلبات" }
description = { en = "Shipping news", ar = "أخبار الشحن" }
keywords = ["orders"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "optin.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        (GOOD.replace('name = "Nimbus Bakery"', "name = "), 2, "not valid TOML"),
        (GOOD.replace(', ar = "تحديثات الطلبات"', ""), 9, "no title in 'ar'"),
        (GOOD.replace('id = "orders"', 'id = "Orders!"'), 7, "must match"),
        (GOOD.replace("marketing = false", 'marketing = "no"'), 8, "marketing"),
        (GOOD.replace('support = "help@nimbus.example"\n', ""), 1, "company.support"),
        (GOOD.replace('languages = ["en", "ar"]', 'languages = ["en", "fr"]'), 4, "fr"),
        (GOOD + GOOD[GOOD.index("[[categories]]") :], 13, "used twice"),
    ],
)
def test_bad_optin_file_names_file_line_and_problem(tmp_path, text, line, problem):
    path = write(tmp_path, text)
    with pytest.raises(OptinConfigError) as excinfo:
        load_catalog(path)
    assert excinfo.value.line == line
    assert problem in excinfo.value.problem
    assert str(excinfo.value).startswith(f"{path}:{line}: ")


def test_missing_optin_file_stops_start_up(app_config, tmp_path):
    app_config["OPTIN_CONFIG"] = str(tmp_path / "absent.toml")
    with pytest.raises(OptinConfigError, match=r"absent\.toml: file not found"):
        create_app(app_config)


def test_development_secrets_are_kept_between_runs_and_private(tmp_path):
    from bot.wiring.devsecrets import development_secrets

    path = tmp_path / "instance" / "development-secrets.json"
    first = Settings.from_env({"APP_ENV": "development"}, development_secrets(path))
    second = Settings.from_env({"APP_ENV": "development"}, development_secrets(path))
    assert first.verify_token == second.verify_token
    assert first.app_secret == second.app_secret
    assert path.stat().st_mode & 0o777 == 0o600
    explicit = Settings.from_env(
        {"APP_ENV": "development", "WHATSAPP_VERIFY_TOKEN": "mine"}, development_secrets(path)
    )
    assert explicit.verify_token == "mine"
    assert "WHATSAPP_VERIFY_TOKEN" not in explicit.generated


def test_production_never_uses_development_secrets():
    with pytest.raises(SettingsError):
        Settings.from_env(
            {"APP_ENV": "production"},
            {"WHATSAPP_VERIFY_TOKEN": "a", "WHATSAPP_APP_SECRET": "b", "SECRET_KEY": "c"},
        )


def test_env_example_and_the_readme_list_every_variable_the_app_reads():
    pattern = re.compile(r'(?:get|secret|environ\.get)\("([A-Z][A-Z0-9_]+)"')
    read = set()
    for path in [*(ROOT / "bot").rglob("*.py"), *(ROOT / "storage").rglob("*.py")]:
        read |= set(pattern.findall(path.read_text()))
    # requests' own variables, honoured as requests documents them (bot.graph.client).
    read -= {"REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"}
    assert {"APP_ENV", "SECRET_KEY", "LOG_LEVEL", "METRICS_TOKEN"} <= read  # the scan works

    example = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", example, re.MULTILINE))
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", readme, re.MULTILINE))
    assert read - listed == set(), "missing from .env.example"
    assert read - documented == set(), "missing from the README's configuration table"


BASE = {
    "WHATSAPP_VERIFY_TOKEN": "v",
    "WHATSAPP_APP_SECRET": "a",
    "SECRET_KEY": "k" * 16 + "0123456789abcdef",
}


def test_redis_prefix_and_log_level_are_settings_checked_at_start_up():
    settings = Settings.from_env({**BASE, "REDIS_PREFIX": "shop-2:", "LOG_LEVEL": "warning"})
    assert (settings.redis_prefix, settings.log_level) == ("shop-2:", "WARNING")
    defaults = Settings.from_env(BASE)
    assert (defaults.redis_prefix, defaults.log_level) == ("optin:", "INFO")
    with pytest.raises(SettingsError, match="LOG_LEVEL"):
        Settings.from_env({**BASE, "LOG_LEVEL": "LOUD"})
    with pytest.raises(SettingsError, match="REDIS_PREFIX"):
        Settings.from_env({**BASE, "REDIS_PREFIX": "has space"})


# --- keys (C30) -------------------------------------------------------------------------------

STRONG = "q8Vw-2LrT_9zKp4NcX7mYb3HsJd6FgAe"  # 32 random characters


@pytest.mark.parametrize(
    "key",
    [
        "changeme",
        "secret",
        "dev",
        "test-secret-key",  # 15 characters
        "q8Vw-2LrT_9zKp4NcX7mYb3HsJd6FgA",  # random, but 31 characters
        "change-me-change-me-change-me-change-me",
        "your-secret-key-here-0123456789-abcdef",
        "django-insecure-3k@!x9#p0q7w2e5r8t1y4u6i",
        "a" * 64,
        "abababababababababababababababababab",
    ],
)
def test_c30_production_refuses_a_weak_secret_key(key: str) -> None:
    with pytest.raises(SettingsError, match="SECRET_KEY") as raised:
        Settings.from_env({**BASE, "SECRET_KEY": key})
    if len(key) > 10:  # shorter ones are words the message may use
        assert key not in str(raised.value)  # a refused key is never echoed to a log


def test_c30_a_weak_secret_key_stops_the_app_from_starting(app_config):
    with pytest.raises(SettingsError, match="SECRET_KEY"):
        create_app({**app_config, "SECRET_KEY": "changeme"})


def test_a_long_random_key_is_accepted_and_development_accepts_any():
    assert Settings.from_env({**BASE, "SECRET_KEY": STRONG}).secret_key == STRONG
    development = Settings.from_env({**BASE, "APP_ENV": "development", "SECRET_KEY": "dev"})
    assert development.secret_key == "dev"


def test_the_refusal_says_how_to_keep_existing_suppressions():
    with pytest.raises(SettingsError, match="first set SUPPRESSION_KEY to the current SECRET_KEY"):
        Settings.from_env({**BASE, "SECRET_KEY": "changeme"})
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({**BASE, "SECRET_KEY": "changeme", "SUPPRESSION_KEY": "changeme"})
    assert "SUPPRESSION_KEY" not in str(raised.value)


def test_suppression_key_defaults_to_the_secret_key_as_it_always_was():
    settings = Settings.from_env({**BASE, "SECRET_KEY": STRONG})
    assert settings.suppression_key == STRONG.encode()
    # After a rotation: the old key keys the suppressions, whatever its length.
    rotated = Settings.from_env({**BASE, "SECRET_KEY": STRONG, "SUPPRESSION_KEY": "old-key"})
    assert rotated.suppression_key == b"old-key"
    assert "old-key" not in repr(rotated)


# --- API tokens -------------------------------------------------------------------------------


def test_api_tokens_are_bare_or_named_with_scopes():
    settings = Settings.from_env(
        {**BASE, "API_TOKENS": "plain-token, crm:read+consent:tok:en:with:colons ,ops:erase:t2"}
    )
    bare, crm, ops = settings.api_tokens
    assert (bare.token, bare.name, bare.scopes) == (
        "plain-token",
        None,
        {"read", "send", "consent", "erase"},
    )
    assert (crm.token, crm.name, crm.scopes) == ("tok:en:with:colons", "crm", {"read", "consent"})
    assert (ops.name, ops.scopes) == ("ops", {"erase"})
    assert crm.label == f"crm ({crm.fingerprint})" and bare.label == bare.fingerprint
    assert "tok:en" not in repr(settings.api_tokens)


@pytest.mark.parametrize(
    "value",
    [
        "crm:raed:secret-token",  # a typo never grants every scope
        "crm::secret-token",
        "crm:read+:secret-token",
        "crm:read:",
        "c rm:read:secret-token",
        "crm:read:secret-token,crm:send:other-token",
        "secret-token,secret-token",
    ],
)
def test_a_malformed_api_token_entry_stops_start_up_without_echoing_the_token(value):
    with pytest.raises(SettingsError, match="API_TOKENS") as raised:
        Settings.from_env({**BASE, "API_TOKENS": value})
    assert "secret-token" not in str(raised.value)


# --- proxies and console sessions -------------------------------------------------------------


def test_proxy_hops_and_console_session_limits_are_whole_numbers():
    defaults = Settings.from_env(BASE)
    assert (defaults.trusted_proxy_hops, defaults.console_idle_minutes) == (0, 480)
    assert defaults.console_session_hours == 12
    chosen = Settings.from_env(
        {
            **BASE,
            "TRUSTED_PROXY_HOPS": "1",
            "CONSOLE_IDLE_MINUTES": "30",
            "CONSOLE_SESSION_HOURS": "9",
        }
    )
    assert (chosen.trusted_proxy_hops, chosen.console_idle_minutes) == (1, 30)
    assert chosen.console_session_hours == 9
    for name, bad in (
        ("TRUSTED_PROXY_HOPS", "-1"),
        ("TRUSTED_PROXY_HOPS", "6"),
        ("CONSOLE_IDLE_MINUTES", "0"),
    ):
        with pytest.raises(SettingsError, match=name):
            Settings.from_env({**BASE, name: bad})
