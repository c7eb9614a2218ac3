"""Benchmark the web console's pages: server time with 10,000 incidents.

    python bench/console.py                       # SQLite (temporary file)
    python bench/console.py --database-url postgresql://postgres@127.0.0.1:5432/test

Data, made through the incident core: 10,000 incidents over the past year (10 % private, most
acknowledged, resolved and closed, with action items and escalations), plus one incident with
10,000 timeline events. The viewer is a member of a few private incidents' channels (not an
admin), and the console's visibility cache is emptied before every request, so each figure
includes deciding which private incidents the viewer may see.

Server time is measured in process: the request goes through the real Starlette app (routing,
session check, queries, rendering) with Starlette's test client and no network. The floor is
the same client asking ``/healthz``: what any request costs before the console does anything.
Targets: list < 200 ms, incident page < 500 ms, insights < 500 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from contextlib import nullcontext
from datetime import timedelta
from pathlib import Path

from scratch import percentile, scratch_database
from sqlmodel import col, select
from starlette.responses import Response
from starlette.testclient import TestClient

from bot import incidents, migrations
from bot.clock import utcnow
from bot.config import Policy
from bot.console import Console, ConsoleSettings
from bot.console.demo import StaticDirectory
from bot.db import Database
from bot.models import EventKind, Incident
from bot.web import create_web_app

INCIDENTS = 10_000
EVENTS = 10_000
BATCH = 500
VIEWER = "U0VIEWER"
SERVICES = ("checkout", "payments-api", "search", "auth", "notifications", "data-pipeline")


def populate(
    database: Database, policy: Policy, *, count: int, events: int
) -> tuple[int, set[str]]:
    rng = random.Random(42)
    now = utcnow()
    channels: set[str] = set()
    started = time.perf_counter()
    for first in range(0, count, BATCH):
        with database.transaction() as session:
            for n in range(first, min(first + BATCH, count)):
                at = now - timedelta(minutes=rng.randint(60, 365 * 24 * 60))
                private = n % 10 == 3
                change = incidents.declare_incident(
                    session,
                    policy,
                    title=f"{rng.choice(SERVICES)} errors #{n}",
                    reporter="U0REPORTER",
                    severity=rng.choice(["SEV1", "SEV2", "SEV3", "SEV3", "SEV4"]),
                    service=rng.choice(SERVICES),
                    private=private,
                    now=at,
                )
                iid = change.incident.id
                assert iid is not None
                if private:
                    channel = f"C{n:08d}"
                    incidents.attach_channel(
                        session,
                        policy,
                        iid,
                        channel_id=channel,
                        channel_name=f"inc-{n}",
                        actor="U0REPORTER",
                        now=at,
                    )
                    if n % 50 == 3:
                        channels.add(channel)
                if n % 7 == 0:
                    incidents.record_timeline_event(
                        session,
                        policy,
                        iid,
                        kind=EventKind.ESCALATED,
                        text="escalated",
                        now=at + timedelta(minutes=5),
                    )
                if n % 9 == 0:
                    continue
                at += timedelta(minutes=rng.randint(1, 30))
                incidents.acknowledge_incident(session, policy, iid, actor="U0ONCALL", now=at)
                if n % 5 == 0:
                    incidents.add_action_item(
                        session,
                        policy,
                        iid,
                        "Follow up",
                        actor="U0ONCALL",
                        due_on=(at + timedelta(days=14)).date(),
                        now=at,
                    )
                at += timedelta(minutes=rng.randint(10, 300))
                incidents.resolve_incident(session, policy, iid, actor="U0ONCALL", now=at)
                if at < now - timedelta(days=2):
                    incidents.close_incident(
                        session, policy, iid, actor="U0ONCALL", now=at + timedelta(hours=1)
                    )
    print(f"  {count:,} incidents made in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    with database.transaction() as session:
        big = incidents.declare_incident(
            session,
            policy,
            title="The long one",
            reporter="U0REPORTER",
            service="checkout",
            now=now - timedelta(days=3),
        )
        big_id, big_number = big.incident.id, big.incident.number
        assert big_id is not None
    for first in range(0, events, BATCH):
        with database.transaction() as session:
            for n in range(first, min(first + BATCH, events)):
                incidents.add_note(
                    session,
                    policy,
                    big_id,
                    f"Note {n}: checked the dashboards, still degraded",
                    actor=f"U0P{n % 12}",
                    now=now - timedelta(days=3) + timedelta(seconds=10 * n),
                )
    print(f"  one incident with {events:,} notes made in {time.perf_counter() - started:.1f} s")
    return big_number, channels


def existing(database: Database) -> tuple[int, set[str]]:
    """The long incident and the viewer's channels of data made by an earlier run."""
    with database.read() as session:
        big = session.exec(select(Incident.number).where(Incident.title == "The long one")).one()
        channels = session.exec(
            select(Incident.slack_channel_id).where(col(Incident.private).is_(True))
        ).all()
    return big, {c for c in channels if c and int(c[1:]) % 50 == 3}


def measure(client: TestClient, console: Console, path: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        console.visibility = type(console.visibility)()  # cold: visibility decided again
        started = time.perf_counter()
        answer = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, (path, answer.status_code)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="PostgreSQL server to create a scratch database on")
    parser.add_argument("--incidents", type=int, default=INCIDENTS)
    parser.add_argument("--events", type=int, default=EVENTS)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument(
        "--keep",
        help="a SQLite file, or the URL of an existing PostgreSQL database, to keep the data "
        "in; data already there is measured again as it is",
    )
    args = parser.parse_args()
    policy = Policy()
    keep = None
    if args.keep:
        keep = args.keep if "://" in args.keep else f"sqlite:///{Path(args.keep).resolve()}"
    place = nullcontext(keep) if keep else scratch_database(args.database_url, script="bench")
    with place as url:
        migrations.upgrade(url)
        database = Database(url)
        print(f"backend: {database.backend}")
        with database.read() as session:
            reuse = keep is not None and session.exec(select(Incident.id).limit(1)).first()
        if reuse:
            big, channels = existing(database)
        else:
            big, channels = populate(database, policy, count=args.incidents, events=args.events)
        console = Console(
            database,
            policy,
            StaticDirectory(channels={c: {VIEWER} for c in channels}),
            ConsoleSettings(_env_file=None, session_secret="bench" * 8, cookie_secure=False),
        )
        app = create_web_app(None, database, console=console)
        with TestClient(app, follow_redirects=False) as client:
            response = Response()
            console.sessions.start(response, VIEWER, "Viewer", "oidc")
            name, value = response.headers["set-cookie"].split(";", 1)[0].split("=", 1)
            client.cookies.set(name, value)
            floor = statistics.median(measure(client, console, "/healthz", args.runs))
            pages = [
                ("list (newest first)", "/console/incidents", 200),
                (
                    "list (search + severity, by title, page 5)",
                    "/console/incidents?q=errors&severity=SEV3&sort=title&order=asc&page=5",
                    200,
                ),
                (f"incident page ({args.events:,} events)", f"/console/incidents/{big}", 500),
                ("insights (12 weeks)", "/console/insights?period=week", 500),
                ("insights (12 months: every incident)", "/console/insights?period=month", 500),
            ]
            for path in ("/console/incidents", "/console/insights"):
                client.get(path)  # warm up templates and statement caches
            load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
            print(f"machine load average (1, 5, 15 min): {load} on {os.cpu_count()} cores")
            print(f"floor (/healthz through the same client): p50 {floor:.1f} ms")
            print(
                f"{'page':48} {'p50':>8} {'p95':>8} {'target':>8} {'p50/target':>10} {'/floor':>7}"
            )
            for label, path, target in pages:
                times = measure(client, console, path, args.runs)
                p50, p95 = statistics.median(times), percentile(times, 0.95)
                print(
                    f"{label:48} {p50:7.1f}ms {p95:7.1f}ms {target:6d}ms "
                    f"{p50 / target:10.2f} {p50 / floor:6.0f}x"
                )
        database.dispose()


if __name__ == "__main__":
    main()
