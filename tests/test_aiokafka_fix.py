"""qikflow/_aiokafka_fix.py: a consumer told "not the leader" while it looks up where to
start reading refreshes its metadata, instead of asking the same broker until the periodic
refresh (5 minutes); a hung broker left the lake sink stuck that way in a drill."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka import errors
from aiokafka.consumer.fetcher import Fetcher

import qikflow.config  # noqa: F401 - applies the fix, as every qikflow process does
from qikflow._aiokafka_fix import refresh_metadata_on_stale_leader


class _Client:
    def __init__(self, error: type[errors.KafkaError] | None) -> None:
        self.error = error
        self.refreshes = 0

    async def send(self, node_id: int, request: Any) -> Any:
        assert self.error is not None
        raise self.error()

    def force_metadata_update(self) -> None:
        self.refreshes += 1


def _fetcher(client: _Client) -> Fetcher:
    fetcher = Fetcher.__new__(Fetcher)  # no consumer behind it: only the offset request runs
    fetcher._client = client
    fetcher._isolation_level = 0
    return fetcher


@pytest.mark.parametrize("error", [errors.NotLeaderForPartitionError,
                                   errors.UnknownTopicOrPartitionError,
                                   errors.LeaderNotAvailableError])
async def test_a_stale_leader_answer_asks_for_fresh_metadata_and_is_raised_as_before(
    error: type[errors.KafkaError],
) -> None:
    client = _Client(error)
    with pytest.raises(error):
        await _fetcher(client)._proc_offset_request(1, {"t": [(0, -1)]})
    assert client.refreshes == 1


async def test_other_errors_refresh_nothing() -> None:
    client = _Client(errors.RequestTimedOutError)
    with pytest.raises(errors.RequestTimedOutError):
        await _fetcher(client)._proc_offset_request(1, {"t": [(0, -1)]})
    assert client.refreshes == 0


def test_applying_it_twice_wraps_once() -> None:
    patched = Fetcher._proc_offset_request
    refresh_metadata_on_stale_leader()
    assert Fetcher._proc_offset_request is patched
    assert getattr(patched, "refreshes_metadata", False)
