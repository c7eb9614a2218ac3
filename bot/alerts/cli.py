"""``firebreak alerts list [--json]`` and ``firebreak alerts replay FILE... --source S``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bot.alerts.listing import Entry, list_alerts
from bot.alerts.model import PayloadError
from bot.alerts.models import DECLARING
from bot.alerts.receiver import decode
from bot.alerts.replay import Rehearsal
from bot.alerts.sources import SOURCES, parse
from bot.arguments import positive_int
from bot.clock import utcnow
from bot.config import load_configuration
from bot.db import Database
from bot.runbooks.catalog import RunbookCatalog

EXIT_OK = 0
EXIT_FAILED = 1


def cmd_list(args: argparse.Namespace) -> int:
    settings, _ = load_configuration(getattr(args, "policy", None))
    db = Database(settings.database_url)
    try:
        with db.read() as session:
            entries = list_alerts(session, limit=args.limit)
    finally:
        db.dispose()
    if args.json:
        json.dump([e.as_dict() for e in entries], sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return EXIT_OK
    if not entries:
        print("no alerts")
    for entry in entries:
        print(
            f"{entry.source:<12} {entry.status:<8} {entry.incident or _waiting(entry):<9} "
            f"{entry.key[:24]:<24} {entry.title}"
        )
    return EXIT_OK


def _waiting(entry: Entry) -> str:
    """What an alert with no incident waits for: its declare, or people in triage."""
    return entry.disposition if entry.disposition in (DECLARING, "triage") else "-"


def cmd_replay(args: argparse.Namespace) -> int:
    _, policy = load_configuration(getattr(args, "policy", None))
    catalog = RunbookCatalog.from_policy(policy)
    rehearsal = Rehearsal(policy, catalog)
    steps: list[dict[str, Any]] = []
    failed = False
    for path in args.files:
        try:
            body = Path(path).read_bytes()
            message = parse(args.source, decode(body), now=utcnow())
        except OSError as exc:
            print(f"{path}: cannot read: {exc.strerror}", file=sys.stderr)
            failed = True
            continue
        except PayloadError as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            failed = True
            continue
        step = rehearsal.play(message, utcnow())
        if args.json:
            steps.append({"file": str(path), **step.as_dict()})
            continue
        if step.action == "ignore":
            print(f"{path}: ignore: {step.note}")
            continue
        at = f", at the section for {step.runbook_section}" if step.runbook_section else ""
        runbook = (
            f"runbook {step.runbook} ({step.runbook_reason}){at}"
            if step.runbook
            else "no runbook" + (f" ({step.runbook_reason})" if step.runbook_reason else "")
        )
        where = step.incident or "no incident"
        print(
            f"{path}: {step.action}: {where}; severity {step.severity}; "
            f"service {step.service or '-'}; {step.firing} firing; {runbook}"
            + (f"; {step.note}" if step.note else "")
        )
    if args.json:
        json.dump(steps, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    return EXIT_FAILED if failed else EXIT_OK


def register(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``firebreak alerts ...`` to the CLI (called from ``bot.cli.build_parser``)."""
    alerts = commands.add_parser("alerts", help="alerts received from monitoring tools")
    actions = alerts.add_subparsers(dest="alerts_command", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="one line per alert: source, status, incident, key")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.add_argument(
        "--limit", type=positive_int, default=1000, help="at most this many (1000)"
    )
    listing.set_defaults(handler=cmd_list, needs_database=True)
    replay = actions.add_parser(
        "replay",
        help="show what payloads would do (incident, severity, runbook); no Slack, no database",
    )
    replay.add_argument("files", nargs="+", type=Path, metavar="FILE")
    replay.add_argument("--source", required=True, choices=SOURCES)
    replay.add_argument("--json", action="store_true", help="print JSON")
    replay.set_defaults(handler=cmd_replay)
