"""HTTP Basic credentials, shared by the webhook endpoint and the console.

Credentials are `user:password` pairs, comma-separated in a variable or one a line in a
file (`#` starts a comment line). Several pairs may be valid at once, so one can be rotated
without downtime. A request is checked against every pair in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from pathlib import Path

from pydantic import SecretStr

Pair = tuple[bytes, bytes]


class CredentialsError(ValueError):
    """The configured credentials cannot be read or parsed; the message names the setting."""


def read_pairs(inline: SecretStr | None, file: Path | None, *, variable: str) -> tuple[Pair, ...]:
    """The pairs of `variable` (inline, comma-separated) and of `<variable>_FILE`.

    A malformed pair raises `CredentialsError` without showing the value.
    """
    lines: list[str] = []
    if inline is not None:
        lines += inline.get_secret_value().split(",")
    if file is not None:
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as error:
            raise CredentialsError(
                f"cannot read {variable}_FILE {file}: {error.strerror}") from error
        lines += [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    return tuple(_pair(line, variable) for line in lines if line.strip())


def _pair(line: str, variable: str) -> Pair:
    user, separator, password = line.strip().partition(":")
    if not separator or not user or not password:
        raise CredentialsError(
            f"a credential in {variable} is not in `user:password` form (value not shown)")
    return user.encode(), password.encode()


def authenticate(pairs: tuple[Pair, ...], authorization: str | None) -> tuple[bytes | None, str]:
    """(the user, "") when the `Authorization` header matches a pair, else (None, why).

    `why` is "missing", "malformed" or "wrong" (a label of the auth-failure metrics).
    """
    if not authorization:
        return None, "missing"
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None, "malformed"
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None, "malformed"
    user, separator, password = decoded.partition(b":")
    if not separator:
        return None, "malformed"
    # Compare against every pair without stopping early, so timing does not reveal which
    # user exists or how much of a password matched.
    matched = False
    for known_user, known_password in pairs:
        user_ok = hmac.compare_digest(user, known_user)
        password_ok = hmac.compare_digest(password, known_password)
        matched |= user_ok and password_ok
    return (user, "") if matched else (None, "wrong")
