"""Clocks on a real incident: classify, start, warn through durable reminders, complete."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from sqlmodel import col, select

from bot import incidents as core
from bot.audit import regulatory
from bot.audit.verify import verify_chains
from bot.config import Policy, policy_from_dict
from bot.db import Database
from bot.errors import InvalidInput
from bot.models import EventKind, Reminder, TimelineEvent

AWARE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # Monday


@pytest.fixture
def dora() -> Policy:
    return policy_from_dict({"clocks": [{"preset": "dora"}, {"preset": "gdpr"}]})


def declare(db: Database, policy: Policy) -> int:
    with freeze_time(AWARE), db.transaction() as session:
        incident = core.declare_incident(
            session, policy, title="Card payments failing", reporter="U1", detected_at=AWARE
        ).incident
    assert incident.id is not None
    return incident.id


def clock_reminders(db: Database, incident_id: int) -> list[tuple[str, datetime, str]]:
    with db.read() as session:
        rows = session.exec(
            select(Reminder)
            .where(Reminder.incident_id == incident_id, Reminder.kind == "clock")
            .order_by(col(Reminder.due_at))
        ).all()
    return [(r.dedupe_key.split(":", 2)[2], r.due_at, r.state) for r in rows]


def kinds(db: Database, incident_id: int) -> list[str]:
    with db.read() as session:
        return [
            str(e.kind)
            for e in core.timeline(session, incident_id, include_retracted=True)
            if e.kind != EventKind.DECLARED
        ]


def classify(db: Database, policy: Policy, incident_id: int, at: datetime, **kw: str) -> str:
    with freeze_time(at), db.transaction() as session:
        return regulatory.classify_incident(
            session, policy, incident_id, kw.get("what", "major"), actor="U2", key=kw.get("key")
        ).message


def notified(db: Database, policy: Policy, incident_id: int, clock: str, at: datetime) -> str:
    with freeze_time(at), db.transaction() as session:
        return regulatory.complete_clock(session, policy, incident_id, clock, actor="U3").message


def test_classifying_major_starts_the_dora_clock_and_schedules_its_warnings(
    db: Database, dora: Policy
) -> None:
    incident_id = declare(db, dora)
    message = classify(db, dora, incident_id, AWARE + timedelta(hours=1))
    assert message.startswith(
        "INC-1 classified major. INC-1: DORA initial notification is due in 4h, at "
        "2026-03-02 14:00 UTC."
    )
    assert kinds(db, incident_id) == ["classified", "clock_started"]
    assert clock_reminders(db, incident_id) == [
        ("initial:before-1h", AWARE + timedelta(hours=4), "pending"),
        ("initial:before-15m", AWARE + timedelta(hours=4, minutes=45), "pending"),
        ("initial:due", AWARE + timedelta(hours=5), "pending"),
    ]
    with db.read() as session:
        assert verify_chains(session).ok


def test_bad_classifications_and_completions_change_nothing(db: Database, dora: Policy) -> None:
    incident_id = declare(db, dora)
    classify(db, dora, incident_id, AWARE + timedelta(hours=1))
    before = (kinds(db, incident_id), clock_reminders(db, incident_id))
    cases: list[tuple[Callable[[], str], str]] = [
        (lambda: classify(db, dora, incident_id, AWARE + timedelta(hours=2)), "already classified"),
        (lambda: classify(db, dora, incident_id, AWARE, what="minor"), "Unknown classification"),
        (
            lambda: notified(db, dora, incident_id, "final", AWARE),
            "The DORA final report clock has not started on INC-1",
        ),
        (lambda: notified(db, dora, incident_id, "sox", AWARE), "Unknown clock 'sox'. Clocks:"),
    ]
    for call, message in cases:
        with pytest.raises(InvalidInput, match=message):
            call()
    assert (kinds(db, incident_id), clock_reminders(db, incident_id)) == before
    with pytest.raises(InvalidInput, match="No regulatory clocks are configured"):
        classify(db, Policy(), incident_id, AWARE)


def test_a_repeated_request_returns_the_earlier_result(db: Database, dora: Policy) -> None:
    incident_id = declare(db, dora)
    classify(db, dora, incident_id, AWARE + timedelta(hours=1), key="trigger-1")
    assert classify(db, dora, incident_id, AWARE + timedelta(hours=1), key="trigger-1") == (
        "INC-1 is already classified major."
    )
    assert kinds(db, incident_id) == ["classified", "clock_started"]


def test_notified_completes_the_clock_and_starts_the_next_one(db: Database, dora: Policy) -> None:
    incident_id = declare(db, dora)
    classify(db, dora, incident_id, AWARE + timedelta(hours=1))
    friday = datetime(2026, 3, 6, 17, 0, tzinfo=UTC)
    message = notified(db, dora, incident_id, "initial", AWARE + timedelta(hours=3))
    assert message.startswith(
        "INC-1: DORA initial notification recorded as sent (on time). INC-1: DORA intermediate "
        "report is due in 3d, at 2026-03-05 12:00 UTC."
    )
    with pytest.raises(InvalidInput, match="already recorded as sent on INC-1 at 2026-03-02 12:00"):
        notified(db, dora, incident_id, "initial", AWARE + timedelta(hours=4))
    reminders = clock_reminders(db, incident_id)
    assert [(k, s) for k, _, s in reminders if k.startswith("initial")] == [
        ("initial:before-1h", "cancelled"),
        ("initial:before-15m", "cancelled"),
        ("initial:due", "cancelled"),
    ]
    assert [(k, d) for k, d, _ in reminders if k.startswith("intermediate")] == [
        ("intermediate:before-12h", datetime(2026, 3, 5, 0, 0, tzinfo=UTC)),
        ("intermediate:before-1h", datetime(2026, 3, 5, 11, 0, tzinfo=UTC)),
        ("intermediate:due", datetime(2026, 3, 5, 12, 0, tzinfo=UTC)),
    ]
    notified(db, dora, incident_id, "intermediate", friday)  # late: due Thursday 12:00
    notified(db, dora, incident_id, "intermediate", friday + timedelta(days=3))  # an update
    with db.read() as session:
        incident = core.get_incident(session, incident_id)
        lines = regulatory.clock_summary(session, dora, incident, friday + timedelta(days=4))
        events = session.exec(
            select(TimelineEvent).where(TimelineEvent.kind == EventKind.CLOCK_COMPLETED)
        ).all()
        assert verify_chains(session).ok
    assert [e.data["late"] for e in events] == [False, True, True]
    assert lines == [
        "DORA initial notification: sent 2026-03-02 12:00 UTC",
        "DORA intermediate report: sent 2026-03-06 17:00 UTC, 1d 5h late; latest 2026-03-09 "
        "17:00 UTC (2 recorded)",
        "DORA final report: due 2026-04-09 17:00 UTC (in 30d)",
    ]


def test_syncing_again_never_rearms_a_warning_already_sent(db: Database, dora: Policy) -> None:
    incident_id = declare(db, dora)
    classify(db, dora, incident_id, AWARE + timedelta(hours=1))
    with db.transaction() as session:
        row = session.exec(
            select(Reminder).where(col(Reminder.dedupe_key).endswith("before-1h"))
        ).one()
        row.state = "sent"
        session.add(row)
    for _ in range(2):
        with freeze_time(AWARE + timedelta(hours=4, minutes=5)), db.transaction() as session:
            regulatory.sync_clocks(session, dora, incident_id)
    assert [s for _, _, s in clock_reminders(db, incident_id)] == ["sent", "pending", "pending"]
    assert kinds(db, incident_id) == ["classified", "clock_started"]


def test_the_reminder_outcome_is_read_from_the_database_after_a_restart(
    db: Database, dora: Policy, database_url: str
) -> None:
    incident_id = declare(db, dora)
    classify(db, dora, incident_id, AWARE + timedelta(hours=22))  # Tuesday 07:00
    restarted = Database(database_url)
    try:
        with restarted.read() as session:
            incident = core.get_incident(session, incident_id)
            data = (
                session.exec(
                    select(Reminder).where(
                        Reminder.dedupe_key == f"clock:{incident_id}:initial:due"
                    )
                )
                .one()
                .data
            )
            at_due = regulatory.clock_reminder_outcome(
                session, dora, incident, data, AWARE + timedelta(hours=24)
            )
            early = regulatory.clock_reminder_outcome(
                session, dora, incident, data, AWARE + timedelta(hours=23)
            )
    finally:
        restarted.dispose()
    assert at_due.text is not None
    assert at_due.text.startswith(
        "INC-1: DORA initial notification is due now (2026-03-03 09:00 UTC). Deadline: the "
        "earlier of 4h after the clock's start"
    )
    assert (early.text, early.retry_at) == (None, AWARE + timedelta(hours=24))
    assert regulatory.warned_event(data) == (
        EventKind.CLOCK_WARNED,
        {"clock": "initial", "point": "due", "due_at": data["due_at"]},
    )


def test_clocks_can_start_on_a_severity_being_reached(db: Database) -> None:
    policy = policy_from_dict(
        {
            "clocks": [
                {
                    "key": "regulator",
                    "name": "Regulator call",
                    "starts_on": "severity:SEV2",
                    "deadlines": [{"after": "2h"}],
                    "warn_before": ["30m"],
                }
            ]
        }
    )
    incident_id = declare(db, policy)
    with freeze_time(AWARE + timedelta(minutes=10)), db.transaction() as session:
        assert not regulatory.sync_clocks(session, policy, incident_id)["regulator"].started
    with freeze_time(AWARE + timedelta(minutes=20)), db.transaction() as session:
        core.change_severity(session, policy, incident_id, "SEV1", actor="U1")
        board = regulatory.sync_clocks(session, policy, incident_id)
    assert board["regulator"].started_at == AWARE + timedelta(minutes=20)
    assert board["regulator"].due_at == AWARE + timedelta(hours=2, minutes=20)


def test_two_replicas_classifying_at_once_record_it_once(db: Database, dora: Policy) -> None:
    incident_id = declare(db, dora)
    outcomes: list[str] = []

    def classify_once(actor: str) -> None:
        try:
            with db.transaction() as session:
                regulatory.classify_incident(
                    session, dora, incident_id, "major", actor=actor, now=AWARE
                )
            outcomes.append("classified")
        except InvalidInput as error:
            outcomes.append(str(error).split(" on ")[0])

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(classify_once, ["U2", "U3"]))
    assert sorted(outcomes) == ["INC-1 was already classified major", "classified"]
    assert kinds(db, incident_id) == ["classified", "clock_started"]
    assert len(clock_reminders(db, incident_id)) == 3
