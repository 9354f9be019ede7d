"""Versioned migrations on the real PostgreSQL: once, race-free, tamper-evident."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import asyncpg
import pytest

from sinks.migrate import MigrationError, load_migrations, migrate


async def test_sinks_starting_together_apply_each_migration_once(database_url: str) -> None:
    connections = [await asyncpg.connect(database_url) for _ in range(3)]
    try:
        applied = await asyncio.gather(*(migrate(c) for c in connections))
        again = await migrate(connections[0])
        recorded = await connections[0].fetch("SELECT version, name FROM schema_migrations")
        tables = await connections[0].fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
            "ORDER BY table_name")
    finally:
        for connection in connections:
            await connection.close()
    assert sorted(len(result) for result in applied) == [0, 0, len(load_migrations())]
    assert again == []
    assert [(row["version"], row["name"]) for row in recorded] == [
        (m.version, m.name) for m in load_migrations()]
    assert [row["table_name"] for row in tables] == [
        "contact_optouts", "contact_preferences", "contact_windows", "inbound_messages",
        "message_status_events", "notices", "outbound_messages", "schema_migrations",
        "template_events"]


async def test_an_edited_applied_migration_is_refused(database_url: str) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        await migrate(connection)
        await connection.execute("UPDATE schema_migrations SET checksum = 'edited'")
        with pytest.raises(MigrationError, match="changed after it was applied"):
            await migrate(connection)
    finally:
        await connection.close()


def test_db_migrate_command(database_url: str) -> None:
    command = [sys.executable, "-m", "qikflow", "db", "migrate"]
    env = {**os.environ, "QIKFLOW_DATABASE_URL": database_url}
    first = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    second = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    assert "0001_initial" in first.stdout
    assert "up to date" in second.stdout
