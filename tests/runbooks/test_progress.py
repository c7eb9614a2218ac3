"""Walking a runbook in an incident: runs, step states and the timeline, on both backends."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from threading import Barrier

import pytest
from freezegun import freeze_time
from sqlmodel import Session, select

from bot import incidents as core
from bot.config import Policy, policy_from_dict
from bot.db import Database
from bot.errors import InvalidInput, InvalidTransition, NotFound
from bot.models import EventKind, RunbookRun, RunbookStepState, TimelineEvent
from bot.runbooks import progress
from bot.runbooks.parser import Runbook, parse_runbook
from bot.slack.limits import message_errors
from bot.slack.runbook_messages import render_run_message

THREE_STEPS = parse_runbook(
    "# Disk full\n\n## Meaning\n\nThe disk is full.\n\n## Steps\n\n"
    "- [ ] Check df\n- [ ] Free space\n- [ ] Verify\n",
    runbook_id="disk-full",
)
OTHER = parse_runbook("# Roll back\n\n1. Undo\n2. Check\n", runbook_id="rollback")


def declare(db: Database, policy: Policy) -> int:
    with db.transaction() as session:
        incident = core.declare_incident(session, policy, title="Disk full", reporter="U1")
        assert incident.incident.id is not None
        return incident.incident.id


def start(db: Database, policy: Policy, incident_id: int, runbook: Runbook = THREE_STEPS) -> int:
    with db.transaction() as session:
        change = progress.start_run(session, policy, incident_id, runbook, actor="U1")
        return change.run.id


def events(session: Session, kind: str) -> list[TimelineEvent]:
    return list(session.exec(select(TimelineEvent).where(TimelineEvent.kind == kind)).all())


def test_starting_a_run_snapshots_the_runbook_and_records_the_timeline(
    db: Database, policy: Policy
) -> None:
    incident_id = declare(db, policy)
    at = datetime(2024, 5, 1, 3, 0, tzinfo=UTC)

    with db.transaction() as session:
        change = progress.start_run(session, policy, incident_id, THREE_STEPS, actor="U2", now=at)

    assert change.changed
    with db.transaction() as session:
        run = session.get(RunbookRun, change.run.id)
        assert run is not None
        assert run.snapshot == {
            "title": "Disk full",
            "description": "The disk is full.",
            "context": [{"title": "Meaning", "markdown": "The disk is full."}],
            "steps": [
                {"title": "Check df", "markdown": "Check df", "line": 9},
                {"title": "Free space", "markdown": "Free space", "line": 10},
                {"title": "Verify", "markdown": "Verify", "line": 11},
            ],
        }
        assert (run.step_count, run.status, run.started_by, run.started_at) == (
            3,
            "active",
            "U2",
            at,
        )
        assert run.content_hash == THREE_STEPS.content_hash
        states = session.exec(select(RunbookStepState).where(RunbookStepState.run_id == run.id))
        assert sorted((s.step_index, s.state) for s in states) == [
            (0, "pending"),
            (1, "pending"),
            (2, "pending"),
        ]
        (event,) = events(session, EventKind.RUNBOOK_STARTED)
        assert event.data == {
            "run_id": run.id,
            "runbook_id": "disk-full",
            "title": "Disk full",
            "steps": 3,
        }
        assert event.actor_id == "U2"


def test_starting_the_same_runbook_twice_returns_the_first_run(
    db: Database, policy: Policy
) -> None:
    incident_id = declare(db, policy)
    first = start(db, policy, incident_id)

    with db.transaction() as session:
        again = progress.start_run(session, policy, incident_id, THREE_STEPS, actor="U3")
        other = progress.start_run(session, policy, incident_id, OTHER, actor="U3")

    assert (again.run.id, again.changed) == (first, False)
    assert other.changed and other.run.id != first
    with db.transaction() as session:
        assert len(events(session, EventKind.RUNBOOK_STARTED)) == 2
        assert [r.runbook_id for r in progress.list_runs(session, incident_id)] == [
            "disk-full",
            "rollback",
        ]


def test_a_retried_start_with_the_same_key_changes_nothing(db: Database, policy: Policy) -> None:
    incident_id = declare(db, policy)
    with db.transaction() as session:
        first = progress.start_run(session, policy, incident_id, OTHER, actor="U1", key="t:1")
    with db.transaction() as session:
        again = progress.start_run(session, policy, incident_id, OTHER, actor="U1", key="t:1")
        assert (again.run.id, again.changed) == (first.run.id, False)
        assert len(events(session, EventKind.RUNBOOK_STARTED)) == 1


def test_a_runbook_without_steps_cannot_be_started(db: Database, policy: Policy) -> None:
    incident_id = declare(db, policy)
    empty = parse_runbook("---\ntitle: x\n---\n", runbook_id="empty")

    with db.transaction() as session, pytest.raises(InvalidInput, match="no steps"):
        progress.start_run(session, policy, incident_id, empty, actor="U1")
    with db.transaction() as session, pytest.raises(NotFound):
        progress.start_run(session, policy, incident_id + 100, THREE_STEPS, actor="U1")


def update(
    db: Database, policy: Policy, run_id: int, step: int, action: str, **kwargs: object
) -> progress.RunChange:
    with db.transaction() as session:
        return progress.update_step(
            session,
            policy,
            run_id,
            step,
            action,
            actor=str(kwargs.pop("actor", "U1")),
            **kwargs,  # type: ignore[arg-type]
        )


def step_events(db: Database) -> list[dict[str, object]]:
    with db.transaction() as session:
        return [
            e.data
            for e in session.exec(
                select(TimelineEvent)
                .where(TimelineEvent.kind == EventKind.RUNBOOK_STEP)
                .order_by(TimelineEvent.id)  # type: ignore[arg-type]
            ).all()
        ]


def test_each_step_change_records_exactly_the_documented_event(
    db: Database, policy: Policy
) -> None:
    incident_id = declare(db, policy)
    run_id = start(db, policy, incident_id)

    update(db, policy, run_id, 0, "done")
    update(db, policy, run_id, 1, "assign", assignee="U7")
    update(db, policy, run_id, 2, "skip")
    update(db, policy, run_id, 1, "reopen")

    base = {"run_id": run_id, "runbook_id": "disk-full"}
    assert step_events(db) == [
        {**base, "step": 0, "step_title": "Check df", "state": "done", "assignee": None},
        {**base, "step": 1, "step_title": "Free space", "state": "in_progress", "assignee": "U7"},
        {**base, "step": 2, "step_title": "Verify", "state": "skipped", "assignee": None},
        {**base, "step": 1, "step_title": "Free space", "state": "pending", "assignee": None},
    ]


def test_a_click_that_changes_nothing_writes_nothing(db: Database, policy: Policy) -> None:
    incident_id = declare(db, policy)
    run_id = start(db, policy, incident_id)

    assert update(db, policy, run_id, 0, "done").changed
    # Done again (a double click, or someone else's copy): refused, naming who did it.
    with pytest.raises(InvalidInput, match=r"Step 1 of Disk full was already marked done by <@U1>"):
        update(db, policy, run_id, 0, "done", actor="U2")
    assert not update(db, policy, run_id, 1, "reopen").changed
    assert update(db, policy, run_id, 1, "assign", assignee="U5").changed
    assert not update(db, policy, run_id, 1, "assign", assignee="U5").changed
    assert update(db, policy, run_id, 1, "assign", assignee="U6").changed
    assert len(step_events(db)) == 3


def test_a_finished_step_changes_only_by_reopening_it(db: Database, policy: Policy) -> None:
    """A finished step shows only Reopen: Done, Skip or Assign on it come from a message that
    is out of date. They are refused with who finished it, and what was done stays done."""
    incident_id = declare(db, policy)
    run_id = start(db, policy, incident_id)
    update(db, policy, run_id, 0, "done", actor="U2")
    for action, extra in (("skip", {}), ("assign", {"assignee": "U5"})):
        with pytest.raises(InvalidInput) as refused:
            update(db, policy, run_id, 0, action, actor="U3", **extra)
        assert str(refused.value) == (
            "Step 1 of Disk full was already marked done by <@U2>; nothing changed. To change "
            "it, reopen it first."
        )
    update(db, policy, run_id, 1, "skip", actor="U2")
    with pytest.raises(InvalidInput, match="already marked skipped by <@U2>"):
        update(db, policy, run_id, 1, "done", actor="U3")
    assert [e["state"] for e in step_events(db)] == ["done", "skipped"]
    assert update(db, policy, run_id, 0, "reopen", actor="U3").changed
    assert update(db, policy, run_id, 0, "skip", actor="U3").changed


def test_a_retried_click_with_the_same_key_changes_nothing(db: Database, policy: Policy) -> None:
    incident_id = declare(db, policy)
    run_id = start(db, policy, incident_id)

    assert update(db, policy, run_id, 0, "done", key="action:1").changed
    assert not update(db, policy, run_id, 0, "reopen", key="action:1").changed
    with db.transaction() as session:
        assert progress.get_run(session, run_id).steps[0].state == "done"


def test_assigning_sets_the_assignee_and_when_work_started(db: Database, policy: Policy) -> None:
    incident_id = declare(db, policy)
    run_id = start(db, policy, incident_id)

    with freeze_time("2024-05-01 03:00:00"):
        change = update(db, policy, run_id, 1, "assign", assignee="U7")
    with freeze_time("2024-05-01 03:20:00"):
        update(db, policy, run_id, 1, "assign", assignee="U8")

    assert change.step is not None
    assert change.step.started_at == datetime(2024, 5, 1, 3, 0, tzinfo=UTC)
    with db.transaction() as session:
        step = progress.get_run(session, run_id).steps[1]
    assert (step.state, step.assignee_id) == ("in_progress", "U8")
    assert step.started_at == datetime(2024, 5, 1, 3, 20, tzinfo=UTC)
    assert step.updated_by == "U1"


def test_the_run_completes_when_every_step_is_done_or_skipped_and_reopens(
    db: Database, policy: Policy
) -> None:
    incident_id = declare(db, policy)
    run_id = start(db, policy, incident_id)
    at = datetime(2024, 5, 1, 4, 0, tzinfo=UTC)

    update(db, policy, run_id, 0, "done")
    update(db, policy, run_id, 1, "skip")
    last = update(db, policy, run_id, 2, "done", now=at)

    assert last.completed
    assert (last.run.status, last.run.completed_at) == ("completed", at)
    assert str(last.run.progress) == "2/3 done, 1 skipped"

    reopened = update(db, policy, run_id, 1, "reopen")
    assert not reopened.completed
    assert (reopened.run.status, reopened.run.completed_at) == ("active", None)
    assert not update(db, policy, run_id, 1, "reopen").changed


def test_bad_requests_are_refused_with_a_clear_message(db: Database, policy: Policy) -> None:
    incident_id = declare(db, policy)
    run_id = start(db, policy, incident_id)

    with pytest.raises(InvalidInput, match="steps 1 to 3; there is no step 4"):
        update(db, policy, run_id, 3, "done")
    with pytest.raises(InvalidInput, match="Unknown step action"):
        update(db, policy, run_id, 0, "finish")
    with pytest.raises(InvalidInput, match="who to assign"):
        update(db, policy, run_id, 0, "assign")
    with pytest.raises(NotFound):
        update(db, policy, run_id + 1, 0, "done")
    assert step_events(db) == []


def test_progress_counts_and_queries(db: Database, policy: Policy) -> None:
    incident_id = declare(db, policy)
    run_id = start(db, policy, incident_id)
    update(db, policy, run_id, 0, "done")
    update(db, policy, run_id, 2, "assign", assignee="U3")

    with db.transaction() as session:
        counts = progress.run_progress(session, run_id)
        (view,) = progress.incident_runs(session, incident_id)
    assert (counts.done, counts.skipped, counts.in_progress, counts.pending) == (1, 0, 1, 1)
    assert str(counts) == "1/3 done, 1 in progress"
    assert view.next_step == 1


def test_the_message_follows_to_the_page_with_the_next_step(db: Database) -> None:
    policy = policy_from_dict({"runbooks": {"steps_per_page": 2}})
    incident_id = declare(db, policy)
    run_id = start(db, policy, incident_id)

    assert update(db, policy, run_id, 0, "done").run.page == 0
    assert update(db, policy, run_id, 1, "skip").run.page == 1
    # a change to a step of another page (a command, an older copy of the message) leaves
    # the page everyone is on while it has work left
    assert update(db, policy, run_id, 0, "reopen").run.page == 1
    assert update(db, policy, run_id, 2, "done").run.page == 0  # then follows the work
    with db.transaction() as session:
        assert progress.set_page(session, run_id, 9, per_page=2).page == 1
        assert progress.set_page(session, run_id, -1, per_page=2).page == 0


def test_the_rendered_message_of_a_real_run_is_valid(db: Database, policy: Policy) -> None:
    incident_id = declare(db, policy)
    run_id = start(db, policy, incident_id)
    change = update(db, policy, run_id, 0, "done", actor="U4")

    message = render_run_message(change.run, steps_per_page=policy.runbooks.steps_per_page)
    assert message_errors(message.text, message.blocks) == []
    assert "done by <@U4>" in message.blocks[4]["text"]["text"]


def test_a_closed_incidents_runbooks_are_not_started_or_changed(
    db: Database, policy: Policy
) -> None:
    """A runbook button or command on a closed incident is refused with how to reopen it; a
    run already started is still shown (its Start button links to it)."""
    incident_id = declare(db, policy)
    run_id = start(db, policy, incident_id)
    with db.transaction() as session:
        core.resolve_incident(session, policy, incident_id, actor="U1")
        core.close_incident(session, policy, incident_id, actor="U1")
    with pytest.raises(InvalidTransition, match=r"INC-1 is closed: reopen it .* before you start"):
        start(db, policy, incident_id, OTHER)
    with pytest.raises(InvalidTransition, match="before you change its runbook steps"):
        update(db, policy, run_id, 0, "done")
    assert start(db, policy, incident_id) == run_id
    with db.transaction() as session:
        assert not events(session, EventKind.RUNBOOK_STEP)
        assert len(progress.list_runs(session, incident_id)) == 1


def test_two_people_clicking_done_on_the_same_step_at_once_make_one_change(
    db: Database, policy: Policy
) -> None:
    incident_id = declare(db, policy)
    run_id = start(db, policy, incident_id)
    threads = 10
    barrier = Barrier(threads)

    def click(user: int) -> str:
        barrier.wait()
        try:
            return (
                "changed"
                if update(db, policy, run_id, 1, "done", actor=f"U{user}").changed
                else "same"
            )
        except InvalidInput as refused:  # the others are told who was first
            return str(refused)

    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(click, range(threads)))

    assert results.count("changed") == 1
    with db.read() as session:
        first = session.exec(
            select(TimelineEvent.actor_id).where(TimelineEvent.kind == EventKind.RUNBOOK_STEP)
        ).one()
    told = f"Step 2 of Disk full was already marked done by <@{first}>; nothing changed."
    assert [r for r in results if r != "changed"] == [told + " To change it, reopen it first."] * 9
    assert len(step_events(db)) == 1


def test_different_steps_clicked_at_once_are_all_recorded(db: Database, policy: Policy) -> None:
    incident_id = declare(db, policy)
    run_id = start(db, policy, incident_id)
    barrier = Barrier(3)

    def click(step: int) -> bool:
        barrier.wait()
        return update(db, policy, run_id, step, "done", actor=f"U{step}").completed

    with ThreadPoolExecutor(3) as pool:
        completed = list(pool.map(click, range(3)))

    assert completed.count(True) == 1  # exactly one click finished the run
    with db.transaction() as session:
        view = progress.get_run(session, run_id)
    assert view.status == "completed"
    assert sorted(e["step"] for e in step_events(db)) == [0, 1, 2]  # type: ignore[type-var]


def test_starting_the_same_runbook_from_two_replicas_at_once_makes_one_run(
    db: Database, policy: Policy
) -> None:
    incident_id = declare(db, policy)
    threads = 8
    barrier = Barrier(threads)

    def begin(_: int) -> int:
        barrier.wait()
        with db.transaction() as session:
            return progress.start_run(session, policy, incident_id, THREE_STEPS, actor="U1").run.id

    with ThreadPoolExecutor(threads) as pool:
        run_ids = set(pool.map(begin, range(threads)))

    assert len(run_ids) == 1
    with db.transaction() as session:
        assert len(events(session, EventKind.RUNBOOK_STARTED)) == 1
        assert len(session.exec(select(RunbookStepState)).all()) == 3


def test_started_at_uses_the_clock(db: Database, policy: Policy) -> None:
    incident_id = declare(db, policy)
    with freeze_time("2024-06-01 10:00:00"):
        run_id = start(db, policy, incident_id)
    with freeze_time("2024-06-01 10:45:00"):
        change = update(db, policy, run_id, 0, "done")
    assert change.run.started_at == datetime(2024, 6, 1, 10, 0, tzinfo=UTC)
    assert change.step is not None and change.step.updated_at is not None
    assert change.step.updated_at - change.run.started_at == timedelta(minutes=45)


def test_a_step_in_someones_hands_is_not_the_teams_next_step(db: Database) -> None:
    """Ben has step 1: the team's next step (highlighted, its Done the primary button) is the
    first nobody has taken, and when the page has none left the message moves on to it rather
    than stay (or come back) for Ben's step."""
    policy = policy_from_dict({"runbooks": {"steps_per_page": 2}})
    five = parse_runbook(
        "# Drain\n\n" + "\n".join(f"- [ ] Step {i}" for i in range(1, 6)), runbook_id="drain"
    )
    incident_id = declare(db, policy)
    run_id = start(db, policy, incident_id, five)
    assert update(db, policy, run_id, 0, "assign", assignee="U2").run.next_step == 1
    after = update(db, policy, run_id, 1, "done").run
    assert (after.next_step, after.page) == (2, 1)
    update(db, policy, run_id, 2, "done")
    after = update(db, policy, run_id, 3, "done").run
    assert (after.next_step, after.page) == (4, 2)  # on to page 3, not back to Ben's step
    after = update(db, policy, run_id, 4, "done").run
    assert (after.next_step, after.page) == (0, 0)  # only Ben's step is left: its page
