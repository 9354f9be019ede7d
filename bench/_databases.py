"""Throwaway PostgreSQL databases for the benchmarks: one per run, dropped afterwards."""

from __future__ import annotations

import uuid

import asyncpg


async def fresh_database(admin_url: str) -> tuple[str, str]:
    """Create an empty database on the server of `admin_url`; return (name, its URL)."""
    name = f"bench_{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return name, admin_url.rsplit("/", 1)[0] + f"/{name}"


async def drop_database(admin_url: str, name: str) -> None:
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()
