"""PostgresSink: the current state of every message, upserted in batches with asyncpg.

One transaction per batch, one `INSERT ... SELECT FROM unnest(...) ON CONFLICT` per table,
so a batch of thousands of events costs a round trip per table. The upserts are idempotent and
order-independent (see migrations/0001_initial.sql), which at-least-once delivery needs.
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg

from sinks._pg_notices import (
    RESUMED_OPTOUTS,
    UPSERT_NOTICE,
    UPSERT_PREFERENCE,
    UPSERT_TEMPLATE,
)
from sinks._pg_rows import columns, to_rows
from sinks.base import (
    PoisonRecordError,
    Sink,
    SinkError,
    SinkRecord,
    StoreUnavailableError,
)
from sinks.migrate import migrate
from streams.outbound_state import MERGE_RULES, TEXT_FIELDS, Rule

logger = logging.getLogger(__name__)

# SQLSTATE classes caused by the data of a record: data exception, integrity constraint
# violation, program limit exceeded (e.g. a value too large for an index). Any other
# error (connection, shutdown, disk full, missing table) is the store's and passes.
POISON_SQLSTATE_CLASSES = ("22", "23", "54")

UPSERT_INBOUND = """
INSERT INTO inbound_messages (message_id, event_id, account, contact, contact_name,
    business_number, type, text, media_url, mime_type, caption, content, occurred_at,
    received_at, raw, context_message_id, forwarded, frequently_forwarded,
    referred_catalog_id, referred_product_id, referral_source_id, referral_source_type,
    referral_source_url, referral_headline, referral_body, referral_media_type,
    referral_media_url, ctwa_clid, phone_number_id, business_account_id, contact_wa_id,
    contact_user_id, contact_parent_user_id, contact_username, group_id, group_participant,
    original_message_id, flow_name, flow_response)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
    $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::jsonb[],
    $13::timestamptz[], $14::timestamptz[], $15::jsonb[], $16::text[], $17::boolean[],
    $18::boolean[], $19::text[], $20::text[], $21::text[], $22::text[], $23::text[],
    $24::text[], $25::text[], $26::text[], $27::text[], $28::text[], $29::text[],
    $30::text[], $31::text[], $32::text[], $33::text[], $34::text[], $35::text[],
    $36::text[], $37::text[], $38::text[], $39::jsonb[])
ON CONFLICT (message_id) DO NOTHING
"""

UPSERT_STATUS = """
INSERT INTO message_status_events (message_id, status, event_id, account, contact,
    original_status, occurred_at, received_at, error_code, error_title, error_detail,
    conversation_id, pricing_category, raw, pricing_billable, pricing_model, pricing_type,
    conversation_origin, conversation_expires_at, biz_opaque_callback_data, recipient_id,
    errors, phone_number_id, business_account_id, contact_user_id, group_id,
    group_participant)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
    $7::timestamptz[], $8::timestamptz[], $9::bigint[], $10::text[], $11::text[],
    $12::text[], $13::text[], $14::jsonb[], $15::boolean[], $16::text[], $17::text[],
    $18::text[], $19::timestamptz[], $20::text[], $21::text[], $22::jsonb[], $23::text[],
    $24::text[], $25::text[], $26::text[], $27::text[])
ON CONFLICT (message_id, status) DO NOTHING
"""



def _merge_sql(column: str, rule: Rule) -> str:
    """`column = <rule>` over the stored row `o` and the new one; LEAST and GREATEST skip
    NULLs exactly as `OutboundState.merge` skips None."""
    stored, new = f"o.{column}", f"EXCLUDED.{column}"
    if rule is Rule.FIRST_KNOWN:
        known = f"NULLIF({stored}, '')" if column in TEXT_FIELDS else stored
        return f"{column} = COALESCE({known}, {new})"
    if rule is Rule.ANY:
        return f"{column} = {stored} OR {new}"
    if rule is Rule.UNION:
        return f"{column} = {stored} | {new}"
    function = "GREATEST" if rule is Rule.HIGHEST else "LEAST"
    return f"{column} = {function}({stored}, {new})"


UPSERT_OUTBOUND = """
INSERT INTO outbound_messages AS o (message_id, account, contact, status_rank, failed,
    error_code, error_title, sent_at, delivered_at, read_at, failed_at, updated_at,
    pricing_category, statuses, played_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::smallint[], $5::boolean[],
    $6::bigint[], $7::text[], $8::timestamptz[], $9::timestamptz[], $10::timestamptz[],
    $11::timestamptz[], $12::timestamptz[], $13::text[], $14::smallint[],
    $15::timestamptz[])
ON CONFLICT (message_id) DO UPDATE SET
    """ + ",\n    ".join(_merge_sql(column, rule) for column, rule in MERGE_RULES.items())

# The earliest opt-out of a contact wins, whatever order they arrive in.
UPSERT_OPTOUT = """
INSERT INTO contact_optouts AS c (account, contact, contact_name, opted_out_at, message_id,
    event_id, matched, text, received_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[],
    $6::text[], $7::text[], $8::text[], $9::timestamptz[])
ON CONFLICT (account, contact) DO UPDATE SET
    (contact_name, opted_out_at, message_id, event_id, matched, text, received_at) =
    (EXCLUDED.contact_name, EXCLUDED.opted_out_at, EXCLUDED.message_id, EXCLUDED.event_id,
     EXCLUDED.matched, EXCLUDED.text, EXCLUDED.received_at)
    WHERE (EXCLUDED.opted_out_at, EXCLUDED.message_id) < (c.opted_out_at, c.message_id)
"""


# ContactWindow.extend, in SQL: `w` is the stored window, EXCLUDED the batch's.
UPSERT_WINDOW = """
INSERT INTO contact_windows AS w (account, contact, opened_at, last_incoming_at, closes_at,
    last_message_id)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[],
    $5::timestamptz[], $6::text[])
ON CONFLICT (account, contact) DO UPDATE SET
    opened_at = CASE
        WHEN EXCLUDED.last_incoming_at > w.last_incoming_at THEN
            CASE WHEN EXCLUDED.opened_at >= w.closes_at THEN EXCLUDED.opened_at
                 ELSE LEAST(w.opened_at, EXCLUDED.opened_at) END
        WHEN EXCLUDED.closes_at >= w.opened_at THEN LEAST(w.opened_at, EXCLUDED.opened_at)
        ELSE w.opened_at END,
    last_message_id = CASE WHEN EXCLUDED.last_incoming_at > w.last_incoming_at
                           THEN EXCLUDED.last_message_id ELSE w.last_message_id END,
    last_incoming_at = GREATEST(w.last_incoming_at, EXCLUDED.last_incoming_at),
    closes_at = GREATEST(w.closes_at, EXCLUDED.closes_at)
"""


class PostgresSink(Sink):
    """Writes the tables of the operational store; migrates the schema on setup."""

    name = "postgres"

    def __init__(self, database_url: str, *, pool_size: int = 2) -> None:
        self._url = database_url
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None

    async def setup(self) -> None:
        try:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self._url, min_size=1, max_size=self._pool_size, command_timeout=60
                )
            async with self._pool.acquire() as connection:
                applied = await migrate(connection)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as error:
            raise classify(error, "connect and migrate") from error
        logger.info("PostgreSQL store ready (%d migrations applied now)", len(applied))

    async def write(self, batch: list[SinkRecord]) -> None:
        try:
            rows = to_rows(batch)
        except (TypeError, ValueError) as error:  # orjson: an integer beyond 64 bits, ...
            raise PoisonRecordError(
                f"rows of {len(batch)} events failed on a value: {error}; nothing of it "
                "was written"
            ) from error
        statements: list[tuple[str, list[Any]]] = [
            (UPSERT_INBOUND, list(rows.inbound.values())),
            (UPSERT_STATUS, list(rows.statuses.values())),
            (UPSERT_OUTBOUND, list(rows.outbound.values())),
            (UPSERT_OPTOUT, list(rows.optouts.values())),
            (UPSERT_WINDOW, list(rows.windows.values())),
            (UPSERT_NOTICE, list(rows.notices.notices.values())),
            (UPSERT_TEMPLATE, list(rows.notices.templates.values())),
            (UPSERT_PREFERENCE, list(rows.notices.preferences.values())),
        ]
        resumed = rows.optout_contacts() if rows.notices.preferences else []
        if self._pool is None:
            raise StoreUnavailableError("the PostgreSQL pool is not open (setup did not run)")
        try:
            async with self._pool.acquire() as connection, connection.transaction():
                for statement, table_rows in statements:
                    if table_rows:
                        await connection.execute(statement, *columns(table_rows))
                if resumed:
                    await connection.execute(RESUMED_OPTOUTS, [a for a, _ in resumed],
                                             [c for _, c in resumed])
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as error:
            raise classify(error, f"upsert of {len(batch)} events") from error

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


def classify(error: BaseException, action: str) -> SinkError:
    """A store error as a SinkError: poison if the data caused it, retriable otherwise."""
    sqlstate = getattr(error, "sqlstate", None) or ""
    detail = f"{action} failed: {type(error).__name__}: {error}"
    if isinstance(error, asyncpg.PostgresError) and sqlstate[:2] in POISON_SQLSTATE_CLASSES:
        return PoisonRecordError(f"{detail} (SQLSTATE {sqlstate}); nothing of it was written")
    if isinstance(error, asyncpg.InterfaceError) and isinstance(error, ValueError):
        # asyncpg could not encode a query argument: the data again.
        return PoisonRecordError(f"{detail}; nothing of it was written")
    return StoreUnavailableError(f"{detail}; nothing of it was written, will retry")
