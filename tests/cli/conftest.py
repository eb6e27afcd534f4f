"""The business API's fixtures (a sender, a double opt-in OPTIN_CONFIG, other apps)."""

from tests.api.conftest import app_config, double_opt_in_config, make_app  # noqa: F401
