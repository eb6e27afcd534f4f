"""The longest value each column keeps, in characters: one set of numbers for every layer.

The tables are declared with these lengths; the webhook parser and the business API check input
against them before the database sees it; openapi.yaml states the same numbers as maxLength.
PostgreSQL refuses a longer value and SQLite would keep it, so a check that is missing shows up
as a batch failing on one backend only, which is why nothing else may spell these numbers.
"""

from __future__ import annotations

# Meta's identifiers, as stored on contacts, messages and statuses.
WAMID = 256  # message ids, and the message a reply answers
PHONE_NUMBER_ID = 64  # our sending number's id
WA_ID = 32  # a phone number as digits (E.164 has at most 15)
# A business-scoped user id: a country code, a dot (".ENT." for a parent id), up to 128 characters.
USER_ID = 160
PROFILE_NAME = 256
USERNAME = 128
COUNTRY_CODE = 8
MESSAGE_TYPE = 32  # Meta's type string, kept even when it is one this code does not know
STATUS = 16
ERROR_TITLE = 512

# Meta's user_preferences updates and other changes.
PREFERENCE_CATEGORY = 64
PREFERENCE_VALUE = 16
CHANGE_FIELD = 64
ENTRY_ID = 64

# Consent, as the ledger and the API name it.
CATEGORY_ID = 32  # a category id in OPTIN_CONFIG: [a-z0-9_]{1,32}
CONSENT_SOURCE = 16

# The ledger's text column has no length of its own; this bounds what the API records in it.
CONSENT_TEXT = 10_000  # the wording a person saw; a notice longer than this is a mistake

# An Idempotency-Key as the client sends it, and as stored: the API token's fingerprint (8),
# ':' and the client's key, with room to spare.
IDEMPOTENCY_CLIENT_KEY = 255
IDEMPOTENCY_KEY = 300

# Integer columns holding Meta's numbers (error codes) are 64-bit.
BIGINT_MIN = -(2**63)
BIGINT_MAX = 2**63 - 1
