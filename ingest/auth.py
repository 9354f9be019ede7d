"""Basic Auth for webhooks: several accepted credentials, compared in constant time."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ingest.errors import IngestConfigError
from ingest.settings import IngestSettings
from qikflow.basic_auth import CredentialsError, Pair, authenticate, read_pairs


class AuthFailure(StrEnum):
    """Why a request was refused (a label of the auth-failure metric)."""

    MISSING = "missing"
    MALFORMED = "malformed"
    WRONG = "wrong"


@dataclass(frozen=True)
class Credentials:
    """The `user:password` pairs accepted by this ingest; empty means anonymous access."""

    pairs: tuple[Pair, ...]

    @property
    def anonymous(self) -> bool:
        return not self.pairs

    @classmethod
    def from_settings(cls, settings: IngestSettings) -> Credentials:
        try:
            pairs = read_pairs(settings.webhook_users, settings.webhook_users_file,
                               variable="QIKFLOW_WEBHOOK_USERS")
        except CredentialsError as error:
            raise IngestConfigError(str(error)) from error
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
        user, why = authenticate(self.pairs, authorization)
        return None if user is not None else AuthFailure(why)
