"""``firebreak effects``: what is still to be done outside the database, and what failed.

    firebreak effects [--failed] [--json]

One line per effect not done (pending, running or failed), grouped by incident: its kind, its
state, how many attempts it took and the last error. Exit 1 when any failed, so a cron job or an
operator's script can alert on it."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from bot.arguments import positive_int
from bot.clock import utcnow
from bot.config import load_configuration
from bot.db import Database
from bot.effects import store
from bot.effects.failures import describe
from bot.models import Incident

EXIT_OK = 0
EXIT_FAILED = 1


def cmd_effects(args: argparse.Namespace) -> int:
    settings, _ = load_configuration(getattr(args, "policy", None))
    db = Database(settings.database_url)
    try:
        with db.read() as session:
            rows = store.unfinished(session, limit=args.limit)
            refs = {
                i.id: i.ref
                for i in (session.get(Incident, r.incident_id) for r in rows if r.incident_id)
                if i is not None
            }
    finally:
        db.dispose()
    if args.failed:
        rows = [r for r in rows if r.state == store.FAILED]
    now = utcnow()
    entries: list[dict[str, Any]] = [
        {
            "incident": refs.get(r.incident_id) if r.incident_id else None,
            "id": r.id,
            "kind": r.kind,
            "what": describe(r.kind),
            "state": r.state,
            "attempts": r.attempts,
            # Failed and done effects are never due.
            "due_in_seconds": (
                round((r.due_at - now).total_seconds())
                if r.state in (store.PENDING, store.CLAIMED)
                else None
            ),
            "last_error": r.last_error,
        }
        for r in rows
    ]
    if args.json:
        json.dump(entries, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    elif not entries:
        print("nothing pending or failed")
    for entry in [] if args.json else entries:
        due = entry["due_in_seconds"]
        when = "" if entry["state"] == store.FAILED else f"due in {due}s" if due > 0 else "due now"
        error = f"  {entry['last_error'][:160]}" if entry["last_error"] else ""
        print(
            f"{entry['incident'] or '-':<9} #{entry['id']:<6} {entry['state']:<8} "
            f"{entry['attempts']:>2}x {when:<14} {entry['what']}{error}"
        )
    return EXIT_FAILED if any(e["state"] == store.FAILED for e in entries) else EXIT_OK


def register(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``firebreak effects`` to the CLI (called from ``bot.cli.build_parser``)."""
    effects = commands.add_parser(
        "effects", help="Slack work still to do or failed, per incident (exit 1 if any failed)"
    )
    effects.add_argument("--failed", action="store_true", help="only the failed ones")
    effects.add_argument("--json", action="store_true", help="print JSON")
    effects.add_argument("--limit", type=positive_int, default=200, help="at most this many (200)")
    effects.set_defaults(handler=cmd_effects, needs_database=True)
