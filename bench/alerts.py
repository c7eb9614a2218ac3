"""Benchmark the alert receivers end to end: received over HTTP, parsed, grouped, stored, the
incident declared with its effects queued, all in one transaction per webhook (or, for a group
whose first webhook found the incident counter taken on PostgreSQL, declared moments later by
the replicas' claim loops, which run here too; the outcome is counted once they are done).

    python bench/alerts.py                      # SQLite (temporary file), then PostgreSQL
    python bench/alerts.py --database-url postgresql://postgres@127.0.0.1:5432/test
    python bench/alerts.py --sqlite-only
    python bench/alerts.py --postgresql-only
    python bench/alerts.py --cpu                # CPU per webhook, one thread (below)

The receivers run in server processes of their own (uvicorn + Starlette, as ``firebreak serve``
runs them): one on SQLite, two on PostgreSQL (two replicas sharing the database; senders
alternate between them). ``--senders`` threads post at once over keep-alive connections.

1. Storm: 10,000 alerts in 100 groups (1,000 Alertmanager webhooks of 10 alerts each, every
   group growing over 10 webhooks, the groups interleaved). Reported: alerts ingested per
   second, webhook p50/p99, and the exact outcome: incidents (must be 100), duplicate incidents
   (must be 0), alert rows (must be 10,000), timeline entries, queued Slack notices.
2. One alert per webhook: 2,000 generic webhooks in 200 groups: webhooks (= alerts) per second
   and p50/p99.
3. Paced: the storm again (100 new groups) sent at a steady ``--rate`` (1,000 alerts/s: 100
   webhooks/s), open loop, latency counted from when each webhook was due: the webhook p99
   target is about this load. Phases 1 and 2 send as fast as the servers answer, so their
   latency is mostly the queue the senders themselves make.
4. Floor: ``GET /healthz`` on the same servers with the same senders, in the same run; webhook
   latencies are also quoted as a ratio to it.

``--cpu`` measures instead the CPU of storing alerts, one webhook at a time in one thread: no
HTTP, no queue, no other process competing, so the figure moves with the code rather than with
the machine's load. The same storm, each webhook parsed and ingested in its own transaction as
the receiver does; printed: CPU milliseconds per webhook for the 100 that open a group (each
declares) and the 900 that join one, and as a ratio to the floor, an empty transaction
(``SELECT 1``) on the same database in the same run. The database server's own work is not in
it.

Figures are printed, never asserted: run it by hand on the machine you care about.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import platform
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from scratch import percentile, scratch_database
from sqlalchemy import func, inspect, text
from sqlmodel import Session, select

from bot import migrations
from bot.alerts import declaring
from bot.alerts.auth import AlertSettings
from bot.alerts.intake import ingest
from bot.alerts.models import AlertGroup, AlertNotice, AlertRecord
from bot.alerts.sources import parse
from bot.clock import utcnow
from bot.config import Policy
from bot.db import Database
from bot.effects import kinds
from bot.effects.runner import Done, EffectRunner
from bot.effects.store import Claimed
from bot.models import Incident, TimelineEvent
from bot.runbooks.catalog import RunbookCatalog

TOKEN = "bench-token"


UNTRIED_KINDS = (
    kinds.CREATE_CHANNEL,
    kinds.INVITE,
    kinds.REFRESH,
    kinds.ANNOUNCE,
    kinds.POST,
    kinds.UPDATE,
    kinds.RUNBOOK_MESSAGE,
    kinds.REPLY,
    kinds.POSTMORTEM_DRAFT,
    kinds.POSTMORTEM_UPLOAD,
    kinds.CLOCK_SYNC,
)


def _untried(_: Claimed) -> Done:
    return Done({"bench": "not tried: no Slack here"})


def _serve(url: str, port: int) -> None:
    """A server process: the alert routes and /healthz, as bot.web serves them."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from bot.alerts.receiver import alert_routes

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    database = Database(url, pool_size=20)
    policy, catalog = Policy(), RunbookCatalog.of([])
    routes = alert_routes(
        database, policy=policy, catalog=catalog, settings=AlertSettings(token=TOKEN)
    )
    # The replica's claim loop, as `firebreak serve` runs it: declares that waited for the
    # incident counter (PostgreSQL) are made here. There is no Slack: the other effects (the
    # channels, the alert posts) are marked done untried, so they cost a claim, not a call.
    untried = dict.fromkeys(UNTRIED_KINDS, _untried)
    handlers = {
        **untried,
        kinds.ALERTS_DECLARE: declaring.handler(database, policy, lambda: catalog),
    }
    EffectRunner(database, handlers, worker_id=f"bench-{port}", threads=4, interval=0.2).start()
    app = Starlette(routes=[*routes, Route("/healthz", healthz)])
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        timeout_keep_alive=300,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"bench: the server on port {port} did not start")


@dataclass
class Result:
    seconds: float
    latencies: list[float]
    statuses: dict[int, int]
    by_request: dict[int, float]
    """Latency of each request, by its position in the list sent."""


def _run(
    ports: list[int],
    senders: int,
    requests: list[tuple[str, str, bytes | None]],
    rate: float | None = None,
) -> Result:
    """Send ``requests`` (method, path, body) from ``senders`` threads, each on keep-alive
    connections to the servers in turn; latencies in milliseconds.

    ``rate=None``: each sender sends its next request as soon as the last was answered
    (closed loop, the servers' saturation). A ``rate`` per second: request i is due at
    i / rate whatever happened before it (open loop), and its latency runs from when it was
    due, so a request that could not even be sent on time counts its wait."""
    by_request: dict[int, float] = {}
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    start = threading.Barrier(senders + 1)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    began = 0.0

    def sender(index: int) -> None:
        connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=120) for port in ports]
        mine: dict[int, float] = {}
        codes: dict[int, int] = {}
        start.wait()
        for k, n in enumerate(range(index, len(requests), senders)):
            method, path, body = requests[n]
            due = time.perf_counter() if rate is None else began + n / rate
            time.sleep(max(0.0, due - time.perf_counter()))
            connection = connections[(index + k) % len(connections)]
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            mine[n] = (time.perf_counter() - due) * 1000
            codes[response.status] = codes.get(response.status, 0) + 1
        with lock:
            by_request.update(mine)
            for code, count in codes.items():
                statuses[code] = statuses.get(code, 0) + count

    threads = [threading.Thread(target=sender, args=(i,)) for i in range(senders)]
    for thread in threads:
        thread.start()
    began = time.perf_counter() + 0.05
    start.wait()
    for thread in threads:
        thread.join()
    latencies = list(by_request.values())
    return Result(time.perf_counter() - began, latencies, statuses, by_request)


def _storm(
    groups: int, per_group: int, per_message: int, *, name: str = "HighErrorRate"
) -> list[tuple[str, str, bytes | None]]:
    out: list[tuple[str, str, bytes | None]] = []
    for batch in range(per_group // per_message):
        for group in range(groups):
            alerts = [
                {
                    "status": "firing",
                    "labels": {
                        "alertname": f"{name}{group}",
                        "severity": "critical",
                        "pod": f"pod-{batch * per_message + i}",
                    },
                    "annotations": {"summary": "error rate above 5%"},
                    "startsAt": "2026-11-30T00:00:00Z",
                }
                for i in range(per_message)
            ]
            body = {
                "version": "4",
                "groupKey": f'{{}}:{{alertname="{name}{group}"}}',
                "status": "firing",
                "receiver": "firebreak",
                "alerts": alerts,
            }
            out.append(("POST", "/alerts/alertmanager", json.dumps(body).encode()))
    return out


def _singles(groups: int, count: int) -> list[tuple[str, str, bytes | None]]:
    return [
        (
            "POST",
            "/alerts/generic",
            json.dumps(
                {
                    "title": f"checkout errors {i % groups}",
                    "dedupe_key": f"single-{i % groups}",
                    "alert_key": f"host-{i}",
                    "severity": "warning",
                }
            ).encode(),
        )
        for i in range(count)
    ]


def _line(name: str, result: Result, alerts: int, floor: Result | None) -> str:
    p50 = percentile(result.latencies, 0.50)
    p99 = percentile(result.latencies, 0.99)
    text = (
        f"  {name:<26} {alerts / result.seconds:>8,.0f} alerts/s  "
        f"{len(result.latencies) / result.seconds:>7,.0f} webhooks/s  "
        f"p50 {p50:6.1f} ms  p99 {p99:6.1f} ms"
    )
    if floor is not None:
        f50 = percentile(floor.latencies, 0.50)
        f99 = percentile(floor.latencies, 0.99)
        text += f"  (x{p50 / f50:.1f} / x{p99 / f99:.1f} the floor)"
    bad = {code: n for code, n in result.statuses.items() if code != 200}
    if bad:
        text += f"  NOT 200: {bad}"
    return text


def _outcome(url: str) -> str:
    """What is stored, once the declares that waited are done (at most a minute)."""
    db = Database(url)
    try:
        started, waited = time.monotonic(), 0
        while time.monotonic() - started < 60:
            with db.read() as session:
                waiting = session.execute(
                    text(
                        "SELECT count(*) FROM effects WHERE kind = :kind AND state IN "
                        "('pending', 'claimed')"
                    ),
                    {"kind": kinds.ALERTS_DECLARE},
                ).scalar_one()
                waited = session.execute(
                    text("SELECT count(*) FROM effects WHERE kind = :kind"),
                    {"kind": kinds.ALERTS_DECLARE},
                ).scalar_one()
            if not waiting:
                break
            time.sleep(0.05)
        settled = time.monotonic() - started
        with db.read() as session:
            incidents = session.exec(select(func.count()).select_from(Incident)).one()
            keys = session.exec(select(Incident.declare_key)).all()
            duplicates = len(keys) - len(set(keys))
            alerts = session.exec(select(func.count()).select_from(AlertRecord)).one()
            groups = session.exec(select(func.count()).select_from(AlertGroup)).one()
            events = session.exec(select(func.count()).select_from(TimelineEvent)).one()
            notices = session.exec(select(func.count()).select_from(AlertNotice)).one()
            effects = "-"
            if inspect(db.engine).has_table("effects"):
                effects = str(session.execute(text("SELECT count(*) FROM effects")).scalar_one())
    finally:
        db.dispose()
    return (
        f"  outcome: {incidents} incidents ({duplicates} duplicate), {groups} groups, "
        f"{alerts:,} alert rows, {events:,} timeline entries, {notices} alert notices, "
        f"{effects} effects queued; {waited} declares so far waited for the counter, all done "
        f"{settled:.1f} s after the last webhook was answered"
    )


def bench(url: str, *, replicas: int, senders: int, label: str, rate: float) -> None:
    migrations.upgrade(url)
    context = multiprocessing.get_context("spawn")
    ports = [_free_port() for _ in range(replicas)]
    processes = [context.Process(target=_serve, args=(url, port), daemon=True) for port in ports]
    for process in processes:
        process.start()
    try:
        for port in ports:
            _wait(port)
        print(f"{label}: {replicas} server process(es), {senders} senders")
        floor = _run(ports, senders, [("GET", "/healthz", None)] * 2000)
        f50, f99 = percentile(floor.latencies, 0.5), percentile(floor.latencies, 0.99)
        print(f"  {'floor: GET /healthz':<26} p50 {f50:6.1f} ms  p99 {f99:6.1f} ms")
        storm = _run(ports, senders, _storm(groups=100, per_group=100, per_message=10))
        print(_line("storm 10,000 in 100 groups", storm, 10_000, floor))
        print(_outcome(url))
        singles = _run(ports, senders, _singles(groups=200, count=2000))
        print(_line("1 alert per webhook", singles, 2000, floor))
        print(_outcome(url))
        # The same storm (new groups) at a steady rate: latency at that load, not at saturation.
        paced = _run(
            ports,
            senders,
            _storm(groups=100, per_group=100, per_message=10, name="PacedErrorRate"),
            rate / 10,
        )
        print(_line(f"storm at {rate:,.0f} alerts/s", paced, 10_000, floor))
        # The first webhook of each group opens an incident; the rest attach to it.
        opened = [ms for n, ms in paced.by_request.items() if n < 100]
        attached = [ms for n, ms in paced.by_request.items() if n >= 100]
        print(
            f"  {'  of which open a group':<26} p50 {percentile(opened, 0.5):6.1f} ms  "
            f"p99 {percentile(opened, 0.99):6.1f} ms  (100 webhooks, each declares)"
        )
        print(
            f"  {'  of which join a group':<26} p50 {percentile(attached, 0.5):6.1f} ms  "
            f"p99 {percentile(attached, 0.99):6.1f} ms  (900 webhooks)"
        )
        print(_outcome(url))
    finally:
        for process in processes:
            process.terminate()
            process.join(10)


def _cpu_ms(database: Database, work: Callable[[Session], object]) -> float:
    started = time.process_time()
    database.transact(work)
    return (time.process_time() - started) * 1000


def cpu_bench(url: str, label: str) -> None:
    migrations.upgrade(url)
    database = Database(url)
    policy, catalog = Policy(), RunbookCatalog.of([])
    bodies = [json.loads(body or b"{}") for _, _, body in _storm(100, 100, 10)]
    messages = [parse("alertmanager", body, now=utcnow()) for body in bodies]
    floor = sorted(_cpu_ms(database, lambda s: s.execute(text("SELECT 1"))) for _ in range(1000))
    floor_ms = sum(floor[100:900]) / 800  # the middle 80 %
    opening, joining = [], []
    for index, message in enumerate(messages):
        cost = _cpu_ms(
            database,
            lambda s, m=message: ingest(s, policy, m, catalog=catalog, now=utcnow()),  # type: ignore[misc]
        )
        (opening if index < 100 else joining).append(cost)
    database.dispose()
    print(f"{label}: floor (an empty transaction) {floor_ms:.3f} ms CPU")
    for name, costs in (("open a group (declares)", opening), ("join a group", joining)):
        mean = sum(costs) / len(costs)
        print(
            f"  {name:<26} {mean:6.2f} ms CPU per webhook of 10 alerts"
            f"  (x{mean / floor_ms:.0f} the floor)"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "FIREBREAK_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
        help="PostgreSQL server to create a scratch database on",
    )
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--postgresql-only", action="store_true")
    parser.add_argument("--cpu", action="store_true", help="CPU per webhook, one thread")
    parser.add_argument("--senders", type=int, default=16)
    parser.add_argument(
        "--rate", type=float, default=1000.0, help="alerts/s of the paced storm (1000)"
    )
    args = parser.parse_args(argv)
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    if not args.postgresql_only:
        with scratch_database(None) as url:
            if args.cpu:
                cpu_bench(url, "SQLite")
            else:
                bench(url, replicas=1, senders=args.senders, label="SQLite", rate=args.rate)
    if not args.sqlite_only:
        with scratch_database(args.database_url, script="bench/alerts.py") as url:
            if args.cpu:
                cpu_bench(url, "PostgreSQL")
            else:
                bench(url, replicas=2, senders=args.senders, label="PostgreSQL", rate=args.rate)


if __name__ == "__main__":
    main(sys.argv[1:])
