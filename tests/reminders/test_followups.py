"""Reminders after the heat: close in working hours, stale runbook steps, overdue action items,
and the daily digest."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory

from bot import incidents as core
from bot import reminders
from bot.config import Policy, policy_from_dict
from bot.db import Database
from bot.models import EventKind

from .conftest import TEAM_POLICY, FakeNotifier, at, declare, events_of, make_worker, reminder


def test_the_close_reminder_lands_in_working_hours_in_the_team_timezone(
    db: Database, notifier: FakeNotifier
) -> None:
    policy = policy_from_dict({"timezone": "America/New_York"})
    friday_3pm = datetime(2026, 3, 6, 20, 0, tzinfo=UTC)  # 15:00 in New York
    # +24h is Saturday; the next working time is Monday 09:00, which is already daylight
    # saving time (13:00 UTC, not 14:00).
    monday_9am = datetime(2026, 3, 9, 13, 0, tzinfo=UTC)
    with freeze_time(friday_3pm) as clock:
        incident_id = declare(db, policy, severity="SEV4")
        with db.transaction() as session:
            core.assign_role(session, policy, incident_id, "commander", "U0IC", actor="U0IC")
            core.resolve_incident(session, policy, incident_id, actor="U0IC")
        assert reminder(db, reminders.close_key(incident_id)).due_at == monday_9am

        worker = make_worker(db, policy, notifier)
        clock.move_to(monday_9am - timedelta(seconds=1))
        worker.tick()
        assert notifier.posts == []
        clock.move_to(monday_9am)
        worker.tick()
        clock.move_to(monday_9am + timedelta(days=3))
        worker.tick()
    [post] = notifier.posts
    assert "<@U0IC>" in post.body and "close it and finish the postmortem" in post.body
    assert "INC-1 was resolved 2d 17h ago" in post.body
    assert reminder(db, reminders.close_key(incident_id)).state == "sent"
    assert len(events_of(db, incident_id, EventKind.REMINDER_SENT)) == 1


def test_closing_before_the_reminder_means_none(
    db: Database, policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    incident_id = declare(db, policy, severity="SEV4")
    with db.transaction() as session:
        core.resolve_incident(session, policy, incident_id, actor="U0IC")
    at(clock, timedelta(hours=2))
    with db.transaction() as session:
        core.close_incident(session, policy, incident_id, actor="U0IC")
    at(clock, timedelta(days=4))
    make_worker(db, policy, notifier).tick()
    assert notifier.posts == []


def _step_event(
    db: Database, policy: Policy, incident_id: int, step: int, state: str, who: str | None
) -> None:
    with db.transaction() as session:
        core.record_timeline_event(
            session,
            policy,
            incident_id,
            kind=EventKind.RUNBOOK_STEP,
            text=f"step {step + 1}: {state}",
            actor="U0IC",
            data={
                "run_id": 11,
                "runbook_id": "payments/rollback.md",
                "step": step,
                "step_title": f"Step number {step + 1}",
                "state": state,
                "assignee": who,
            },
        )


def test_a_runbook_step_in_progress_too_long_nudges_its_assignee(
    db: Database, policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    incident_id = declare(db, policy, severity="SEV4")  # no ack deadline, updates every 4h
    worker = make_worker(db, policy, notifier)
    at(clock, timedelta(minutes=5))
    _step_event(db, policy, incident_id, 2, "in_progress", "U0OPS")
    _step_event(db, policy, incident_id, 3, "in_progress", "U0DBA")
    at(clock, timedelta(minutes=20))
    _step_event(db, policy, incident_id, 3, "done", None)  # finished in time: no nudge

    at(clock, timedelta(minutes=34, seconds=59))
    worker.tick()
    assert notifier.posts == []
    at(clock, timedelta(minutes=35))
    worker.tick()
    at(clock, timedelta(hours=2))
    worker.tick()
    [post] = notifier.containing(":hourglass:")
    assert "<@U0OPS>" in post.body and "step 3" in post.body and "Step number 3" in post.body
    assert "in progress for 30m" in post.body
    assert "<@U0DBA>" not in "".join(p.body for p in notifier.posts)
    [sent] = events_of(db, incident_id, EventKind.REMINDER_SENT)
    assert sent.data["step"] == 2


def test_overdue_action_items_get_one_message_per_incident_channel(
    db: Database, notifier: FakeNotifier
) -> None:
    policy = policy_from_dict({"reminders": {"action_items_cron": "0 10 * * 1-5"}})
    sunday = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    monday_ten = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    with freeze_time(sunday) as clock:
        payments = declare(db, policy, severity="SEV4", channel="C0PAY", title="Payments")
        search = declare(db, policy, severity="SEV4", channel="C0SEARCH", title="Search")
        quiet = declare(db, policy, severity="SEV4", channel="C0QUIET", title="Nothing late")
        with db.transaction() as session:
            add = core.add_action_item
            add(
                session,
                policy,
                payments,
                "Alert on 5xx",
                actor="U0IC",
                owner="U0ANA",
                due_on=date(2026, 2, 27),
            )
            add(
                session,
                policy,
                payments,
                "Load test",
                actor="U0IC",
                owner="U0BEN",
                due_on=date(2026, 3, 2),
            )  # due today: not overdue yet
            add(
                session,
                policy,
                payments,
                "Runbook",
                actor="U0IC",
                owner="U0CAL",
                due_on=date(2026, 2, 20),
            )
            core.complete_action_item(session, policy, payments, 3, actor="U0CAL")
            add(
                session,
                policy,
                search,
                "Add a &lt;b&gt;cache&lt;/b&gt;",  # as Slack delivers `<b>` typed in a command
                actor="U0IC",
                due_on=date(2026, 2, 28),
            )
            add(session, policy, quiet, "No date", actor="U0IC", owner="U0DAN")
            reminders.seed_recurring_reminders(session, policy, now=sunday)
        assert reminder(db, "actions").due_at == monday_ten

        worker = make_worker(db, policy, notifier)
        clock.move_to(monday_ten)
        worker.tick()
        worker.tick()
    chased = notifier.containing(":clipboard:")
    by_channel = {p.channel: p for p in chased}
    assert sorted(p.channel for p in chased) == ["C0PAY", "C0SEARCH"]
    pay = by_channel["C0PAY"].body
    assert "<@U0ANA>" in pay and "Alert on 5xx" in pay and "3 days overdue" in pay
    assert "Load test" not in pay and "Runbook" not in pay
    assert "no owner" in by_channel["C0SEARCH"].body
    assert "&lt;b&gt;cache&lt;/b&gt;" in by_channel["C0SEARCH"].body

    def chases(incident_id: int) -> list[list[int]]:
        events = events_of(db, incident_id, EventKind.REMINDER_SENT)
        return [e.data["action_items"] for e in events if e.data["reminder"] == "actions"]

    assert (chases(payments), chases(search), chases(quiet)) == ([[1]], [[1]], [])
    assert reminder(db, "actions").due_at == monday_ten + timedelta(days=1)


def test_the_digest_lists_open_incidents_but_never_private_ones(
    db: Database, notifier: FakeNotifier
) -> None:
    policy = policy_from_dict(TEAM_POLICY)
    early = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
    with freeze_time(early) as clock:
        public = declare(db, policy, severity="SEV1", channel="C0PUB", title="API down")
        declare(db, policy, severity="SEV2", channel="C0SECRET", private=True, title="Leak")
        closed = declare(db, policy, severity="SEV3", channel="C0OLD", title="Old news")
        with db.transaction() as session:
            core.post_status_update(session, policy, public, "Failing over", actor="U0IC")
            core.close_incident(session, policy, closed, actor="U0IC")
            reminders.seed_recurring_reminders(session, policy, now=early)
        worker = make_worker(db, policy, notifier)
        clock.move_to(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
        worker.tick()
    [digest] = [p for p in notifier.posts if p.channel == "C0ANNOUNCE"]
    assert "<#C0PUB|INC-1>" in digest.body and "API down" in digest.body
    assert "1 open incident" in digest.body and "last update 2h ago" in digest.body
    assert "INC-2" not in digest.body and "Leak" not in digest.body
    assert "INC-3" not in digest.body
    assert reminder(db, "digest").due_at == datetime(2026, 3, 3, 9, 0, tzinfo=UTC)


def test_overdue_action_items_of_an_archived_channel_go_to_their_owners(
    db: Database, notifier: FakeNotifier
) -> None:
    """A closed incident's channel is usually archived: a post there reaches nobody (and
    failed every day). Each owner is told in a direct message; an item with no owner has
    nobody to tell."""
    policy = policy_from_dict({"reminders": {"action_items_cron": "0 10 * * 1-5"}})
    sunday = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    monday_ten = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    with freeze_time(sunday) as clock:
        payments = declare(db, policy, severity="SEV4", channel="C0PAY", title="Payments")
        with db.transaction() as session:
            for text, owner in [("Alert on 5xx", "U0ANA"), ("Load test", "U0BEN"), ("Docs", None)]:
                core.add_action_item(
                    session,
                    policy,
                    payments,
                    text,
                    actor="U0IC",
                    owner=owner,
                    due_on=date(2026, 2, 27),
                )
            core.record_channel_archived(
                session, policy, payments, archived=True, actor="U0IC", key="archive"
            )
            reminders.seed_recurring_reminders(session, policy, now=sunday)
        worker = make_worker(db, policy, notifier)
        clock.move_to(monday_ten)
        worker.tick()
        worker.tick()
    chased = notifier.containing(":clipboard:")
    assert sorted(p.channel for p in chased) == ["U0ANA", "U0BEN"]
    ana = next(p.body for p in chased if p.channel == "U0ANA")
    assert "Alert on 5xx" in ana and "Load test" not in ana
    [sent] = [
        e
        for e in events_of(db, payments, EventKind.REMINDER_SENT)
        if e.data["reminder"] == "actions"
    ]
    assert sent.text == (
        "Reminded owners of overdue action items: 1, 2 (by direct message: the incident's "
        "channel is archived)"
    )


def test_an_action_item_chase_missed_in_working_hours_goes_out_once_when_people_work(
    db: Database, notifier: FakeNotifier
) -> None:
    """The Friday 10:00 chase was missed (no replica ran until Saturday 03:00, or the clock
    jumped): it is not sent in the night, and on Monday it goes out once, with Monday's
    regular 10:00 chase (it went out at 09:00 and again at 10:00)."""
    policy = policy_from_dict(
        {"timezone": "Europe/Berlin", "reminders": {"action_items_cron": "0 10 * * 1-5"}}
    )
    thursday = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)
    monday_ten = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)  # 10:00 in Berlin
    with freeze_time(thursday) as clock:
        incident = declare(db, policy, severity="SEV4", channel="C0PAY", title="Payments")
        with db.transaction() as session:
            core.add_action_item(
                session, policy, incident, "Alert on 5xx", actor="U0IC", due_on=date(2026, 3, 2)
            )
            reminders.seed_recurring_reminders(session, policy, now=thursday)
        worker = make_worker(db, policy, notifier)
        clock.move_to(datetime(2026, 3, 7, 2, 0, tzinfo=UTC))  # Saturday 03:00 in Berlin
        worker.tick()
        assert notifier.containing(":clipboard:") == []
        assert reminder(db, "actions").due_at == monday_ten
        for hour in (8, 9, 10, 11):  # Monday 09:00 to 12:00 in Berlin
            clock.move_to(datetime(2026, 3, 9, hour, 0, tzinfo=UTC))
            worker.tick()
    [chase] = notifier.containing(":clipboard:")
    assert chase.channel == "C0PAY" and "Alert on 5xx" in chase.body
    assert reminder(db, "actions").due_at == monday_ten + timedelta(days=1)


def test_a_digest_missed_over_the_weekend_goes_out_once_on_monday(
    db: Database, notifier: FakeNotifier
) -> None:
    """No replica ran from Friday morning until Monday 07:00: the missed digest is not posted
    at start-up and again at 09:00, but once, at Monday's 09:00."""
    policy = policy_from_dict(TEAM_POLICY)
    friday = datetime(2026, 3, 6, 7, 0, tzinfo=UTC)
    monday_nine = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)
    with freeze_time(friday) as clock:
        declare(db, policy, severity="SEV2", channel="C0PUB", title="API slow")
        with db.transaction() as session:
            reminders.seed_recurring_reminders(session, policy, now=friday)
        worker = make_worker(db, policy, notifier)
        for moment in (monday_nine - timedelta(hours=2), monday_nine, monday_nine.replace(hour=12)):
            clock.move_to(moment)
            worker.tick()
    assert len([p for p in notifier.posts if p.channel == "C0ANNOUNCE"]) == 1
    assert reminder(db, "digest").due_at == monday_nine + timedelta(days=1)
