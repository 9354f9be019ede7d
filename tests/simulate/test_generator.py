"""The traffic generator: deterministic, realistic in mix, and agreeing with the parsers."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import orjson
import pytest

from ingest.record import RawRecord
from qikflow.simulate.generator import TrafficGenerator, TrafficMix, generate
from qikflow.simulate.plan import GroundTruth, OutboundState, PlannedWebhook
from streams.agents.optout import preference_optout
from streams.events import (
    MESSAGE_TYPES,
    EditContent,
    InteractiveContent,
    RevokeContent,
    StatusContent,
    SystemContent,
    TextContent,
)
from streams.notices import NOTICE_TYPES
from streams.parsers import Parsed, Undecodable, Unrecognised, parse_raw
from streams.stop_phrases import detect_optout

Plan = tuple[list[PlannedWebhook], GroundTruth]


@pytest.fixture(scope="module")
def plan() -> Plan:
    return generate(seed=11, rate_per_s=200, duration_s=40)


def test_same_seed_same_bytes_other_seed_other_traffic() -> None:
    first, _ = generate(seed=5, rate_per_s=50, duration_s=10)
    again, _ = generate(seed=5, rate_per_s=50, duration_s=10)
    other, _ = generate(seed=6, rate_per_s=50, duration_s=10)
    assert [w.body for w in first] == [w.body for w in again]
    assert [(w.account, w.send_at_s, w.kind) for w in first] == [
        (w.account, w.send_at_s, w.kind) for w in again]
    assert [w.body for w in first] != [w.body for w in other]


def test_another_start_time_gives_other_ids_for_the_same_shape() -> None:
    first, truth = generate(seed=5, rate_per_s=50, duration_s=10)
    later, later_truth = generate(seed=5, rate_per_s=50, duration_s=10,
                                  start=datetime(2027, 1, 2, tzinfo=UTC))
    assert [w.kind for w in first] == [w.kind for w in later]
    assert not set(truth.events()) & set(later_truth.events())


def test_count_and_schedule_follow_rate_and_duration(plan: Plan) -> None:
    webhooks, truth = plan
    assert len(webhooks) == len(truth) == 8000
    assert [w.index for w in webhooks] == list(range(8000))
    assert webhooks[1].send_at_s == pytest.approx(1 / 200)
    assert webhooks[-1].send_at_s == pytest.approx(7999 / 200)


def test_mix_covers_every_type_and_shape(plan: Plan) -> None:
    webhooks, truth = plan
    types = truth.type_counts()
    assert {f"message.{name}" for name in MESSAGE_TYPES} <= set(types)
    assert {"status.sent", "status.delivered", "status.read", "status.failed"} <= set(types)
    messages = sum(n for t, n in types.items() if t.startswith("message."))
    assert 0.5 < types["message.text"] / messages < 0.7
    formats = Counter(w.format for w in webhooks)
    assert set(formats) == {"qikchat", "qikchat-wrapped", "meta", "malformed"}
    assert any(w.format == "meta" and len(w.expected.events) > 1 for w in webhooks)
    interactive = {orjson.loads(w.body)["payload"]["message"]["interactive"]["type"]
                   for w in webhooks if w.format == "qikchat"
                   and b'"type":"interactive"' in w.body}
    assert interactive == {"button_reply", "list_reply", "nfm_reply"}


def test_a_short_run_still_covers_every_message_type() -> None:
    _, truth = generate(seed=1, rate_per_s=20, duration_s=5)
    assert {f"message.{name}" for name in MESSAGE_TYPES} <= set(truth.type_counts())


def test_about_one_percent_are_exact_resends(plan: Plan) -> None:
    webhooks, _ = plan
    duplicates = [w for w in webhooks if w.kind == "duplicate"]
    assert 0.006 < len(duplicates) / len(webhooks) < 0.015
    for duplicate in duplicates:
        assert duplicate.duplicate_of is not None
        original = webhooks[duplicate.duplicate_of]
        assert original.index < duplicate.index
        assert (original.body, original.expected) == (duplicate.body, duplicate.expected)


def test_some_statuses_arrive_out_of_order(plan: Plan) -> None:
    webhooks, _ = plan
    first_seen: dict[tuple[str, str], int] = {}
    for webhook in webhooks:
        for event in webhook.expected.events:
            if event.status:
                first_seen.setdefault((event.message_id, event.status), webhook.index)
    overtaken = [mid for (mid, status), index in first_seen.items()
                 if status == "read" and index < first_seen.get((mid, "delivered"), -1)]
    assert overtaken


def test_malformed_bodies_of_each_kind_are_present(plan: Plan) -> None:
    webhooks, truth = plan
    malformed = [w for w in webhooks if w.kind == "malformed"]
    assert 5 <= len(malformed) <= 100
    outcomes = Counter(w.expected.outcome for w in malformed)
    assert outcomes["dlq"] and outcomes["unknown"]
    assert any(w.body.startswith(b"[") for w in malformed)
    assert set(truth.quarantined_bodies()) == {w.digest for w in malformed}


def test_every_body_parses_into_exactly_the_expected_events(plan: Plan) -> None:
    """The simulator and the streams parsers agree on every body, id and type."""
    webhooks, _ = plan
    for webhook in webhooks:
        outcome = parse_raw(RawRecord(webhook.body, "r", 1_795_000_000_000))
        expected = webhook.expected
        if expected.outcome == "dlq":
            assert isinstance(outcome, Undecodable), webhook.body
        elif expected.outcome == "unknown":
            assert isinstance(outcome, Unrecognised), webhook.body
        else:
            assert isinstance(outcome, Parsed), webhook.body
            found = [(e.event_id, e.type, e.message_id) for e in outcome.events] + [
                (n.event_id, n.type, "") for n in outcome.notices]
            assert found == [(e.event_id, e.type, e.message_id) for e in expected.events]


def test_optouts_are_exactly_the_texts_the_detector_matches(plan: Plan) -> None:
    webhooks, truth = plan
    detected = set()
    for webhook in webhooks:
        outcome = parse_raw(RawRecord(webhook.body, "r", 1_795_000_000_000))
        if isinstance(outcome, Parsed):
            for event in outcome.events:
                if isinstance(event.content, TextContent) and detect_optout(event.content.body):
                    detected.add(event.message_id)
            for notice in outcome.notices:
                if (optout := preference_optout(notice)) is not None:
                    detected.add(optout.message_id)
    assert detected == truth.optout_message_ids()
    assert len(detected) >= 5
    assert any(message_id.startswith("preferences:") for message_id in detected)


def test_final_outbound_states_follow_the_statuses_sent(plan: Plan) -> None:
    webhooks, truth = plan
    seen: dict[str, set[str]] = {}
    for webhook in webhooks:
        for event in webhook.expected.events:
            if event.status:
                seen.setdefault(event.message_id, set()).add(event.status)
    rank = {"sent": 1, "delivered": 2, "read": 3}
    seen = {mid: statuses for mid, statuses in seen.items() if statuses != {"deleted"}}
    states = truth.outbound_states()
    assert set(states) == set(seen)
    for message_id, statuses in seen.items():
        if "played" in statuses:  # a played message was read
            statuses = statuses | {"read"}
        best = max(statuses & set(rank), key=rank.__getitem__, default=None)
        assert states[message_id] == OutboundState(best, "failed" in statuses)
    finals = Counter(states.values())
    assert finals[OutboundState("read", False)] and finals[OutboundState("delivered", False)]
    failed = sum(n for state, n in finals.items() if state.failed)
    assert 0.01 < failed / len(states) < 0.05


def test_about_one_percent_are_notices_of_every_kind(plan: Plan) -> None:
    webhooks, truth = plan
    notices = [w for w in webhooks if w.kind == "notice"]
    assert 0.005 < len(notices) / len(webhooks) < 0.02
    types = Counter(event.type for w in notices for event in w.expected.events)
    assert set(types) == {*NOTICE_TYPES, "status.played", "status.deleted"}
    assert truth.notice_ids() == {event.event_id for w in notices
                                  for event in w.expected.events if event.kind == "notice"}
    assert not truth.inbound_message_ids() & {"", *truth.notice_ids()}


def test_a_short_run_covers_every_notice_kind() -> None:
    _, truth = generate(seed=5, rate_per_s=100, duration_s=12,
                        mix=TrafficMix(notice_share=0.1))
    assert {*NOTICE_TYPES, "status.played", "status.deleted"} <= set(truth.type_counts())


def test_ground_truth_counts_only_acked_bodies(plan: Plan) -> None:
    webhooks, truth = plan
    read = next(w for w in webhooks if w.kind == "status"
                and w.expected.events[0].status == "read")
    message_id = read.expected.events[0].message_id
    carriers = {w.index for w in webhooks if read.expected.events[0] in w.expected.events}
    acked = set(range(len(webhooks))) - carriers
    assert truth.outbound_states()[message_id].status == "read"
    assert truth.outbound_states(acked)[message_id].status in ("sent", "delivered")
    assert read.expected.events[0].event_id not in truth.events(acked)
    assert sum(truth.raw_bodies(acked).values()) == len(acked)


def test_accounts_spread_traffic() -> None:
    generator = TrafficGenerator(seed=2, rate_per_s=50, duration_s=4, accounts=("acme", "beta"))
    assert {w.account for w in generator} == {"acme", "beta"}


def test_statuses_carry_the_version_2_fields_of_both_formats(plan: Plan) -> None:
    """Pricing, conversations with expiry, callback data and errors with details, in Meta
    bodies always and in Qikchat bodies where the simulator sends them."""
    webhooks, _ = plan
    statuses = [event for webhook in webhooks
                if isinstance(outcome := parse_raw(RawRecord(webhook.body, "r", 1)), Parsed)
                for event in outcome.events if isinstance(event.content, StatusContent)]
    by_format = {fmt: [e for e in statuses if e.format == fmt] for fmt in ("meta", "qikchat")}
    for fmt, events in by_format.items():
        priced = [e.content.pricing for e in events if isinstance(e.content, StatusContent)
                  and e.content.pricing is not None]
        assert priced, fmt
        assert {p.category for p in priced} == {"utility", "marketing", "authentication",
                                                "service"}, fmt
        assert {p.billable for p in priced} == {True, False}, fmt
        failed = [e.content for e in events
                  if isinstance(e.content, StatusContent) and e.content.status == "failed"]
        assert failed and all(c.errors and c.errors[0].details for c in failed), fmt
    meta = [e.content for e in by_format["meta"] if isinstance(e.content, StatusContent)]
    assert any(c.conversation and c.conversation.expires_at for c in meta)
    assert any(c.biz_opaque_callback_data for c in meta)
    assert all(c.recipient_id for c in meta)


def test_some_messages_are_replies_forwards_and_ad_clicks_in_both_formats(plan: Plan) -> None:
    webhooks, _ = plan
    messages = [event for webhook in webhooks
                if isinstance(outcome := parse_raw(RawRecord(webhook.body, "r", 1)), Parsed)
                for event in outcome.events if event.kind == "message"]
    for fmt in ("meta", "qikchat"):
        ours = [e for e in messages if e.format == fmt]
        assert any(e.context and e.context.message_id for e in ours), fmt
        assert any(e.context and e.context.forwarded for e in ours), fmt
        assert any(e.referral and e.referral.ctwa_clid for e in ours), fmt
    replies = sum(1 for e in messages if e.context and e.context.message_id)
    assert 0.05 < replies / len(messages) < 0.2


def test_some_messages_are_flow_replies_system_edits_revokes_groups_and_user_ids(
    plan: Plan,
) -> None:
    webhooks, _ = plan
    messages = [event for webhook in webhooks
                if isinstance(outcome := parse_raw(RawRecord(webhook.body, "r", 1)), Parsed)
                for event in outcome.events if event.kind == "message"]
    flows = [e.content for e in messages if isinstance(e.content, InteractiveContent)
             and e.content.reply_type == "nfm_reply"]
    assert flows and all(c.flow_name and c.flow_response for c in flows)
    assert all(isinstance(e.content, SystemContent) and e.content.new_contact_number
               for e in messages if e.type == "message.system")
    changed = [e.content for e in messages if isinstance(e.content, EditContent | RevokeContent)]
    assert changed and all(c.original_message_id for c in changed)
    assert all(e.content.edited for e in messages if isinstance(e.content, EditContent))
    meta = [e for e in messages if e.format == "meta"]
    assert all(e.contact_user_id and e.phone_number_id and e.business_account_id for e in meta)
    anonymous = [e for e in meta if e.contact_number is None]
    assert anonymous and all(e.key == (e.contact_user_id or "").encode() for e in anonymous)
    assert any(e.group is not None and e.group.participant_number for e in meta)
