"""Who may use the console: credentials, rotation, anonymous only on loopback, CSRF tokens;
and `qikflow console` refusing to start without credentials on a non-loopback address."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from qikflow.console.auth import ANONYMOUS, ConsoleConfigError, ConsoleUsers, CsrfTokens
from qikflow.console.settings import ConsoleSettings
from qikflow.local._process import bind_error
from tests._ports import free_port

QIKFLOW = str(Path(sys.executable).with_name("qikflow"))


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_two_pairs_rotate_a_credential_and_a_file_adds_more(tmp_path: Path) -> None:
    extra = tmp_path / "users"
    extra.write_text("# on-call\nnight:owl\n")
    users = ConsoleUsers.from_settings(
        ConsoleSettings(users=SecretStr("ops:old,ops:new"), users_file=extra), "0.0.0.0")
    assert users.user(_basic("ops", "old")) == ("ops", "")
    assert users.user(_basic("ops", "new")) == ("ops", "")
    assert users.user(_basic("night", "owl")) == ("night", "")
    assert users.user(_basic("ops", "other")) == (None, "wrong")
    assert users.user(None) == (None, "missing")
    assert users.user("Bearer abc") == (None, "malformed")
    assert users.user("Basic ***") == (None, "malformed")
    assert users.user("Basic " + base64.b64encode(b"no-colon").decode()) == (None, "malformed")


def test_a_malformed_pair_is_refused_without_showing_it() -> None:
    with pytest.raises(ConsoleConfigError, match="not in `user:password` form") as caught:
        ConsoleUsers.from_settings(ConsoleSettings(users=SecretStr("ops-secret-value")),
                                   "127.0.0.1")
    assert "ops-secret-value" not in str(caught.value)
    with pytest.raises(ConsoleConfigError, match="cannot read QIKFLOW_CONSOLE_USERS_FILE"):
        ConsoleUsers.from_settings(ConsoleSettings(users_file=Path("/nonexistent/users")),
                                   "127.0.0.1")


@pytest.mark.parametrize("host", ["127.0.0.1", "127.9.9.9", "::1", "[::1]", "localhost"])
def test_anonymous_only_on_a_loopback_address(host: str) -> None:
    users = ConsoleUsers.from_settings(ConsoleSettings(allow_anonymous=True), host)
    assert users.anonymous and users.user(None) == (ANONYMOUS, "")


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "console.internal"])
def test_anonymous_is_refused_anywhere_else(host: str) -> None:
    with pytest.raises(ConsoleConfigError, match=f"refusing to serve {host} without"):
        ConsoleUsers.from_settings(ConsoleSettings(allow_anonymous=True), host)


def test_no_credentials_and_no_anonymous_is_refused() -> None:
    with pytest.raises(ConsoleConfigError, match="no console credentials"):
        ConsoleUsers.from_settings(ConsoleSettings(), "127.0.0.1")


def test_csrf_tokens_are_per_user_and_per_process() -> None:
    tokens, other = CsrfTokens(), CsrfTokens()
    assert tokens.valid("ops", tokens.token("ops"))
    assert not tokens.valid("night", tokens.token("ops"))
    assert not other.valid("ops", tokens.token("ops"))
    assert not tokens.valid("ops", None) and not tokens.valid("ops", "")


def test_the_console_refuses_to_start_without_credentials_on_a_public_address(
        tmp_path: Path) -> None:
    port = free_port()
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("QIKFLOW_CONSOLE_")}
    env.update(QIKFLOW_CONSOLE_ALLOW_ANONYMOUS="true",
               QIKFLOW_CONSOLE_AUDIT_FILE=str(tmp_path / "audit.jsonl"))
    started = subprocess.run([QIKFLOW, "console", "--host", "0.0.0.0", "--port", str(port)],
                             env=env, capture_output=True, text=True, timeout=60)
    assert started.returncode == 2
    assert "refusing to serve 0.0.0.0 without credentials" in started.stderr
    assert bind_error("0.0.0.0", port) is None  # it never listened
    del env["QIKFLOW_CONSOLE_ALLOW_ANONYMOUS"]
    plain = subprocess.run([QIKFLOW, "console", "--port", str(port)], env=env,
                           capture_output=True, text=True, timeout=60)
    assert plain.returncode == 2 and "no console credentials" in plain.stderr
