"""The business API's fixtures (a double opt-in OPTIN_CONFIG), shared with these tests."""

from tests.api.conftest import double_opt_in_config  # noqa: F401
