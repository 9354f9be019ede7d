"""Who may use the console: Basic Auth against `QIKFLOW_CONSOLE_USERS`, and CSRF tokens.

The credentials are the console's own, in the webhook users' format (`user:password`,
several pairs to rotate one without downtime), compared in constant time against every
pair. Without any, the console serves only a loopback address, and only with
`QIKFLOW_CONSOLE_ALLOW_ANONYMOUS=true`. Every POST carries a CSRF token, an HMAC of the
user name under a key drawn when the process starts: a page of another site cannot read
it, so it cannot make an operator's browser re-drive anything.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass

from qikflow.basic_auth import CredentialsError, Pair, authenticate, read_pairs
from qikflow.console.settings import ConsoleSettings

ANONYMOUS = "anonymous"


class ConsoleConfigError(RuntimeError):
    """The console cannot start as configured; the message says what to set."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ConsoleUsers:
    """The accepted `user:password` pairs; none means anonymous (loopback only)."""

    pairs: tuple[Pair, ...]

    @property
    def anonymous(self) -> bool:
        return not self.pairs

    @classmethod
    def from_settings(cls, settings: ConsoleSettings, host: str) -> ConsoleUsers:
        try:
            pairs = read_pairs(settings.users, settings.users_file,
                               variable="QIKFLOW_CONSOLE_USERS")
        except CredentialsError as error:
            raise ConsoleConfigError(str(error)) from error
        if pairs:
            return cls(pairs)
        if not settings.allow_anonymous:
            raise ConsoleConfigError(
                "no console credentials: set QIKFLOW_CONSOLE_USERS=user:password (or "
                "QIKFLOW_CONSOLE_USERS_FILE); on a loopback address "
                "QIKFLOW_CONSOLE_ALLOW_ANONYMOUS=true serves without them")
        if not is_loopback(host):
            raise ConsoleConfigError(
                f"refusing to serve {host} without credentials: "
                "QIKFLOW_CONSOLE_ALLOW_ANONYMOUS=true is only for a loopback address "
                "(--host 127.0.0.1); set QIKFLOW_CONSOLE_USERS to serve others")
        return cls(())

    def user(self, authorization: str | None) -> tuple[str | None, str]:
        """(the user name, "") when `authorization` matches a pair, else (None, why)."""
        if self.anonymous:
            return ANONYMOUS, ""
        name, why = authenticate(self.pairs, authorization)
        if name is None:
            return None, why
        return name.decode("utf-8", "replace"), ""


class CsrfTokens:
    """Tokens for the forms of one process: HMAC-SHA256 of the user under a random key."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def token(self, user: str) -> str:
        return hmac.new(self._key, user.encode(), hashlib.sha256).hexdigest()

    def valid(self, user: str, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.token(user), str(token))
