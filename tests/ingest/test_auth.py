"""Tests of ingest/auth.py: accepted pairs, rotation, refusals, startup rules."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from pydantic import SecretStr

from ingest.auth import AuthFailure, Credentials
from ingest.errors import IngestConfigError
from ingest.settings import IngestSettings


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def settings(**values: object) -> IngestSettings:
    return IngestSettings.model_validate(values)


def test_rotated_credentials_both_accepted() -> None:
    credentials = Credentials.from_settings(
        settings(webhook_users=SecretStr("old:secret1,new:secret2"))
    )
    assert credentials.check(basic("old", "secret1")) is None
    assert credentials.check(basic("new", "secret2")) is None
    assert credentials.check(basic("new", "secret1")) is AuthFailure.WRONG


def test_password_may_contain_colons() -> None:
    credentials = Credentials.from_settings(settings(webhook_users=SecretStr("u:a:b:c")))
    assert credentials.check(basic("u", "a:b:c")) is None


@pytest.mark.parametrize(
    ("header", "failure"),
    [
        (None, AuthFailure.MISSING),
        ("", AuthFailure.MISSING),
        ("Bearer abc", AuthFailure.MALFORMED),
        ("Basic !!!not-base64", AuthFailure.MALFORMED),
        ("Basic " + base64.b64encode(b"no-colon").decode(), AuthFailure.MALFORMED),
        (basic("u", "wrong"), AuthFailure.WRONG),
        (basic("nobody", "p"), AuthFailure.WRONG),
    ],
)
def test_refusals(header: str | None, failure: AuthFailure) -> None:
    credentials = Credentials.from_settings(settings(webhook_users=SecretStr("u:p")))
    assert credentials.check(header) is failure


def test_credentials_from_file(tmp_path: Path) -> None:
    path = tmp_path / "users"
    path.write_text("# rotated 2026-11\nqikchat:first\n\nqikchat:second\n")
    credentials = Credentials.from_settings(settings(webhook_users_file=path))
    assert credentials.check(basic("qikchat", "second")) is None
    assert credentials.check(basic("qikchat", "third")) is AuthFailure.WRONG


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(IngestConfigError, match="QIKFLOW_WEBHOOK_USERS_FILE"):
        Credentials.from_settings(settings(webhook_users_file=tmp_path / "absent"))


def test_refuses_to_start_without_credentials() -> None:
    with pytest.raises(IngestConfigError, match="QIKFLOW_ALLOW_ANONYMOUS"):
        Credentials.from_settings(settings())


def test_anonymous_when_allowed() -> None:
    credentials = Credentials.from_settings(settings(allow_anonymous=True))
    assert credentials.anonymous
    assert credentials.check(None) is None


def test_malformed_pair_does_not_echo_the_secret() -> None:
    with pytest.raises(IngestConfigError) as raised:
        Credentials.from_settings(settings(webhook_users=SecretStr("justatoken-s3cret")))
    assert "s3cret" not in str(raised.value)
