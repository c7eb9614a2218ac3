"""The queries behind the insights, with the clock frozen."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time

from bot import incidents
from bot.config import Policy
from bot.console import insights as ins
from bot.console.queries import Visibility, compute_visibility
from bot.console.sample import RUNBOOK
from bot.db import Database
from bot.errors import InvalidInput
from bot.models import EventKind
from bot.runbooks.parser import parse_runbook
from bot.runbooks.progress import start_run, update_step
from tests.console.conftest import ADMIN, MEMBER, OUTSIDER, PRIVATE_CHANNEL, declare, directory

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # a Monday
EVERYONE = Visibility(frozenset(), all_private=True)


def week_of(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(hour=10, tzinfo=UTC)


def test_weeks_and_months_cover_the_range() -> None:
    with freeze_time(NOW):
        weeks = ins.make_range("week", None, None, ZoneInfo("UTC"))
        months = ins.make_range("month", None, None, ZoneInfo("UTC"))
        custom = ins.make_range("week", date(2026, 11, 4), date(2026, 11, 18), ZoneInfo("UTC"))
    assert len(weeks.buckets) == 12
    assert weeks.labels[0] == "2026-W38" and weeks.labels[-1] == "2026-W49"
    assert weeks.start == datetime(2026, 9, 14, tzinfo=UTC)
    assert weeks.end == datetime(2026, 12, 7, tzinfo=UTC)
    assert months.labels[0] == "2025-12" and months.labels[-1] == "2026-11"
    assert custom.labels == ["2026-W45", "2026-W46", "2026-W47"]
    assert custom.index(datetime(2026, 11, 9, 0, 0, tzinfo=UTC)) == 1
    assert custom.index(datetime(2026, 11, 8, 23, 59, tzinfo=UTC)) == 0
    assert custom.index(datetime(2026, 11, 23, tzinfo=UTC)) is None


def test_periods_follow_the_team_timezone() -> None:
    zone = ZoneInfo("America/New_York")
    rng = ins.make_range("month", date(2026, 11, 1), date(2026, 11, 30), zone)
    assert rng.start == datetime(2026, 11, 1, 4, 0, tzinfo=UTC)  # midnight EDT
    assert rng.end == datetime(2026, 12, 1, 5, 0, tzinfo=UTC)  # midnight EST


def test_bad_ranges_are_refused() -> None:
    with pytest.raises(InvalidInput, match="'week' or 'month'"):
        ins.make_range("day", None, None, ZoneInfo("UTC"))
    with pytest.raises(InvalidInput, match="after the 'to' date"):
        ins.make_range("week", date(2026, 5, 1), date(2026, 4, 1), ZoneInfo("UTC"))
    with pytest.raises(InvalidInput, match="more than 260 weeks"):
        ins.make_range("week", date(2000, 1, 1), date(2026, 1, 1), ZoneInfo("UTC"))


def test_median_and_nearest_rank_p90() -> None:
    assert ins.median([]) is None and ins.p90([]) is None
    assert ins.median([4.0, 1.0, 3.0, 2.0]) == 2.5
    assert ins.p90([float(v) for v in range(1, 11)]) == 9.0
    assert ins.p90([float(v) for v in range(1, 12)]) == 10.0
    assert ins.p90([7.0]) == 7.0


def _ack(db: Database, policy: Policy, number: int, after: timedelta, at: datetime) -> None:
    with db.transaction() as session:
        incident = incidents.find_incident(session, number)
        assert incident.id is not None
        incidents.acknowledge_incident(session, policy, incident.id, actor=ADMIN, now=at + after)


def test_counts_by_severity_and_service_and_response_times(db: Database, policy: Policy) -> None:
    monday = week_of("2026-11-16")
    cases = [
        ("SEV1", "checkout", 2),
        ("SEV1", "search", 4),
        ("SEV3", "checkout", 30),
        ("SEV2", None, None),
    ]
    for i, (level, system, ack) in enumerate(cases):
        at = monday + timedelta(hours=i)
        number = declare(db, policy, f"Incident {i}", at=at, severity=level, service=system)
        if ack is not None:
            _ack(db, policy, number, timedelta(minutes=ack), at)
    declare(db, policy, "Last week", at=week_of("2026-11-10"), severity="SEV4")
    rng = ins.make_range("week", date(2026, 11, 9), date(2026, 11, 22), ZoneInfo("UTC"))
    with freeze_time(NOW), db.read() as session:
        rows = ins.incident_rows(session, EVERYONE, rng)
        severity = ins.by_severity(policy, rng, rows)
        service = ins.by_service(rng, rows)
        tta = ins.response_time(rng, rows, "time_to_acknowledge")
    assert severity.columns == ["period", "SEV1", "SEV2", "SEV3", "SEV4", "total"]
    assert severity.rows == [["2026-W46", 0, 0, 0, 1, 1], ["2026-W47", 2, 1, 1, 0, 4]]
    assert service.columns == ["period", "checkout", "(none)", "search", "total"]
    assert service.rows == [["2026-W46", 1, 0, 0, 1], ["2026-W47", 2, 1, 1, 4]]
    assert tta.rows == [["2026-W46", 0, None, None], ["2026-W47", 3, 4.0, 30.0]]


def test_time_in_each_status(db: Database, policy: Policy) -> None:
    t0 = week_of("2026-11-16")
    done = declare(db, policy, "Closed one", at=t0)
    declare(db, policy, "Still in triage", at=NOW - timedelta(hours=3))
    with db.transaction() as session:
        incident = incidents.find_incident(session, done)
        iid = incident.id
        assert iid is not None
        for status, minutes in (("investigating", 30), ("monitoring", 90), ("resolved", 150)):
            incidents.change_status(
                session, policy, iid, status, actor=ADMIN, now=t0 + timedelta(minutes=minutes)
            )
        incidents.close_incident(session, policy, iid, actor=ADMIN, now=t0 + timedelta(minutes=200))
    rng = ins.make_range("week", date(2026, 11, 16), date(2026, 11, 30), ZoneInfo("UTC"))
    with db.read() as session:
        table = ins.time_in_status(session, policy, EVERYONE, rng, now=NOW)
    by_status = {row[0]: row[1:] for row in table.rows}
    assert table.columns == ["status", "incidents", "median", "p90", "total"]
    assert by_status["triage"] == [2, 1.8, 3.0, 3.5]  # 0.5 h and 3 h (still open)
    assert by_status["investigating"] == [1, 1.0, 1.0, 1.0]
    assert by_status["monitoring"] == [1, 1.0, 1.0, 1.0]
    assert by_status["resolved"] == [1, 0.8, 0.8, 0.8]
    assert by_status["identified"] == [0, None, None, 0.0]
    assert "closed" not in by_status


def test_time_in_each_status_stops_at_the_end_of_the_period_shown(
    db: Database, policy: Policy
) -> None:
    """An incident of week 47 left in Resolved (not closed), one still investigating: each
    status counts up to the end of the period shown (Monday 23 November, 00:00), so last week's
    figures are the same whenever they are read, and a range ending today stops at now."""
    t0 = week_of("2026-11-16")  # Monday 10:00
    left = declare(db, policy, "Awaiting its postmortem", at=t0)
    open_one = declare(db, policy, "Still investigating", at=t0)
    with db.transaction() as session:
        for number, status in ((left, "resolved"), (open_one, "investigating")):
            iid = incidents.find_incident(session, number).id
            assert iid is not None
            incidents.change_status(
                session, policy, iid, status, actor=ADMIN, now=t0 + timedelta(minutes=30)
            )
    week = ins.make_range("week", date(2026, 11, 16), date(2026, 11, 22), ZoneInfo("UTC"))
    seen = []
    for now in (NOW, NOW + timedelta(days=40)):
        with freeze_time(now), db.read() as session:
            seen.append(ins.time_in_status(session, policy, EVERYONE, week).rows)
    assert seen[0] == seen[1]
    by_status = {row[0]: row[1:] for row in seen[0]}
    # 10:30 on the 16th to 00:00 on the 23rd: 157.5 h
    assert by_status["resolved"] == [1, 157.5, 157.5, 157.5]
    assert by_status["investigating"] == [1, 157.5, 157.5, 157.5]
    assert by_status["triage"] == [2, 0.5, 0.5, 1.0]
    with freeze_time(t0 + timedelta(hours=2)), db.read() as session:
        early = ins.time_in_status(session, policy, EVERYONE, week)  # the week is not over
    assert {row[0]: row[1:] for row in early.rows}["resolved"] == [1, 1.5, 1.5, 1.5]
    assert "end of the period shown" in early.note


def test_action_items_open_overdue_and_done(db: Database, policy: Policy) -> None:
    at = week_of("2026-11-16")
    number = declare(db, policy, "With follow-up", at=at)
    with db.transaction() as session:
        iid = incidents.find_incident(session, number).id
        assert iid is not None
        for text, due in (
            ("late", date(2026, 11, 29)),
            ("due today", date(2026, 11, 30)),
            ("none", None),
            ("done", None),
        ):
            incidents.add_action_item(session, policy, iid, text, actor=ADMIN, due_on=due, now=at)
        incidents.complete_action_item(
            session, policy, iid, 4, actor=ADMIN, now=at + timedelta(days=1)
        )
    rng = ins.make_range("week", date(2026, 11, 16), date(2026, 11, 22), ZoneInfo("UTC"))
    with db.read() as session:
        table = ins.action_items(session, policy, EVERYONE, rng, now=NOW)
    assert table.rows == [["2026-W47", 1, 2, 1, 4]]


def test_escalations_and_reminders_sent(db: Database, policy: Policy) -> None:
    at = week_of("2026-11-16")
    number = declare(db, policy, "Unanswered", at=at)
    with db.transaction() as session:
        iid = incidents.find_incident(session, number).id
        assert iid is not None
        for n, kind in enumerate(
            (EventKind.ESCALATED, EventKind.ESCALATED, EventKind.REMINDER_SENT)
        ):
            incidents.record_timeline_event(
                session, policy, iid, kind=kind, text=kind.value, now=at + timedelta(days=n * 4)
            )
    rng = ins.make_range("week", date(2026, 11, 16), date(2026, 11, 29), ZoneInfo("UTC"))
    with db.read() as session:
        table = ins.escalations(session, EVERYONE, rng)
    assert table.rows == [["2026-W47", 2, 0, 2], ["2026-W48", 0, 1, 1]]


def test_runbooks_used_most_and_their_completion(db: Database, policy: Policy) -> None:
    runbook = parse_runbook(RUNBOOK, runbook_id="high-error-rate.md")
    at = week_of("2026-11-16")
    for finished in (5, 2):
        number = declare(db, policy, f"Errors {finished}", at=at)
        with db.transaction() as session:
            iid = incidents.find_incident(session, number).id
            assert iid is not None
            run = start_run(session, policy, iid, runbook, actor=ADMIN, now=at)
            for step in range(finished):
                update_step(session, policy, run.run.id, step, "done", actor=ADMIN, now=at)
    rng = ins.make_range("week", date(2026, 11, 16), date(2026, 11, 22), ZoneInfo("UTC"))
    with db.read() as session:
        table = ins.runbooks(session, EVERYONE, rng)
    assert table.rows == [["High error rate", 2, 1, 70.0]]


def test_private_incidents_count_only_for_those_who_may_see_them(
    db: Database, policy: Policy
) -> None:
    at = week_of("2026-11-16")
    declare(db, policy, "Public", at=at)
    declare(db, policy, "Secret", at=at, private=True, channel=PRIVATE_CHANNEL)
    rng = ins.make_range("week", date(2026, 11, 16), date(2026, 11, 22), ZoneInfo("UTC"))
    totals = {}
    with db.read() as session:
        for user in (ADMIN, MEMBER, OUTSIDER):
            visibility = compute_visibility(session, policy, user, directory())
            rows = ins.incident_rows(session, visibility, rng)
            totals[user] = ins.by_severity(policy, rng, rows).rows[0][-1]
    assert totals == {ADMIN: 2, MEMBER: 2, OUTSIDER: 1}
