"""A seeded random schedule of faults against two real ingests sharing one spool folder.

Bodies of random sizes up to and over the 1 MiB default limit, Kafka stopped and started,
an ingest SIGKILLed mid-burst and restarted, junk files dropped into the spool folder,
and the raw topic shrunk for a while so Kafka refuses large bodies. At the end every body
answered 200 is in `<prefix>.raw` or in the quarantine, and nothing else is anywhere:
no body answered 413, and no body twice in the quarantine.

QIKFLOW_FAULT_SEED picks another schedule (the seed is printed when the test fails).
"""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from ingest.errors import SpoolUnreadableError
from ingest.quarantine import Quarantine
from ingest.raw_topic import TOPIC_LIMIT, RawTopicSize
from ingest.settings import IngestSettings
from ingest.spool_file import SPOOL_GLOB, summarize
from qikflow.local.kafka import LocalKafka
from tests.fixtures.kafka import consume
from tests.ingest._faults import Answer, post_all
from tests.ingest._server import IngestProcess, start_ingest, wait_for
from tests.ingest.test_publisher import set_topic_config

SEED = int(os.environ.get("QIKFLOW_FAULT_SEED", "20251130"))
LIMIT = IngestSettings().max_body_bytes
SHRUNK_LIMIT = 200_000
STEPS = ("send", "send", "outage", "kill", "junk", "shrink", "send", "kill_idle")


def body_of(rng: random.Random, size: int) -> bytes:
    """A body of exactly `size` bytes (at least 40) that no other body equals."""
    head = f'{{"id":"{uuid.UUID(int=rng.getrandbits(128))}","pad":"'.encode()
    return head + b"p" * (size - len(head) - 2) + b'"}'


def random_size(rng: random.Random) -> int:
    roll = rng.random()
    if roll < 0.70:
        return rng.randint(40, 4_000)
    if roll < 0.85:
        return rng.randint(4_000, 400_000)
    if roll < 0.93:
        return LIMIT  # exactly the limit
    return LIMIT + rng.randint(1, 2_000)  # just over: 413


@dataclass
class Run:
    """What the schedule sent and what each body got."""

    rng: random.Random
    env: dict[str, str]
    root: Path
    ingests: list[IngestProcess] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    log: list[str] = field(default_factory=list)

    @property
    def spool_dir(self) -> Path:
        return Path(self.env["QIKFLOW_SPOOL_DIR"])

    def start(self, index: int) -> None:
        server = start_ingest(self.env, self.root / f"ingest-{index}.log")
        if index < len(self.ingests):
            self.ingests[index] = server
        else:
            self.ingests.append(server)

    async def send(self, count: int, *, kill: int | None = None,
                   sizes: tuple[int, ...] = ()) -> None:
        target = self.rng.randrange(len(self.ingests)) if kill is None else kill
        bodies = [body_of(self.rng, random_size(self.rng)) for _ in range(count)]
        bodies += [body_of(self.rng, size) for size in sizes]
        self.rng.shuffle(bodies)
        self.log.append(f"send {count} to ingest-{target}" + (" and kill it" if kill else ""))
        sending = post_all(self.ingests[target].url, bodies, concurrency=8)
        if kill is None:
            self.answers += await sending
            return

        async def kill_soon() -> None:
            await asyncio.sleep(self.rng.uniform(0.05, 0.4))
            self.ingests[target].kill()

        answers, _ = await asyncio.gather(sending, kill_soon())
        self.answers += answers
        self.start(target)


def spools_drained(spool_dir: Path) -> bool:
    """Every spool file in the folder is empty (junk not set aside yet counts as not)."""
    for path in spool_dir.glob(SPOOL_GLOB):
        try:
            if summarize(path).depth:
                return False
        except SpoolUnreadableError:
            return False
    return True


async def test_random_faults_lose_nothing_answered_200(
    outage_env: dict[str, str], outage_broker: LocalKafka, topic_prefix: str, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    run = Run(rng, outage_env, tmp_path)
    topic = f"{topic_prefix}.raw"
    run.start(0)
    run.start(1)
    steps: dict[str, Callable[[], Awaitable[None]]] = {}

    async def outage() -> None:
        outage_broker.stop()
        await run.send(rng.randint(10, 30))
        await run.send(rng.randint(5, 15), kill=1)  # killed with a spool full of bodies
        outage_broker.start()

    async def junk() -> None:
        name = f"spool-junk-{rng.randrange(10**6)}.sqlite"
        (run.spool_dir / name).write_bytes(os.urandom(rng.randint(0, 5000)))
        run.log.append(f"junk {name}")
        await run.send(rng.randint(5, 15))

    async def shrink() -> None:
        await set_topic_config(outage_broker.bootstrap, topic, TOPIC_LIMIT, str(SHRUNK_LIMIT))
        run.log.append("shrink")
        await run.send(rng.randint(10, 20), sizes=(SHRUNK_LIMIT + 100_000, LIMIT))
        # Let the drain meet the refusals before the topic takes large bodies again.
        assert wait_for(lambda: spools_drained(run.spool_dir), timeout_s=60), run.log
        size = RawTopicSize.for_settings(IngestSettings())
        await set_topic_config(outage_broker.bootstrap, topic, TOPIC_LIMIT,
                               str(size.max_message_bytes))

    async def kill_idle() -> None:
        victim = rng.randrange(len(run.ingests))
        run.log.append(f"kill idle ingest-{victim}")
        run.ingests[victim].kill()
        run.start(victim)

    async def send() -> None:
        await run.send(rng.randint(10, 40))

    async def kill() -> None:
        await run.send(rng.randint(20, 40), kill=rng.randrange(len(run.ingests)))

    steps.update(send=send, outage=outage, kill=kill, junk=junk, shrink=shrink,
                 kill_idle=kill_idle)
    schedule = list(STEPS)
    rng.shuffle(schedule)
    try:
        for step in schedule:
            await steps[step]()
        assert wait_for(lambda: spools_drained(run.spool_dir), timeout_s=90), run.log

        answered = {a.body for a in run.answers if a.status == 200}
        refused = {a.body for a in run.answers if a.status == 413}
        unanswered = {a.body for a in run.answers if a.status == 0}
        other = [a.status for a in run.answers if a.status not in (200, 413, 0)]
        assert not other, f"seed {SEED}: unexpected answers {other}; {run.log}"
        assert all(len(body) > LIMIT for body in refused)
        assert all(len(body) <= LIMIT for body in answered)

        quarantined = Quarantine(run.spool_dir).entries(with_bodies=True)
        in_quarantine = [e.body for e in quarantined]
        assert len(in_quarantine) == len(set(in_quarantine))
        assert all(len(body) > SHRUNK_LIMIT - 1000 for body in in_quarantine)
        # The faults took effect: bodies went to the spool and to the quarantine.
        assert len(in_quarantine) >= 2
        assert any(a.stored_in == "spool" for a in run.answers)
        expected = answered - set(in_quarantine)
        records = await consume(outage_broker.bootstrap, [topic], expected=len(expected),
                                timeout_s=60)
        in_kafka = {r.value for r in records}
        missing = expected - in_kafka
        assert not missing, (f"seed {SEED}: {len(missing)} bodies answered 200 are neither "
                             f"in {topic} nor quarantined; {run.log}")
        strays = (in_kafka | set(in_quarantine)) - answered - unanswered
        assert not strays, f"seed {SEED}: {len(strays)} bodies nobody was told were kept"
        for log in tmp_path.glob("ingest-*.log"):
            text = log.read_text()
            assert "never retrieved" not in text and "Traceback" not in text, log
    finally:
        for server in run.ingests:
            server.terminate()
