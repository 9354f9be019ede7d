"""`qikflow spool status|export|retry`: what waits in the spool directory, and the quarantine.

`status` lists the spool files (in use, or left for adoption), files set aside as
unreadable, and the quarantine. `export` writes quarantined bodies out byte for byte.
`retry` hands quarantined bodies back: they go into a new spool file, which a running
ingest adopts and drains within seconds (or the next ingest start does).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import orjson

RETRY_HELP = "a running ingest adopts the spool within seconds (or the next start drains it)"


def register(subparsers: Any) -> None:
    spool = subparsers.add_parser(
        "spool",
        help="inspect the ingest's spool directory and quarantine; export or retry bodies",
        description="The spool directory is QIKFLOW_SPOOL_DIR (default <home>/spool).",
    )
    spool.add_argument("--spool-dir", type=Path, default=None,
                       help="spool directory (default: QIKFLOW_SPOOL_DIR)")
    actions = spool.add_subparsers(dest="action", required=True, metavar="ACTION")
    status = actions.add_parser("status", help="spool files and quarantined bodies")
    status.add_argument("--json", action="store_true", help="one JSON object")
    status.set_defaults(handler=_status)
    export = actions.add_parser("export", help="write quarantined bodies out, byte for byte")
    export.add_argument("receipt_ids", nargs="*", metavar="RECEIPT_ID")
    export.add_argument("--output", "-o", type=Path,
                        help="file for the one body (default: standard output)")
    export.add_argument("--all", type=Path, metavar="DIR", dest="all_to",
                        help="write every body to DIR/<receipt>.body, its headers to .json")
    export.set_defaults(handler=_export)
    retry = actions.add_parser("retry", help="send quarantined bodies to Kafka again")
    retry.add_argument("receipt_ids", nargs="*", metavar="RECEIPT_ID")
    retry.add_argument("--all", action="store_true", help="every quarantined body")
    retry.set_defaults(handler=_retry)


def _directory(args: argparse.Namespace) -> Path:
    if args.spool_dir is not None:
        return Path(args.spool_dir)
    from ingest.settings import IngestSettings

    return IngestSettings().resolved_spool_dir()


def _status(args: argparse.Namespace) -> int:
    from ingest.errors import SpoolUnreadableError
    from ingest.quarantine import Quarantine
    from ingest.spool_file import SPOOL_GLOB, summarize

    directory = _directory(args)
    spools: list[dict[str, Any]] = []
    for path in sorted(directory.glob(SPOOL_GLOB)):
        try:
            summary = summarize(path)
        except SpoolUnreadableError as error:
            spools.append({"file": path.name, "state": "unreadable", "detail": str(error)})
            continue
        spools.append({
            "file": path.name,
            "state": "in use" if summary.in_use else "waiting for adoption",
            "bodies": summary.depth, "bytes": summary.bytes,
            "oldest_age_s": (None if summary.oldest_ms is None
                             else round(time.time() - summary.oldest_ms / 1000, 1)),
        })
    aside = [p.name for p in sorted(directory.glob("unreadable-*"))
             if not p.name.endswith(("-wal", "-shm"))]
    entries = Quarantine.open(directory).entries() if directory.exists() else []
    quarantined = [{
        "receipt_id": e.receipt_id, "bytes": e.size, "reason": e.reason,
        "quarantined_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                        time.gmtime(e.quarantined_at_ms / 1000)),
    } for e in entries]
    if args.json:
        print(orjson.dumps({"spool_dir": str(directory), "spools": spools,
                            "set_aside": aside, "quarantine": quarantined}).decode())
        return 0
    print(f"spool directory {directory}")
    print(f"spool files: {len(spools) or 'none'}")
    for spool in spools:
        if spool["state"] == "unreadable":
            print(f"  {spool['file']}: UNREADABLE ({spool['detail']})")
        else:
            age = "" if spool["oldest_age_s"] is None else f", oldest {spool['oldest_age_s']}s"
            print(f"  {spool['file']}: {spool['state']}, {spool['bodies']} bodies, "
                  f"{spool['bytes']} bytes{age}")
    if aside:
        print(f"set aside as unreadable (inspect, then delete): {', '.join(aside)}")
    print(f"quarantine: {len(quarantined) or 'empty'}")
    for entry in quarantined:
        print(f"  {entry['receipt_id']}  {entry['bytes']} bytes  {entry['quarantined_at']}  "
              f"{entry['reason']}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from ingest.quarantine import Quarantine

    quarantine = Quarantine.open(_directory(args))
    if args.all_to is not None:
        args.all_to.mkdir(parents=True, exist_ok=True)
        entries = quarantine.entries(with_bodies=True)
        for entry in entries:
            (args.all_to / f"{entry.receipt_id}.body").write_bytes(entry.body)
            headers = {**orjson.loads(entry.meta), "reason": entry.reason,
                       "quarantined_at_ms": entry.quarantined_at_ms}
            (args.all_to / f"{entry.receipt_id}.json").write_bytes(orjson.dumps(headers))
        print(f"exported {len(entries)} bodies to {args.all_to}", file=sys.stderr)
        return 0
    if len(args.receipt_ids) != 1:
        print("qikflow spool export: name one RECEIPT_ID (or --all DIR)", file=sys.stderr)
        return 2
    found = quarantine.entries(args.receipt_ids, with_bodies=True)
    if not found:
        print(f"qikflow spool export: {args.receipt_ids[0]} is not in the quarantine",
              file=sys.stderr)
        return 1
    if args.output is not None:
        args.output.write_bytes(found[0].body)
    else:
        sys.stdout.buffer.write(found[0].body)
        sys.stdout.buffer.flush()
    return 0


def _retry(args: argparse.Namespace) -> int:
    from ingest.quarantine import Quarantine

    if args.all == bool(args.receipt_ids):
        print("qikflow spool retry: name RECEIPT_IDs or --all (not both)", file=sys.stderr)
        return 2
    directory = _directory(args)
    quarantine = Quarantine.open(directory)
    entries = quarantine.entries(None if args.all else args.receipt_ids, with_bodies=True)
    missing = set(args.receipt_ids) - {e.receipt_id for e in entries}
    if missing:
        print(f"qikflow spool retry: not in the quarantine: {', '.join(sorted(missing))}",
              file=sys.stderr)
        return 1
    return asyncio.run(_hand_back(directory, quarantine, entries))


async def _hand_back(directory: Path, quarantine: Any, entries: list[Any]) -> int:
    from ingest.errors import SpoolError
    from ingest.record import RawRecord
    from ingest.settings import IngestSettings
    from ingest.spool import Spool
    from ingest.spool_file import decode

    spool = Spool.create(directory, IngestSettings().spool_max_bytes)
    handed: list[str] = []
    try:
        for entry in entries:
            record = decode(entry.meta, entry.body) or RawRecord(
                entry.body, entry.receipt_id, 0)
            await spool.put(record)
            handed.append(entry.receipt_id)
    except SpoolError as error:
        print(f"qikflow spool retry: stopped after {len(handed)} bodies: {error}",
              file=sys.stderr)
    finally:
        await spool.close()
    quarantine.remove(handed)
    if handed:
        print(f"{len(handed)} bodies moved from the quarantine to {spool.path.name}; "
              f"{RETRY_HELP}")
    return 0 if len(handed) == len(entries) else 1
