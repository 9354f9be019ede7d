"""Basic Auth for webhooks: several accepted credentials, compared in constant time."""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass
from enum import StrEnum

from ingest.errors import IngestConfigError
from ingest.settings import IngestSettings


class AuthFailure(StrEnum):
    """Why a request was refused (a label of the auth-failure metric)."""

    MISSING = "missing"
    MALFORMED = "malformed"
    WRONG = "wrong"


@dataclass(frozen=True)
class Credentials:
    """The `user:password` pairs accepted by this ingest; empty means anonymous access."""

    pairs: tuple[tuple[bytes, bytes], ...]

    @property
    def anonymous(self) -> bool:
        return not self.pairs

    @classmethod
    def from_settings(cls, settings: IngestSettings) -> Credentials:
        lines: list[str] = []
        if settings.webhook_users is not None:
            lines += settings.webhook_users.get_secret_value().split(",")
        if settings.webhook_users_file is not None:
            try:
                text = settings.webhook_users_file.read_text(encoding="utf-8")
            except OSError as error:
                raise IngestConfigError(
                    f"cannot read QIKFLOW_WEBHOOK_USERS_FILE {settings.webhook_users_file}: "
                    f"{error.strerror}"
                ) from error
            lines += [line for line in text.splitlines() if not line.lstrip().startswith("#")]
        pairs = tuple(_parse_pair(line) for line in lines if line.strip())
        if not pairs and not settings.allow_anonymous:
            raise IngestConfigError(
                "no webhook credentials: set QIKFLOW_WEBHOOK_USERS=user:password (or "
                "QIKFLOW_WEBHOOK_USERS_FILE), or QIKFLOW_ALLOW_ANONYMOUS=true to accept "
                "unauthenticated webhooks"
            )
        return cls(pairs)

    def check(self, authorization: str | None) -> AuthFailure | None:
        """None when the `Authorization` header matches an accepted pair."""
        if self.anonymous:
            return None
        if not authorization:
            return AuthFailure.MISSING
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            return AuthFailure.MALFORMED
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return AuthFailure.MALFORMED
        user, separator, password = decoded.partition(b":")
        if not separator:
            return AuthFailure.MALFORMED
        # Compare against every pair without stopping early, so timing does not reveal
        # which user exists or how much of a password matched.
        matched = False
        for known_user, known_password in self.pairs:
            user_ok = hmac.compare_digest(user, known_user)
            password_ok = hmac.compare_digest(password, known_password)
            matched |= user_ok and password_ok
        return None if matched else AuthFailure.WRONG


def _parse_pair(line: str) -> tuple[bytes, bytes]:
    user, separator, password = line.strip().partition(":")
    if not separator or not user or not password:
        raise IngestConfigError(
            "a webhook credential is not in `user:password` form (value not shown)"
        )
    return user.encode(), password.encode()
