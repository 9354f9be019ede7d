"""PostgreSQL for the operator tools: a small pool opened on first use, errors that say why.

The console keeps one for its lifetime and the commands one per run; either way a server
that is down when the tool starts is reported on the page or command that needs it, not
at start.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from qikflow.operations.errors import DatabaseUnavailableError

CONNECT_TIMEOUT_S = 5.0
POOL_SIZE = 4


def describe_url(url: str) -> str:
    """`host:port/database` of a PostgreSQL URL, without its credentials."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path or ''}"


class Database:
    """Queries against the qikflow tables; every failure is a DatabaseUnavailableError."""

    def __init__(self, url: str | None, *, pool_size: int = POOL_SIZE) -> None:
        self.url = url
        self.pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    @property
    def where(self) -> str:
        return describe_url(self.url) if self.url else "(QIKFLOW_DATABASE_URL not set)"

    async def _opened(self) -> asyncpg.Pool:
        if self.url is None:
            raise DatabaseUnavailableError(
                "QIKFLOW_DATABASE_URL is not set: messages and rows come from the PostgreSQL "
                "of the postgres sink; set it to that database's URL")
        async with self._lock:
            if self._pool is None:
                try:
                    self._pool = await asyncpg.create_pool(
                        self.url, min_size=0, max_size=self.pool_size,
                        timeout=CONNECT_TIMEOUT_S)
                except (OSError, TimeoutError, asyncpg.PostgresError,
                        asyncpg.InterfaceError) as error:
                    raise self._unavailable(error) from error
            return self._pool

    def _unavailable(self, error: BaseException) -> DatabaseUnavailableError:
        if isinstance(error, asyncpg.UndefinedTableError):
            return DatabaseUnavailableError(
                f"PostgreSQL at {self.where} has no qikflow tables ({error}): run "
                "`qikflow db migrate` or start the postgres sink")
        return DatabaseUnavailableError(
            f"PostgreSQL at {self.where} did not answer ({type(error).__name__}: {error})")

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        pool = await self._opened()
        try:
            rows: list[asyncpg.Record] = await pool.fetch(query, *args,
                                                          timeout=CONNECT_TIMEOUT_S * 2)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            raise self._unavailable(error) from error
        return rows

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
