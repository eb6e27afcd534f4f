"""The business API's fixtures (a double opt-in OPTIN_CONFIG, other apps), shared here."""

from tests.api.conftest import double_opt_in_config, make_app  # noqa: F401
