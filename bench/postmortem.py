"""Benchmark: the postmortem draft of an incident with 10,000 timeline events.

Target: generated in under 1 s using under 200 MB. Builds the incident in a temporary SQLite
database migrated with Alembic, then measures ``generate_postmortem`` end to end (read the
incident, render, store the version, write the file): wall time over several runs, the peak of
Python allocations during one run (tracemalloc, in a separate run because tracing slows it
down), and the process's maximum resident set size.

    python bench/postmortem.py [--events 10000] [--runs 5]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from bot import incidents as core
from bot import migrations
from bot.audit import chain
from bot.config import Policy, policy_from_dict
from bot.db import Database
from bot.models import EventKind, RunbookRun, RunbookStepState, TimelineEvent
from bot.postmortem import build_context, generate_postmortem, render_context

START = datetime(2026, 3, 4, 2, 55, tzinfo=UTC)
PEOPLE = [f"U{n:02d}RESPONDER" for n in range(25)]


class Directory:
    """Names as the Slack layer would resolve them (cached lookups, like users.info)."""

    def user(self, user_id: str) -> str | None:
        return f"Responder {user_id[1:3]}" if user_id in PEOPLE else None

    def channel(self, channel_id: str) -> str | None:
        return "deploys" if channel_id == "C0DEPLOYS" else None


def _event_text(i: int) -> tuple[str, str, str | None]:
    """A realistic mix: captured messages with markup, notes, status updates."""
    who = PEOPLE[(i + 3) % len(PEOPLE)]
    if i % 5 == 0:
        return (
            EventKind.NOTE,
            f"Checked shard {i % 97}: replication lag {i % 13}s &amp; rising",
            None,
        )
    if i % 11 == 0:
        return (
            EventKind.STATUS_UPDATE,
            f"Update {i}: error rate down to {i % 40}%; next update in 15 minutes.",
            None,
        )
    url = f"https://example.slack.com/archives/C0INC1/p{1772592900000000 + i}"
    text = (
        f"<@{who}> saw `502` on <https://grafana.example.com/d/pay?var-pod=pay-{i % 30}"
        f"&amp;from=now-1h|pod pay-{i % 30}> — see <#C0DEPLOYS>; "
        f"&lt;{i}&gt; retries <!here>"
    )
    if i % 17 == 0:
        text += "\n```ERROR pool exhausted\nERROR timeout after 30000ms```"
    return EventKind.MESSAGE, text, url


def build_incident(db: Database, policy: Policy, events: int) -> int:
    with db.transaction() as session:
        incident = core.declare_incident(
            session,
            policy,
            title="Checkout returns 500s for card payments",
            reporter=PEOPLE[0],
            severity="SEV1",
            impact_started_at=START - timedelta(minutes=12),
            detected_at=START - timedelta(minutes=7),
            now=START,
        ).incident
        assert incident.id is not None
        incident_id = incident.id
        core.acknowledge_incident(
            session, policy, incident_id, actor=PEOPLE[1], now=START + timedelta(minutes=2)
        )
        for minute, (role, person) in enumerate(
            [("commander", 1), ("comms", 2), ("scribe", 3), ("ops", 4), ("commander", 5)]
        ):
            core.assign_role(
                session,
                policy,
                incident_id,
                role,
                PEOPLE[person],
                actor=PEOPLE[1],
                now=START + timedelta(minutes=3 + 30 * minute),
            )
        for n in range(20):
            core.add_action_item(
                session,
                policy,
                incident_id,
                f"Follow-up {n}: alert when pool use > 80% | page payments",
                actor=PEOPLE[1],
                owner=PEOPLE[n % len(PEOPLE)],
                due_on=date(2026, 3, 10 + n % 10),
                now=START + timedelta(hours=2),
            )
        run = RunbookRun(
            incident_id=incident_id,
            runbook_id="deploys/rollback.md",
            title="Roll back a bad deploy",
            content_hash="0" * 64,
            snapshot={
                "title": "Roll back a bad deploy",
                "description": "",
                "context": [],
                "steps": [
                    {"title": f"Step {n}", "markdown": "Do it.", "line": n} for n in range(12)
                ],
            },
            step_count=12,
            started_at=START + timedelta(minutes=20),
            started_by=PEOPLE[1],
        )
        session.add(run)
        session.flush()
        assert run.id is not None
        for n in range(10):
            session.add(
                RunbookStepState(
                    run_id=run.id,
                    step_index=n,
                    state="done" if n % 4 else "skipped",
                    assignee_id=PEOPLE[n],
                    updated_at=START + timedelta(minutes=21 + n),
                    updated_by=PEOPLE[n],
                )
            )
        rows: list[dict[str, Any]] = []
        for i in range(events):
            kind, text, url = _event_text(i)
            at = START + timedelta(seconds=5 + 3 * i)
            rows.append(
                {
                    "incident_id": incident_id,
                    "occurred_at": at,
                    "recorded_at": at,
                    "kind": kind,
                    "actor_id": PEOPLE[i % len(PEOPLE)],
                    "text": text,
                    "data": {},
                    "source_url": url,
                    "source_ref": url and f"slack:C0INC1:{i}",
                    "idempotency_key": f"bench:{i}",
                }
            )
        prev = chain.previous_hash(session, incident_id)
        for row in rows:  # chained as the core would (the database refuses unhashed events)
            row["prev_hash"], row["hash"] = prev, chain.event_hash(row, prev)
            prev = row["hash"]
        session.execute(insert(TimelineEvent), rows)
        end = START + timedelta(seconds=10 + 3 * events)
        core.resolve_incident(session, policy, incident_id, actor=PEOPLE[5], now=end)
        core.close_incident(
            session, policy, incident_id, actor=PEOPLE[5], now=end + timedelta(hours=20)
        )
    return incident_id


def _max_rss_mb() -> float:
    """The process's peak resident set size so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="firebreak-bench-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        migrations.upgrade(url)
        policy = policy_from_dict(
            {"timezone": "Europe/Berlin", "postmortem": {"output_dir": str(Path(tmp) / "out")}}
        )
        db = Database(url)
        try:
            incident_id = build_incident(db, policy, args.events)
            rss_built = _max_rss_mb()
            names = Directory()

            times = []
            markdown = ""
            for run in range(args.runs):
                started = time.perf_counter()
                with db.transaction() as session:
                    markdown = generate_postmortem(
                        session, policy, incident_id, actor=PEOPLE[5], key=f"r{run}", names=names
                    ).markdown
                times.append(time.perf_counter() - started)

            render_times = []
            with db.transaction() as session:
                incident = core.get_incident(session, incident_id)
                context = build_context(
                    session, policy, incident, version=99, actor=PEOPLE[5], names=names
                )
            for _ in range(args.runs):
                started = time.perf_counter()
                render_context(policy, context)
                render_times.append(time.perf_counter() - started)
            # A team's template runs within limits (CPU time watched as it runs): the same
            # draft through a template that extends the built-in one.
            team_dir = Path(tmp) / "templates"
            team_dir.mkdir()
            (team_dir / "postmortem.md.j2").write_text(
                '{% extends "firebreak/postmortem.md.j2" %}\n', encoding="utf-8"
            )
            team_policy = policy_from_dict(
                {"timezone": "Europe/Berlin", "postmortem": {"template_dir": str(team_dir)}}
            )
            team_times = []
            for _ in range(args.runs):
                started = time.perf_counter()
                rendered = render_context(team_policy, context)
                team_times.append(time.perf_counter() - started)
                assert rendered.template_error is None, rendered.template_error

            tracemalloc.start()
            with db.transaction() as session:
                generate_postmortem(
                    session, policy, incident_id, actor=PEOPLE[5], key="traced", names=names
                )
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        finally:
            db.dispose()

    max_rss_mb = _max_rss_mb()
    entries = markdown.count("\n- **")
    best, median = min(times), statistics.median(times)
    print(f"postmortem benchmark: {args.events:,} timeline events, SQLite (temporary file)")
    print(f"draft: {len(markdown):,} characters, {entries:,} timeline entries")
    print(
        f"generate (read + render + store + write file), {args.runs} runs: "
        f"best {best:.3f} s, median {median:.3f} s"
    )
    print(
        f"  render only (Jinja2, context already built): best {min(render_times):.3f} s, "
        f"median {statistics.median(render_times):.3f} s"
    )
    print(
        f"  render through a team template (the same, within its limits): best "
        f"{min(team_times):.3f} s, median {statistics.median(team_times):.3f} s "
        f"({statistics.median(team_times) / statistics.median(render_times):.1f}x the built-in)"
    )
    print(f"peak Python allocations during one generation (tracemalloc): {peak / 2**20:.1f} MB")
    print(
        f"max resident set size of the whole process: {max_rss_mb:.1f} MB "
        f"({rss_built:.1f} MB after building the incident, before generating)"
    )
    within = median < 1.0 and max(peak / 2**20, max_rss_mb) < 200
    print(f"target < 1 s and < 200 MB: {'met' if within else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
