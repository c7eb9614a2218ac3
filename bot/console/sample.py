"""A quarter of realistic incidents, made through the incident core, for the console's demo,
screenshots and browser tests. Deterministic for a given seed and ``now``."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot import incidents
from bot.config import Policy, PostmortemPolicy
from bot.db import Database
from bot.models import EventKind
from bot.postmortem import generate_postmortem
from bot.runbooks.parser import parse_runbook
from bot.runbooks.progress import start_run, update_step


@dataclass(frozen=True)
class Person:
    user_id: str
    name: str


PEOPLE = (
    Person("U0DANA", "Dana Reyes"),
    Person("U0SAM", "Sam Okafor"),
    Person("U0PRIYA", "Priya Natarajan"),
    Person("U0LEE", "Lee Chen"),
    Person("U0MARTA", "Marta Novak"),
)
SERVICES = ("checkout", "payments-api", "search", "auth", "notifications", "data-pipeline")
TITLES = (
    "Checkout returns 500s for card payments",
    "Payment confirmations delayed by 10 minutes",
    "Search results empty for some queries",
    "Login fails with 'invalid session' after deploy",
    "Push notifications not delivered on Android",
    "Nightly export job stuck at 40%",
    "Elevated p99 latency on the orders API",
    "Database connection pool exhausted",
    "Disk almost full on the Kafka brokers",
    "TLS certificate for api.acme.example expires in 3 days",
    "Third-party SMS provider outage",
    "Consumer lag growing on the events topic",
)
NOTES = (
    "Error rate started climbing right after the 14:02 deploy.",
    "Rolled back to the previous release; watching the dashboards.",
    "Upstream provider confirms a partial outage on their side.",
    "Scaled the pool from 50 to 120 connections as a stop-gap.",
    "Customer support reports about 40 tickets so far.",
    "Root cause: a missing index on orders.created_at after the migration.",
)
RUNBOOK = """---
title: High error rate
---
# High error rate

- [ ] Check the error-rate dashboard and note when it started
- [ ] Look for a deploy or config change at that time
- [ ] Roll back the change if there is one
- [ ] Confirm the error rate is back under 1 %
- [ ] Post a status update with what was done
"""


def seed_sample(
    database: Database,
    policy: Policy,
    *,
    now: datetime,
    count: int = 48,
    seed: int = 7,
    days: int = 100,
) -> list[int]:
    """Declare ``count`` incidents over the last ``days`` and play each through the core.
    Returns the incident numbers."""
    rng = random.Random(seed)
    quiet = policy.model_copy(update={"postmortem": PostmortemPolicy(output_dir=None)})
    runbook = parse_runbook(RUNBOOK, runbook_id="high-error-rate.md")
    numbers = []
    starts = sorted(now - timedelta(minutes=rng.randint(60, days * 24 * 60)) for _ in range(count))
    for n, declared in enumerate(starts):
        numbers.append(_play(database, quiet, rng, declared, now, n, runbook))
    return numbers


def _play(
    database: Database,
    policy: Policy,
    rng: random.Random,
    declared: datetime,
    now: datetime,
    n: int,
    runbook: object,
) -> int:
    reporter, commander, other = rng.sample(PEOPLE, 3)
    severity = rng.choices(["SEV1", "SEV2", "SEV3", "SEV4"], weights=[1, 3, 5, 2])[0]
    service = rng.choice(SERVICES)
    private = n % 11 == 5
    title = rng.choice(TITLES) if not private else "Suspected leaked credential in a public repo"
    age = now - declared
    t = declared

    def step(minutes: float) -> datetime:
        nonlocal t
        t = min(t + timedelta(minutes=minutes), now - timedelta(seconds=1))
        return t

    with database.transaction() as session:
        change = incidents.declare_incident(
            session,
            policy,
            title=title,
            reporter=reporter.user_id,
            severity=severity,
            summary=f"{service} is degraded; customers see errors." if n % 3 else "",
            service=service,
            private=private,
            impact_started_at=declared - timedelta(minutes=rng.randint(2, 40)),
            detected_at=declared - timedelta(minutes=rng.randint(0, 1)),
            now=declared,
        )
        incident_id = change.incident.id
        number = change.incident.number
        assert incident_id is not None
        ack_after = rng.choice([1, 2, 4, 6, 9, 15, 25, 45]) * (2 if severity == "SEV4" else 1)
        if age < timedelta(minutes=ack_after):
            return number
        if rng.random() < 0.2:
            incidents.record_timeline_event(
                session,
                policy,
                incident_id,
                kind=EventKind.ESCALATED,
                text="Nobody acknowledged in time: escalated to @platform-oncall",
                now=step(ack_after * 0.6),
            )
        incidents.assign_role(
            session,
            policy,
            incident_id,
            "commander",
            commander.user_id,
            actor=commander.user_id,
            now=step(ack_after * 0.4 + 1),
        )
        incidents.change_status(
            session,
            policy,
            incident_id,
            "investigating",
            actor=commander.user_id,
            now=step(rng.randint(2, 20)),
        )
        incidents.add_note(
            session,
            policy,
            incident_id,
            rng.choice(NOTES),
            actor=other.user_id,
            now=step(rng.randint(3, 30)),
        )
        incidents.record_timeline_event(
            session,
            policy,
            incident_id,
            kind=EventKind.MESSAGE,
            text=rng.choice(NOTES),
            actor=other.user_id,
            source_url=f"https://acme.slack.com/archives/C0INC{number}/p{1700000000 + n}000100",
            now=step(rng.randint(1, 10)),
        )
        if rng.random() < 0.5:
            run = start_run(
                session,
                policy,
                incident_id,
                runbook,  # type: ignore[arg-type]
                actor=commander.user_id,
                now=step(2),
            )
            for index in range(rng.randint(1, 5)):
                update_step(
                    session,
                    policy,
                    run.run.id,
                    index,
                    "done" if index != 2 else "skip",
                    actor=commander.user_id,
                    now=step(rng.randint(2, 15)),
                )
        if rng.random() < 0.4:
            incidents.assign_role(
                session,
                policy,
                incident_id,
                "comms",
                other.user_id,
                actor=commander.user_id,
                now=step(5),
            )
        incidents.post_status_update(
            session,
            policy,
            incident_id,
            "We found the cause and are rolling out a fix.",
            actor=commander.user_id,
            now=step(rng.randint(10, 60)),
        )
        if now - t < timedelta(hours=2) and n % 4 == 0:
            return number
        incidents.change_status(
            session,
            policy,
            incident_id,
            "monitoring",
            actor=commander.user_id,
            now=step(rng.randint(10, 180)),
        )
        for k in range(rng.randint(0, 3)):
            incidents.add_action_item(
                session,
                policy,
                incident_id,
                rng.choice(
                    [
                        "Add an alert on the connection pool saturation",
                        "Write a runbook for the SMS provider failover",
                        "Add the missing index in a migration",
                        "Make the deploy pipeline stop on a rising error rate",
                    ]
                ),
                actor=commander.user_id,
                owner=rng.choice(PEOPLE).user_id,
                due_on=(t + timedelta(days=rng.randint(3, 30))).date() if k % 2 == 0 else None,
                now=step(1),
            )
        incidents.resolve_incident(
            session, policy, incident_id, actor=commander.user_id, now=step(rng.randint(10, 120))
        )
        if now - t < timedelta(days=2):
            return number
        incidents.close_incident(
            session, policy, incident_id, actor=commander.user_id, now=step(60)
        )
        generate_postmortem(
            session,
            policy,
            incident_id,
            actor=commander.user_id,
            key=f"sample:{number}:1",
            now=step(1),
        )
        if n % 5 == 0:
            incidents.add_note(
                session,
                policy,
                incident_id,
                "Postmortem review: impact was 38 minutes.",
                actor=reporter.user_id,
                now=step(60 * 24),
            )
            generate_postmortem(
                session,
                policy,
                incident_id,
                actor=reporter.user_id,
                key=f"sample:{number}:2",
                now=step(5),
            )
        return number
