"""CONSOLE_USERS and CONSOLE_SECURE_COOKIES, as read at start-up."""

from __future__ import annotations

import pytest
from werkzeug.security import generate_password_hash

from bot.wiring.settings import Settings, SettingsError

BASE = {
    "APP_ENV": "production",
    "WHATSAPP_VERIFY_TOKEN": "v",
    "WHATSAPP_APP_SECRET": "s",
    "SECRET_KEY": "k" * 16 + "0123456789abcdef",
}
HASH = generate_password_hash("a long password", method="pbkdf2:sha256:1000")


def test_console_users_split_on_the_first_colon_only() -> None:
    scrypt = "scrypt:32768:8:1$salt$" + "ab" * 32
    settings = Settings.from_env({**BASE, "CONSOLE_USERS": f"alice:{HASH}, bob:{scrypt}"})
    assert settings.console_users == (("alice", HASH), ("bob", scrypt))
    assert HASH not in repr(settings)


def test_no_console_users_means_an_empty_tuple() -> None:
    assert Settings.from_env(BASE).console_users == ()
    assert Settings.from_env({**BASE, "CONSOLE_USERS": "  "}).console_users == ()


@pytest.mark.parametrize(
    "value",
    [
        "alice",
        "alice:",
        ":" + HASH,
        "alice:plain-text-password",
        "alice:md5$salt$abc",
        f"alice:{HASH},",
        f"al ice:{HASH}",
        f"alice:{HASH},alice:{HASH}",
    ],
)
def test_a_malformed_entry_stops_start_up_naming_console_users(value: str) -> None:
    with pytest.raises(SettingsError, match="CONSOLE_USERS") as raised:
        Settings.from_env({**BASE, "CONSOLE_USERS": value})
    assert HASH.split("$")[-1] not in str(raised.value)  # never echo a hash back


def test_secure_cookies_default_on_in_production_and_off_in_development() -> None:
    assert Settings.from_env(BASE).console_secure_cookies is True
    development = {**BASE, "APP_ENV": "development"}
    assert Settings.from_env(development).console_secure_cookies is False
    flipped = {**development, "CONSOLE_SECURE_COOKIES": "1"}
    assert Settings.from_env(flipped).console_secure_cookies is True
    off = {**BASE, "CONSOLE_SECURE_COOKIES": "0"}
    assert Settings.from_env(off).console_secure_cookies is False


def test_console_users_carry_a_role_support_unless_admin_is_named() -> None:
    settings = Settings.from_env(
        {**BASE, "CONSOLE_USERS": f"alice:admin:{HASH},bob:{HASH},carol:support:{HASH}"}
    )
    assert settings.console_users == (("alice", HASH), ("bob", HASH), ("carol", HASH))
    assert settings.console_admins == {"alice"}


def test_an_unknown_role_stops_start_up_naming_it() -> None:
    with pytest.raises(SettingsError, match="role must be support or admin") as raised:
        Settings.from_env({**BASE, "CONSOLE_USERS": f"alice:root:{HASH}"})
    assert HASH.split("$")[-1] not in str(raised.value)
