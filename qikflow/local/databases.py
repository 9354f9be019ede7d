"""Throwaway PostgreSQL databases for tests and benchmarks: one per run, dropped afterwards."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg


def with_database(url: str, database: str) -> str:
    """The same server URL with another database name."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


async def create_database(admin_url: str, prefix: str) -> tuple[str, str]:
    """Create an empty database `<prefix>_<random>` on the server of `admin_url`; return
    its name and URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return name, with_database(admin_url, name)


async def drop_database(admin_url: str, name: str) -> None:
    """Drop database `name`, closing any session still connected to it."""
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()
