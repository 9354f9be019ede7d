"""The deployment files, checked without Docker: compose.yaml, the Dockerfile, the proxy, docs.

compose.yaml is interpolated with `.env.example` the way Compose does it, so a command,
a replica count or a variable that only breaks after `cp .env.example .env` fails here.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from ingest.server import GRACEFUL_SHUTDOWN_S, KEEP_ALIVE_S
from ingest.settings import IngestSettings
from qikflow._settings_doc import (
    SETTINGS_CLASSES,
    all_variables,
    render,
    render_class,
    variables,
)
from qikflow.cli import build_parser
from qikflow.simulate.sender import KEEPALIVE_EXPIRY_S
from streams.worker import STOP_TIMEOUT_S

ROOT = Path(__file__).resolve().parents[1]
QIKCHAT_TIMEOUT_MS = 2000
QIKFLOW_IMAGE = "qikflow:local"
VARIABLE = re.compile(r"\bQIKFLOW_[A-Z0-9_]*[A-Z0-9]\b")


def read(name: str) -> str:
    return (ROOT / name).read_text()


def env_example() -> dict[str, str]:
    """The assignments of `.env.example`, as Compose reads a `.env` file."""
    values: dict[str, str] = {}
    for line in read(".env.example").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


class Interpolation:
    """Compose's `${NAME}`, `${NAME:-default}`, `${NAME:?error}`, nesting and `$$`."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.used: set[str] = set()

    def __call__(self, text: str) -> str:
        out: list[str] = []
        i = 0
        while i < len(text):
            if text.startswith("$$", i):
                out.append("$")
                i += 2
            elif text.startswith("${", i):
                end = self._closing(text, i + 2)
                out.append(self._expand(text[i + 2:end]))
                i = end + 1
            else:
                assert not re.match(r"\$[A-Za-z_]", text[i:]), f"unbraced variable in {text!r}"
                out.append(text[i])
                i += 1
        return "".join(out)

    @staticmethod
    def _closing(text: str, start: int) -> int:
        depth = 1
        for i in range(start, len(text)):
            if text.startswith("${", i):
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    return i
        raise AssertionError(f"unclosed ${{ in {text!r}")

    def _expand(self, expression: str) -> str:
        match = re.match(r"[A-Za-z_][A-Za-z0-9_]*", expression)
        assert match, f"bad variable expression ${{{expression}}}"
        name, rest = match.group(), expression[match.end():]
        self.used.add(name)
        value = self.env.get(name)
        if rest.startswith((":-", ":?")):
            operator, argument = rest[:2], rest[2:]
            present = bool(value)
        elif rest.startswith(("-", "?")):
            operator, argument = rest[:1], rest[1:]
            present = value is not None
        else:
            assert not rest, f"unsupported ${{{expression}}}"
            assert value is not None, f"${{{name}}} has no default and is not in .env.example"
            return value
        if present:
            return value or ""
        assert "?" not in operator, f"${{{name}}} is required: {argument}"
        return self(argument)


def interpolated(node: Any, interpolate: Interpolation) -> Any:
    if isinstance(node, str):
        return interpolate(node)
    if isinstance(node, list):
        return [interpolated(item, interpolate) for item in node]
    if isinstance(node, dict):
        return {key: interpolated(value, interpolate) for key, value in node.items()}
    return node


def compose(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    raw = yaml.safe_load(read("compose.yaml"))
    assert isinstance(raw, dict)
    result: dict[str, Any] = interpolated(raw, Interpolation(env_example() if env is None else env))
    return result


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def qikflow_services() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services().items() if s.get("image") == QIKFLOW_IMAGE}


def by_command(*words: str) -> dict[str, dict[str, Any]]:
    return {
        name: s for name, s in qikflow_services().items()
        if s["command"][: len(words)] == list(words)
    }


def replicas(service: dict[str, Any]) -> int:
    return int(service.get("deploy", {}).get("replicas", 1))


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment is a mapping in compose.yaml"
    return {key: str(value) for key, value in env.items()}


def seconds(duration: str) -> float:
    """A Compose or Caddy duration (`30s`, `1m30s`, `400ms`) in seconds."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"bad duration {duration}"
    unit = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(number) * unit[suffix] for number, suffix in parts)


def named_volume_at(service: dict[str, Any], target: str) -> str:
    volumes = compose()["volumes"]
    for mount in service.get("volumes", []):
        source, _, rest = str(mount).partition(":")
        if rest.split(":")[0] == target:
            assert source in volumes, f"{source} mounted at {target} is not a named volume"
            return source
    raise AssertionError(f"nothing mounted at {target}")


# -- compose.yaml ----------------------------------------------------------------------


def test_compose_has_every_role() -> None:
    found = services()
    kafka = found["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    kafka_env = environment(kafka)
    assert "controller" in kafka_env["KAFKA_PROCESS_ROLES"]
    assert kafka_env["KAFKA_CONTROLLER_QUORUM_VOTERS"] and kafka_env["CLUSTER_ID"]
    assert not any("ZOOKEEPER" in key for key in kafka_env)
    assert found["postgres"]["image"].startswith("postgres:")
    assert "proxy" in found
    ingest = by_command("ingest")
    assert sum(replicas(s) for s in ingest.values()) >= 2
    assert by_command("worker") and by_command("db", "migrate")
    assert set(by_command("sink", "postgres")) == {"sink-postgres"}
    assert set(by_command("sink", "lake")) == {"sink-lake"}
    # The lake sink locks its staging file: a second process would only wait.
    assert replicas(found["sink-lake"]) == 1


def test_every_qikflow_command_exists_with_its_flags() -> None:
    parser = build_parser()
    for name, service in qikflow_services().items():
        command = [str(word) for word in service["command"]]
        args = parser.parse_args(command)  # exits (fails the test) on an unknown flag
        assert callable(args.handler), name
        replicas(service)  # an interpolated replica count is a number


def test_every_qikflow_variable_is_a_setting_and_documented() -> None:
    known = all_variables()
    documented = read("docs/configuration.md")
    files = [".env.example", "compose.yaml", "Dockerfile", "deploy/Caddyfile"]
    used = {name for file in files for name in VARIABLE.findall(read(file))}
    assert {"QIKFLOW_WEBHOOK_USERS", "QIKFLOW_KAFKA_SECURITY_PROTOCOL"} <= used
    for name in sorted(used):
        assert name in known, f"{name} is used by the deployment but no setting reads it"
        assert f"`{name}`" in documented, f"{name} is missing from docs/configuration.md"


def test_every_compose_variable_is_in_env_example_and_deploy_doc() -> None:
    interpolate = Interpolation(env_example())
    interpolated(yaml.safe_load(read("compose.yaml")), interpolate)
    example, guide = env_example(), read("docs/deploy.md")
    for name in sorted(interpolate.used - all_variables()):
        assert name in example, f"${{{name}}} in compose.yaml is not set in .env.example"
        assert name in guide, f"${{{name}}} in compose.yaml is not explained in docs/deploy.md"
    proxy_env = environment(services()["proxy"])
    for name in re.findall(r"\{\$([A-Z0-9_]+)", read("deploy/Caddyfile")):
        assert name in proxy_env, f"the Caddyfile reads {name}; the proxy service does not set it"


def test_health_checks() -> None:
    found = services()
    for name in ["kafka", "postgres", *qikflow_services()]:
        if name == "migrate":
            continue
        assert found[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    for name, service in by_command("ingest").items():
        assert "/readyz" in " ".join(service["healthcheck"]["test"]), name


def test_state_lives_in_named_volumes() -> None:
    found = services()
    named_volume_at(found["kafka"], environment(found["kafka"])["KAFKA_LOG_DIRS"])
    named_volume_at(found["postgres"], "/var/lib/postgresql/data")
    for service in by_command("ingest").values():
        named_volume_at(service, environment(service)["QIKFLOW_SPOOL_DIR"])
    lake = found["sink-lake"]
    named_volume_at(lake, environment(lake)["QIKFLOW_LAKE_DIR"])


def test_stop_grace_outlasts_the_shutdown_of_each_role() -> None:
    for service in by_command("ingest").values():
        assert seconds(service["stop_grace_period"]) > GRACEFUL_SHUTDOWN_S
    for service in by_command("worker").values():
        assert seconds(service["stop_grace_period"]) > STOP_TIMEOUT_S


def test_external_kafka_and_postgres_come_from_env() -> None:
    env = {**env_example(), "QIKFLOW_KAFKA_BOOTSTRAP": "k1:9093",
           "QIKFLOW_DATABASE_URL": "postgresql://u:p@db:5432/q"}
    external = compose(env)["services"]
    local = services()
    for name, service in qikflow_services().items():
        if name != "migrate":
            assert environment(service)["QIKFLOW_KAFKA_BOOTSTRAP"] == "kafka:9092"
            assert environment(external[name])["QIKFLOW_KAFKA_BOOTSTRAP"] == "k1:9093"
    for name in ("migrate", "sink-postgres"):
        user, password = env_example()["POSTGRES_USER"], env_example()["POSTGRES_PASSWORD"]
        assert environment(local[name])["QIKFLOW_DATABASE_URL"].startswith(
            f"postgresql://{user}:{password}@postgres:5432/")
        assert environment(external[name])["QIKFLOW_DATABASE_URL"] == env["QIKFLOW_DATABASE_URL"]


# -- the proxy -------------------------------------------------------------------------


def caddy_setting(caddyfile: str, name: str) -> str:
    match = re.search(rf"^\s*{name}\s+(.+?)\s*$", caddyfile, re.MULTILINE)
    assert match, f"{name} missing from deploy/Caddyfile"
    return match.group(1)


def test_proxy_sends_webhooks_to_every_ingest_replica() -> None:
    proxy = environment(services()["proxy"])
    upstreams = set(proxy["INGEST_UPSTREAMS"].split())
    expected = {
        f"{name}:{service['command'][service['command'].index('--port') + 1]}"
        for name, service in by_command("ingest").items()
    }
    assert upstreams == expected
    caddyfile = read("deploy/Caddyfile")
    default = " ".join(sorted(expected))
    assert caddy_setting(caddyfile, "to") == "{$INGEST_UPSTREAMS:" + default + "}"
    assert caddy_setting(caddyfile, "health_uri") == "/readyz"


def test_proxy_body_limit_matches_the_ingest() -> None:
    limit = IngestSettings.model_fields["max_body_bytes"].default
    caddyfile = read("deploy/Caddyfile")
    assert caddy_setting(caddyfile, "max_size") == "{$QIKFLOW_MAX_BODY_BYTES:" + f"{limit}" + "}"
    assert int(environment(services()["proxy"])["QIKFLOW_MAX_BODY_BYTES"]) == int(
        env_example()["QIKFLOW_MAX_BODY_BYTES"])


def test_proxy_answers_within_qikchats_timeout() -> None:
    caddyfile = read("deploy/Caddyfile")
    dial = seconds(caddy_setting(caddyfile, "dial_timeout"))
    retrying = seconds(caddy_setting(caddyfile, "lb_try_duration"))
    answer = seconds(caddy_setting(caddyfile, "response_header_timeout"))
    assert (dial + retrying + answer) * 1000 < QIKCHAT_TIMEOUT_MS
    ack_timeout_ms = int(env_example()["QIKFLOW_ACK_TIMEOUT_MS"])
    assert ack_timeout_ms == IngestSettings.model_fields["ack_timeout_ms"].default
    # The ingest answers once Kafka acked or the spool fsynced: allow the fsync on top.
    assert answer * 1000 >= ack_timeout_ms + 200


# -- the image -------------------------------------------------------------------------


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", dockerfile)
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines if line and not line.startswith("#")
    ]


def test_dockerfile() -> None:
    steps = instructions(read("Dockerfile"))
    assert all(arg.split()[0] == "python:3.11-slim" for op, arg in steps if op == "FROM")
    users = [arg for op, arg in steps if op == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert any(op == "RUN" and "pip install ." in arg for op, arg in steps)
    scripts = tomllib.loads(read("pyproject.toml"))["project"]["scripts"]
    entrypoint = json.loads(next(arg for op, arg in steps if op == "ENTRYPOINT"))
    assert entrypoint == ["qikflow"] and "qikflow" in scripts
    body = " ".join(arg for _, arg in steps).lower()
    for word in ("broker fetch", ".jar", "openjdk", "temurin", "maven", "default-jre"):
        assert word not in body, f"the image must not carry Kafka or Java ({word})"
    # Every service is built from this Dockerfile.
    assert all(s.get("build") == "." for s in qikflow_services().values())


def test_dockerignore_keeps_local_state_out() -> None:
    ignored = {line.strip().rstrip("/") for line in read(".dockerignore").splitlines()}
    assert {".venv", ".qikflow", ".env", ".git"} <= ignored


# -- docs ------------------------------------------------------------------------------


def test_configuration_doc_is_fresh() -> None:
    assert read("docs/configuration.md") == render(), (
        "docs/configuration.md is stale: python -m qikflow._settings_doc > docs/configuration.md"
    )


def test_every_setting_is_documented() -> None:
    docs = read("README.md") + read("docs/configuration.md")
    for settings in SETTINGS_CLASSES:
        for name in variables(settings):
            assert name in docs, f"{settings.__name__}: {name} is documented nowhere"


class _SecretSettings(BaseSettings):
    """Settings with a secret default."""

    model_config = SettingsConfigDict(env_prefix="QIKFLOW_TEST_")

    token: SecretStr = Field(SecretStr("hunter2"), description="A token.")


def test_secret_defaults_are_never_rendered() -> None:
    table = render_class(_SecretSettings)
    assert "hunter2" not in table
    assert "| `QIKFLOW_TEST_TOKEN` | secret | set (secret) | A token. |" in table


def test_readme_points_to_the_deploy_and_configuration_docs() -> None:
    readme = read("README.md")
    assert "(docs/deploy.md)" in readme and "(docs/configuration.md)" in readme
    guide = read("docs/deploy.md")
    for name in ("QIKFLOW_TOPIC_PARTITIONS", "QIKFLOW_TOPIC_REPLICATION_FACTOR",
                 "QIKFLOW_KAFKA_SECURITY_PROTOCOL", "QIKFLOW_KAFKA_SASL_MECHANISM",
                 "QIKFLOW_KAFKA_SSL_CAFILE", "QIKFLOW_SPOOL_DIR"):
        assert name in guide, f"docs/deploy.md does not mention {name}"


def test_clients_give_up_idle_connections_before_the_ingest_closes_them() -> None:
    """The HTTP/1.1 keep-alive race: a request sent on a connection at the moment the
    ingest closes it idle gets no answer. The shipped proxy and the simulator close their
    idle connections first."""
    caddy = re.search(r"^\s*keepalive (\d+)s$", read("deploy/Caddyfile"), re.MULTILINE)
    assert caddy is not None, "deploy/Caddyfile sets no upstream keepalive"
    assert int(caddy.group(1)) < KEEP_ALIVE_S
    assert KEEPALIVE_EXPIRY_S < KEEP_ALIVE_S
