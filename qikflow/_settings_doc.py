"""Renders docs/configuration.md from the settings classes: one table of variables each.

    python -m qikflow._settings_doc > docs/configuration.md
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from ingest.settings import IngestSettings
from qikflow.config import KafkaSettings, StateSettings
from qikflow.console.settings import ConsoleSettings
from sinks.settings import SinkSettings
from streams.settings import StreamsSettings

SETTINGS_CLASSES: tuple[type[BaseSettings], ...] = (
    KafkaSettings,
    StateSettings,
    IngestSettings,
    StreamsSettings,
    SinkSettings,
    ConsoleSettings,
)

# Read with os.environ by the command line rather than by a settings class.
CLI_VARIABLES: tuple[tuple[str, str, str], ...] = (
    ("QIKFLOW_LOG_LEVEL", "INFO", "Log level of every command: DEBUG, INFO, WARNING or ERROR."),
    ("QIKFLOW_SIMULATE_USER", "unset", "Basic Auth user of `qikflow simulate`."),
    ("QIKFLOW_SIMULATE_PASSWORD", "unset", "Basic Auth password of `qikflow simulate`."),
)

HEADER = """\
# Configuration

Every qikflow process reads its settings from `QIKFLOW_*` environment variables when it
starts. This page is generated from the settings classes; do not edit it by hand:

    python -m qikflow._settings_doc > docs/configuration.md

Secrets (`secret` below) are never logged and never shown here. With Docker Compose, put
the variables in `.env` (start from `.env.example`); see [deploy.md](deploy.md).
"""


def env_name(settings: type[BaseSettings], name: str, field: FieldInfo) -> str:
    """The environment variable of one field: its alias, else the prefix and its name."""
    if isinstance(field.validation_alias, str):
        return field.validation_alias.upper()
    prefix = str(settings.model_config.get("env_prefix", ""))
    return f"{prefix}{name}".upper()


def variables(settings: type[BaseSettings]) -> list[str]:
    """Every environment variable `settings` reads."""
    return [env_name(settings, name, field) for name, field in settings.model_fields.items()]


def all_variables() -> set[str]:
    """Every `QIKFLOW_*` variable qikflow reads, from the settings classes and the CLI."""
    names = {name for settings in SETTINGS_CLASSES for name in variables(settings)}
    return names | {name for name, _, _ in CLI_VARIABLES}


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        inner = " or ".join(_type_name(arg) for arg in args)
        return f"{inner}, optional" if len(args) < len(get_args(annotation)) else inner
    if origin is Literal:
        return "one of " + ", ".join(f"`{value}`" for value in get_args(annotation))
    if annotation is SecretStr:
        return "secret"
    if isinstance(annotation, type) and issubclass(annotation, Path):
        return "path"
    return getattr(annotation, "__name__", str(annotation))


@contextmanager
def _without_qikflow_env() -> Iterator[None]:
    """Defaults computed from other settings are shown as they are with no variables set."""
    saved = {key: value for key, value in os.environ.items() if key.startswith("QIKFLOW_")}
    for key in saved:
        del os.environ[key]
    try:
        yield
    finally:
        os.environ.update(saved)


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        with _without_qikflow_env():
            value: Any = field.default_factory()  # type: ignore[call-arg]
        return f"`{_value_text(value)}` (computed)"
    value = field.default
    if value is None:
        return "unset"
    if isinstance(value, SecretStr):
        return "set (secret)"
    return f"`{_value_text(value)}`" if _value_text(value) else '`""` (empty)'


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _cell(text: str) -> str:
    """One table cell: one line, pipes escaped, `<` escaped outside code spans."""
    parts = " ".join(text.split()).replace("|", "\\|").split("`")
    return "`".join(part if i % 2 else part.replace("<", "&lt;") for i, part in enumerate(parts))


def render_class(settings: type[BaseSettings]) -> str:
    doc = (settings.__doc__ or "").strip().split("\n\n")[0]
    lines = [
        f"## {settings.__name__}",
        "",
        _cell(doc),
        "",
        "| variable | type | default | description |",
        "| --- | --- | --- | --- |",
    ]
    for name, field in settings.model_fields.items():
        lines.append(
            f"| `{env_name(settings, name, field)}` | {_cell(_type_name(field.annotation))} "
            f"| {_cell(_default(field))} | {_cell(field.description or '')} |"
        )
    return "\n".join(lines) + "\n"


def render_cli() -> str:
    lines = [
        "## Command line",
        "",
        "Read by the `qikflow` command itself rather than by a settings class.",
        "",
        "| variable | default | description |",
        "| --- | --- | --- |",
    ]
    for name, default, description in CLI_VARIABLES:
        lines.append(f"| `{name}` | {default} | {_cell(description)} |")
    return "\n".join(lines) + "\n"


def render() -> str:
    """The whole of docs/configuration.md."""
    sections = [HEADER, *(render_class(settings) for settings in SETTINGS_CLASSES), render_cli()]
    return "\n".join(sections)


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
