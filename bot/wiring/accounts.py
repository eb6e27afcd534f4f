"""Who may use the console and the API, and with which rights: CONSOLE_USERS and API_TOKENS.

Both are read once at start-up; a malformed entry raises ValueError naming the entry by its
position, never repeating a password hash or a token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.wiring.logmask import fingerprint

SUPPORT = "support"
ADMIN = "admin"
ROLES = (SUPPORT, ADMIN)
HASH_METHODS = ("scrypt", "pbkdf2")

# What an API token may do; a bare token (no name, no scopes) may do all of it.
SCOPES = ("read", "send", "consent", "erase")
CONSOLE_USERNAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")
TOKEN_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass(frozen=True, slots=True)
class ConsoleAccounts:
    users: tuple[tuple[str, str], ...] = ()  # (username, werkzeug password hash)
    admins: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class ApiToken:
    token: str = field(repr=False)
    scopes: frozenset[str] = frozenset(SCOPES)
    name: str | None = None

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.token)

    @property
    def label(self) -> str:
        """How logs and the audit log name the token: its fingerprint, and its name if any."""
        return f"{self.name} ({self.fingerprint})" if self.name else self.fingerprint


def parse_console_users(raw: str | None) -> ConsoleAccounts:
    """`username:role:hash` or `username:hash` (role support), comma-separated.

    werkzeug hashes contain ':' and '$' themselves ("scrypt:32768:8:1$salt$hex"), so the entry
    is split on its first ':' and a role is recognised only by name.
    """
    if raw is None:
        return ConsoleAccounts()
    users: list[tuple[str, str]] = []
    admins: set[str] = set()
    for position, entry in enumerate(raw.split(","), start=1):
        username, _, rest = entry.strip().partition(":")
        where = f"CONSOLE_USERS entry {position}"
        if not CONSOLE_USERNAME.fullmatch(username):
            raise ValueError(
                f"{where}: expected username:role:password_hash with a username of letters, "
                "digits and . _ @ - (at most 64)"
            )
        role, _, password_hash = rest.partition(":")
        if role in HASH_METHODS:
            role, password_hash = SUPPORT, rest
        elif role not in ROLES:
            raise ValueError(f"{where} ({username}): the role must be support or admin")
        if not _looks_like_password_hash(password_hash):
            raise ValueError(
                f"{where} ({username}): the password hash is not werkzeug's "
                "generate_password_hash output; make one with `flask --app wsgi console "
                "hash-password`"
            )
        if any(known == username for known, _ in users):
            raise ValueError(f"{where}: username {username!r} is listed twice")
        users.append((username, password_hash))
        if role == ADMIN:
            admins.add(username)
    return ConsoleAccounts(users=tuple(users), admins=frozenset(admins))


def _looks_like_password_hash(value: str) -> bool:
    """werkzeug's format: method$salt$hash, the method being scrypt:... or pbkdf2:..."""
    parts = value.split("$")
    return len(parts) == 3 and parts[0].split(":")[0] in HASH_METHODS and all(parts)


def parse_api_tokens(raw: str | None) -> tuple[ApiToken, ...]:
    """Bare tokens, or `name:scope+scope:token`, comma-separated.

    An entry with a ':' must be the named form: a typo in a scope then stops start-up instead of
    silently granting every scope.
    """
    tokens: list[ApiToken] = []
    for position, entry in enumerate((raw or "").split(","), start=1):
        entry = entry.strip()
        if not entry:
            continue
        where = f"API_TOKENS entry {position}"
        if ":" not in entry:
            tokens.append(ApiToken(token=entry))
            continue
        name, _, rest = entry.partition(":")
        scope_list, _, token = rest.partition(":")
        if not TOKEN_NAME.fullmatch(name) or not token:
            raise ValueError(
                f"{where}: expected a bare token or name:scope+scope:token, with a name of "
                "letters, digits and . _ - (at most 64)"
            )
        scopes = scope_list.split("+")
        unknown = [s for s in scopes if s not in SCOPES]
        if unknown or not scope_list:
            raise ValueError(
                f"{where} ({name}): scopes must be some of {', '.join(SCOPES)} joined by '+'"
            )
        if any(t.name == name for t in tokens):
            raise ValueError(f"{where}: the name {name!r} is used twice")
        tokens.append(ApiToken(token=token, scopes=frozenset(scopes), name=name))
    if len({t.token for t in tokens}) != len(tokens):
        raise ValueError("API_TOKENS: a token is listed twice")
    return tuple(tokens)
