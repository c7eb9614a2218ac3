"""Walking a runbook in an incident: start a run, mark steps done / skipped / assigned, count.

This is domain code: it knows nothing of Slack. Each change goes through the incident core
(:func:`bot.incidents.record_timeline_event`), so the step change and its timeline event are
written in the caller's transaction or not at all.

Repeats and races:

* A run is unique per (incident, runbook): starting the same runbook twice returns the first
  run and writes nothing. The incident row is locked first, so two people starting it at the same
  moment get one run and one timeline event.
* A step change locks the incident and then the run row (row locks; the same order as every
  other change, so no deadlock), then re-reads the step. Two people clicking "Done" on the same
  step at once produce one change and one timeline event; a click that changes nothing (done ->
  done) writes nothing. An idempotency ``key`` (Slack's action ``trigger_id`` or the action's
  ``action_ts``) makes a retried request a no-op as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlmodel import Session, col, select

from bot import incidents
from bot.clock import as_utc, utcnow
from bot.config import Policy
from bot.errors import InvalidInput, NotFound
from bot.markup import escape_mrkdwn
from bot.models import EventKind, RunbookRun, RunbookStepState, TimelineEvent
from bot.runbooks.parser import TITLE_MAX, Runbook

StepState = Literal["pending", "in_progress", "done", "skipped"]
StepAction = Literal["done", "skip", "assign", "unassign", "reopen"]

PENDING: StepState = "pending"
IN_PROGRESS: StepState = "in_progress"
DONE: StepState = "done"
SKIPPED: StepState = "skipped"
FINISHED_STATES = frozenset({DONE, SKIPPED})
ACTIONS: tuple[StepAction, ...] = ("done", "skip", "assign", "unassign", "reopen")
_UNDOING = frozenset({"assign", "unassign", "reopen"})
"""Actions that take back or replace what someone else may have just done: refused when the
step changed after the message clicked was shown (``seen``)."""

RUN_ACTIVE = "active"
RUN_COMPLETED = "completed"

_STEP_TITLE_EVENT_MAX = 200


# --------------------------------------------------------------------------------------------
# Plain views of a run, for rendering and callers outside a session


@dataclass(frozen=True)
class Progress:
    total: int
    done: int = 0
    skipped: int = 0
    in_progress: int = 0

    @property
    def pending(self) -> int:
        return self.total - self.done - self.skipped - self.in_progress

    @property
    def finished(self) -> bool:
        return self.total > 0 and self.done + self.skipped == self.total

    def __str__(self) -> str:
        """``3/12 done, 1 skipped, 2 in progress`` (zero counts are left out)."""
        text = f"{self.done}/{self.total} done"
        if self.skipped:
            text += f", {self.skipped} skipped"
        if self.in_progress:
            text += f", {self.in_progress} in progress"
        return text


@dataclass(frozen=True)
class StepView:
    index: int
    state: str = PENDING
    assignee_id: str | None = None
    started_at: datetime | None = None
    updated_at: datetime | None = None
    updated_by: str | None = None

    @property
    def version(self) -> str:
        """What a message showing this step carries back with a click, to tell whether the
        step changed since (:func:`update_step`'s ``seen``)."""
        return step_version(self.updated_at)


def step_event_markup(text: str, assignee: object) -> str:
    """A runbook step event's text as Slack markup, the one way every reader shows it: the
    runbook's own words as written (a literal ``<!here>`` or ``<@U1>`` in a step stays text),
    and the mention of whom the step was assigned to, which stays a mention."""
    escaped = escape_mrkdwn(text)
    if not isinstance(assignee, str) or not assignee.isalnum():
        return escaped
    return escaped.replace(f"&lt;@{assignee}&gt;", f"<@{assignee}>", 1)


def step_version(updated_at: datetime | None) -> str:
    """A step's state as of its last change: the change's time, in milliseconds."""
    return str(int(as_utc(updated_at).timestamp() * 1000)) if updated_at is not None else "0"


@dataclass(frozen=True)
class RunView:
    """A run and its step states, detached from the session (safe to render after commit)."""

    id: int
    incident_id: int
    runbook_id: str
    title: str
    snapshot: dict[str, Any]
    status: str
    page: int
    steps: tuple[StepView, ...]
    started_by: str = ""
    started_at: datetime | None = None
    completed_at: datetime | None = None
    slack_channel_id: str | None = None
    slack_message_ts: str | None = None

    @property
    def progress(self) -> Progress:
        return count_progress(self.steps)

    @property
    def start_step(self) -> int:
        """The step the run was started at: the first of the alert's section in a runbook
        with a section per alert (Mimir's, kubernetes-mixin's), else 0."""
        return start_step_of(self.snapshot)

    @property
    def next_step(self) -> int | None:
        """Index of the step to do next: the first nobody has taken (a step assigned to
        someone is theirs, not the team's next), else the first still in progress; counted
        from the step the run was started at (the alert's section), then from the top."""
        return _next_index([(s.index, s.state) for s in self.steps], self.start_step)


START_STEP_KEY = "start_step"
"""In a run's snapshot: the step it was started at, when not the first (the alert's
section). Not part of :meth:`Runbook.snapshot`: runs started before it have none."""


def start_step_of(snapshot: object) -> int:
    value = snapshot.get(START_STEP_KEY) if isinstance(snapshot, dict) else None
    return value if isinstance(value, int) and value > 0 else 0


def _next_index(states: Sequence[tuple[int, str]], start: int = 0) -> int | None:
    """The first step nobody has taken, else the first not finished; looking from ``start``
    (the alert's section) to the end, then from the top, so a run started at an alert's
    section points there even with the other alerts' steps above it open."""
    ordered = sorted(states, key=lambda s: (s[0] < start, s[0]))
    pending = next((i for i, state in ordered if state == PENDING), None)
    if pending is not None:
        return pending
    return next((i for i, state in ordered if state not in FINISHED_STATES), None)


def count_progress(states: Sequence[StepView | RunbookStepState]) -> Progress:
    return Progress(
        total=len(states),
        done=sum(1 for s in states if s.state == DONE),
        skipped=sum(1 for s in states if s.state == SKIPPED),
        in_progress=sum(1 for s in states if s.state == IN_PROGRESS),
    )


def view_run(run: RunbookRun, states: Sequence[RunbookStepState]) -> RunView:
    assert run.id is not None
    by_index = {s.step_index: s for s in states}
    steps = tuple(
        StepView(
            index=i,
            state=by_index[i].state,
            assignee_id=by_index[i].assignee_id,
            started_at=by_index[i].started_at,
            updated_at=by_index[i].updated_at,
            updated_by=by_index[i].updated_by,
        )
        if i in by_index
        else StepView(index=i)
        for i in range(run.step_count)
    )
    return RunView(
        id=run.id,
        incident_id=run.incident_id,
        runbook_id=run.runbook_id,
        title=run.title,
        snapshot=dict(run.snapshot),
        status=run.status,
        page=run.page,
        steps=steps,
        started_by=run.started_by,
        started_at=run.started_at,
        completed_at=run.completed_at,
        slack_channel_id=run.slack_channel_id,
        slack_message_ts=run.slack_message_ts,
    )


# --------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class RunChange:
    """What ``start_run`` / ``update_step`` did. ``event`` is ``None`` when nothing changed."""

    run: RunView
    event: TimelineEvent | None
    step: StepView | None = None
    completed: bool = False
    """This change finished the run (every step done or skipped)."""

    @property
    def changed(self) -> bool:
        return self.event is not None


# --------------------------------------------------------------------------------------------
# Queries


def list_runs(session: Session, incident_id: int) -> list[RunbookRun]:
    """The runs of an incident, in the order they were started."""
    return list(
        session.exec(
            select(RunbookRun)
            .where(RunbookRun.incident_id == incident_id)
            .order_by(col(RunbookRun.started_at), col(RunbookRun.id))
        ).all()
    )


def find_run(session: Session, incident_id: int, runbook_id: str) -> RunbookRun | None:
    return session.exec(
        select(RunbookRun).where(
            RunbookRun.incident_id == incident_id, RunbookRun.runbook_id == runbook_id
        )
    ).first()


def step_states(session: Session, run_id: int) -> list[RunbookStepState]:
    return list(
        session.exec(
            select(RunbookStepState)
            .where(RunbookStepState.run_id == run_id)
            .order_by(col(RunbookStepState.step_index))
            .execution_options(populate_existing=True)
        ).all()
    )


def get_run(session: Session, run_id: int) -> RunView:
    """A run with its step states."""
    run = session.get(RunbookRun, run_id)
    if run is None:
        raise NotFound(f"No runbook run with id {run_id}.")
    return view_run(run, step_states(session, run_id))


def incident_runs(session: Session, incident_id: int) -> list[RunView]:
    return [view_run(r, step_states(session, r.id or 0)) for r in list_runs(session, incident_id)]


def run_progress(session: Session, run_id: int) -> Progress:
    """Counts for a run, e.g. ``str(run_progress(...)) == "3/12 done, 1 skipped"``."""
    return count_progress(step_states(session, run_id))


# --------------------------------------------------------------------------------------------
# Changes


def _actor(value: str, label: str = "user") -> str:
    value = (value or "").strip()
    if not value or len(value) > 64 or any(ord(c) < 32 for c in value):
        raise InvalidInput(f"Not a valid {label} id: {value[:40]!r}.")
    return value


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def start_run(
    session: Session,
    policy: Policy,
    incident_id: int,
    runbook: Runbook,
    *,
    actor: str,
    key: str | None = None,
    now: datetime | None = None,
    alerts: Sequence[str] = (),
) -> RunChange:
    """Start walking ``runbook`` in the incident, or return the run already started.

    The parsed runbook is snapshotted into the run, so editing the file mid-incident never
    shifts the steps under the responders. ``alerts``: the alerts (names, or ``runbook_url``
    anchors) the run is started for: in a file with a section per alert, the run opens at the
    page of the first step of the first of them that has a section, not at page 1."""
    actor = _actor(actor)
    if not runbook.steps:
        raise InvalidInput(
            f"The runbook {runbook.id or runbook.title!r} has no steps to walk: "
            "check it with 'firebreak runbooks lint'."
        )
    if not runbook.id or len(runbook.id) > 200:
        raise InvalidInput("A runbook id is 1 to 200 characters (its path without .md).")
    incident = incidents.lock_incident(session, incident_id)
    now = utcnow() if now is None else as_utc(now)  # once locked: stamped in lock order
    earlier = incidents.earlier_event(session, key)
    if earlier is not None:
        if earlier.incident_id != incident_id:
            raise InvalidInput("That request was already used for another incident.")
        run_id = earlier.data.get("run_id") if isinstance(earlier.data, dict) else None
        if isinstance(run_id, int):
            return RunChange(get_run(session, run_id), None)
    existing = find_run(session, incident_id, runbook.id)
    if existing is not None and existing.id is not None:
        return RunChange(get_run(session, existing.id), None)
    incidents.require_open(policy, incident, "start a runbook")

    snapshot = runbook.snapshot()
    first = runbook.first_step_for(alerts) or 0
    if first:
        snapshot[START_STEP_KEY] = first
    run = RunbookRun(
        incident_id=incident_id,
        runbook_id=runbook.id,
        title=_short(runbook.title, TITLE_MAX),
        source_path=str(runbook.path)[:1000] if runbook.path else None,
        content_hash=runbook.content_hash[:64],
        snapshot=snapshot,
        step_count=len(runbook.steps),
        status=RUN_ACTIVE,
        started_at=now,
        started_by=actor,
        page=first // policy.runbooks.steps_per_page,
    )
    session.add(run)
    session.flush()
    assert run.id is not None
    for index in range(len(runbook.steps)):
        session.add(RunbookStepState(run_id=run.id, step_index=index, updated_at=now))
    session.flush()
    change = incidents.record_timeline_event(
        session,
        policy,
        incident_id,
        kind=EventKind.RUNBOOK_STARTED,
        text=f"Runbook started: {run.title} ({len(runbook.steps)} steps)",
        actor=actor,
        data={
            "run_id": run.id,
            "runbook_id": runbook.id,
            "title": run.title,
            "steps": len(runbook.steps),
        },
        key=key,
        now=now,
    )
    return RunChange(get_run(session, run.id), change.event)


_VERBS = {
    "done": "done",
    "skip": "skipped",
    "assign": "assigned",
    "unassign": "unassigned",
    "reopen": "reopened",
}


def update_step(
    session: Session,
    policy: Policy,
    run_id: int,
    step_index: int,
    action: str,
    *,
    actor: str,
    assignee: str | None = None,
    key: str | None = None,
    now: datetime | None = None,
    seen: str | None = None,
) -> RunChange:
    """Mark a step done, skipped, assigned (in progress, with an assignee), unassigned or
    reopened (pending).

    When every step is done or skipped the run is completed; reopening a step of a completed run
    makes it active again. ``seen``: the step's version (:attr:`StepView.version`) on the
    message clicked; an assign, unassign or reopen of a step changed since is refused, saying
    what it is now, instead of silently undoing someone's newer work."""
    if action not in ACTIONS:
        raise InvalidInput(
            f"Unknown step action {action[:20]!r}: use done, skip, assign, unassign or reopen."
        )
    actor = _actor(actor)
    assignee_id = _actor(assignee, "assignee") if assignee else None
    if action == "assign" and assignee_id is None:
        raise InvalidInput("Say who to assign the step to.")

    found = session.get(RunbookRun, run_id)
    if found is None:
        raise NotFound(f"No runbook run with id {run_id}.")
    incident = incidents.lock_incident(session, found.incident_id)
    now = utcnow() if now is None else as_utc(now)  # once locked: stamped in lock order
    run = session.exec(
        select(RunbookRun)
        .where(RunbookRun.id == run_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    earlier = incidents.earlier_event(session, key)
    if earlier is not None:
        if earlier.incident_id != run.incident_id:
            raise InvalidInput("That request was already used for another incident.")
        return RunChange(get_run(session, run_id), None)
    incidents.require_open(policy, incident, "change its runbook steps")
    if not 0 <= step_index < run.step_count:
        raise InvalidInput(
            f"The runbook {run.title!r} has steps 1 to {run.step_count}; there is no step "
            f"{step_index + 1}."
        )
    states = step_states(session, run_id)
    state = next((s for s in states if s.step_index == step_index), None)
    if state is None:  # a run whose rows were lost: recreate the missing row
        state = RunbookStepState(run_id=run_id, step_index=step_index, updated_at=now)
        session.add(state)
        states.append(state)

    if action in _UNDOING and seen is not None and seen != step_version(state.updated_at):
        raise InvalidInput(
            f"Step {step_index + 1} of {run.title} changed after the message you clicked was "
            f"shown: it is {_describe(state)} now. Nothing changed; use the newest message."
        )
    if action == "unassign" and state.state != IN_PROGRESS:
        return RunChange(get_run(session, run_id), None, _step_view(state))
    wanted: str
    new_assignee = state.assignee_id
    new_started = state.started_at
    if action == "done":
        wanted = DONE
    elif action == "skip":
        wanted = SKIPPED
    elif action == "assign":
        wanted = IN_PROGRESS
        if state.state != IN_PROGRESS or state.assignee_id != assignee_id:
            new_started = now
        new_assignee = assignee_id
    else:
        wanted, new_assignee, new_started = PENDING, None, None
    finished = state.state in (DONE, SKIPPED)
    if (wanted, new_assignee) == (state.state, state.assignee_id) and not finished:
        return RunChange(get_run(session, run_id), None, _step_view(state))
    if finished and action != "reopen":
        # A finished step offers only Reopen: Done, Skip or Assign on it comes from a message
        # that is out of date (or a second person who had not seen the first): never silently
        # undo what someone finished, and say who finished it (even when the click asks for
        # what was done: the person learns it was someone else).
        by = f" by <@{state.updated_by}>" if state.updated_by else ""
        said = "done" if state.state == DONE else "skipped"
        raise InvalidInput(
            f"Step {step_index + 1} of {run.title} was already marked {said}{by}; nothing "
            "changed. To change it, reopen it first."
        )

    state.state = wanted
    state.assignee_id = new_assignee
    state.started_at = new_started
    state.updated_at = now
    state.updated_by = actor
    session.add(state)

    was_completed = run.status == RUN_COMPLETED
    progress = count_progress(states)
    if progress.finished:
        run.status, run.completed_at = RUN_COMPLETED, now
    else:
        run.status, run.completed_at = RUN_ACTIVE, None
    run.page = _page_after(run, states, policy.runbooks.steps_per_page)
    session.add(run)
    session.flush()

    steps = run.snapshot.get("steps", []) if isinstance(run.snapshot, dict) else []
    raw_title = steps[step_index].get("title", "") if step_index < len(steps) else ""
    step_title = _short(str(raw_title), _STEP_TITLE_EVENT_MAX) or f"Step {step_index + 1}"
    verb = _VERBS[action]
    text = f"{run.title}: step {step_index + 1} {verb}: {step_title}"
    if action == "assign":
        text = f"{run.title}: step {step_index + 1} assigned to <@{assignee_id}>: {step_title}"
    change = incidents.record_timeline_event(
        session,
        policy,
        run.incident_id,
        kind=EventKind.RUNBOOK_STEP,
        text=text,
        actor=actor,
        data={
            "run_id": run_id,
            "runbook_id": run.runbook_id,
            "step": step_index,
            "step_title": step_title,
            "state": wanted,
            "assignee": new_assignee,
        },
        key=key,
        now=now,
    )
    completed = progress.finished and not was_completed
    return RunChange(get_run(session, run_id), change.event, _step_view(state), completed)


def _describe(state: RunbookStepState) -> str:
    """What a step is now, for a refusal: "done by <@U1>", "assigned to <@U2>", "pending"."""
    if state.state == IN_PROGRESS and state.assignee_id:
        return f"assigned to <@{state.assignee_id}>"
    by = f" by <@{state.updated_by}>" if state.updated_by else ""
    said = "done" if state.state == DONE else "skipped" if state.state == SKIPPED else "pending"
    return f"{said}{by}"


def _step_view(state: RunbookStepState) -> StepView:
    return StepView(
        index=state.step_index,
        state=state.state,
        assignee_id=state.assignee_id,
        started_at=state.started_at,
        updated_at=state.updated_at,
        updated_by=state.updated_by,
    )


def _page_after(run: RunbookRun, states: Sequence[RunbookStepState], per_page: int) -> int:
    """Follow the responders: when the page the message shows has no step left to take, show
    the page with the next step nobody has taken. The page shown, not the page of the step
    changed: a click from an older copy of the message must not move everyone back."""
    pages = max(1, -(-run.step_count // per_page))
    current = min(max(run.page, 0), pages - 1)
    page_states = [s for s in states if s.step_index // per_page == current]
    if any(s.state == PENDING for s in page_states):
        return current
    # Nothing here for the team to take: the page of the next step nobody has taken; when
    # every step left is in someone's hands, this page while it has one of them.
    following = _next_index([(s.step_index, s.state) for s in states], start_step_of(run.snapshot))
    if following is None:
        return current
    taken = next(s for s in states if s.step_index == following).state != PENDING
    if taken and any(s.state not in FINISHED_STATES for s in page_states):
        return current
    return following // per_page


def set_page(session: Session, run_id: int, page: int, *, per_page: int) -> RunView:
    """Remember which page of the run's message is shown (Previous / Next buttons)."""
    run = session.exec(
        select(RunbookRun)
        .where(RunbookRun.id == run_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if run is None:
        raise NotFound(f"No runbook run with id {run_id}.")
    pages = max(1, -(-run.step_count // per_page))
    page = min(max(page, 0), pages - 1)
    if run.page != page:
        run.page = page
        session.add(run)
        session.flush()
    return get_run(session, run_id)


def record_run_message(
    session: Session, run_id: int, *, channel_id: str, message_ts: str
) -> RunView:
    """Remember where the run's Slack message is, so later clicks edit it in place."""
    run = session.get(RunbookRun, run_id)
    if run is None:
        raise NotFound(f"No runbook run with id {run_id}.")
    run.slack_channel_id = channel_id[:32]
    run.slack_message_ts = message_ts[:32]
    session.add(run)
    session.flush()
    return get_run(session, run_id)
