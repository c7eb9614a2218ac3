"""What each timeline event causes outside the database, decided in the event's transaction.

``bot.incidents.timeline.append_event`` calls ``on_timeline_event`` for every event it writes,
so an incident changed from Slack, the command line, an alert or a reminder gets the same Slack
effects, written in the same transaction as the change: nothing is lost if the process dies
after the commit, and nothing is done for a change that rolled back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from bot.alerts.notices import answer_all_resolved
from bot.clock import utcnow
from bot.config import Policy
from bot.effects import kinds, store
from bot.effects.store import incident_lane
from bot.models import EventKind, Incident, RunbookRun, TimelineEvent

ANNOUNCED_IN_CHANNEL = frozenset(
    {
        EventKind.SEVERITY_CHANGED,
        EventKind.STATUS_CHANGED,
        EventKind.ROLE_ASSIGNED,
        EventKind.ROLE_UNASSIGNED,
        EventKind.ACKNOWLEDGED,
    }
)
"""Changes said in the incident channel, with who made them."""

NOTICES: dict[str, tuple[str, str]] = {
    **dict.fromkeys(ANNOUNCED_IN_CHANNEL, ("said", "change")),
    EventKind.STATUS_UPDATE: ("update", "status_update"),
}
"""Events posted in the incident channel: (the effect key's suffix, the notice's type)."""

SHOWN_IN_SUMMARY = frozenset(
    {
        *ANNOUNCED_IN_CHANNEL,
        EventKind.STATUS_UPDATE,
        EventKind.DETAILS_CHANGED,
        EventKind.ACTION_ITEM_ADDED,
        EventKind.ACTION_ITEM_COMPLETED,
        EventKind.ACTION_ITEM_REOPENED,
        EventKind.RUNBOOK_STARTED,
        EventKind.RUNBOOK_STEP,
        EventKind.CLASSIFIED,
        EventKind.CLOCK_STARTED,
        EventKind.CLOCK_COMPLETED,
        EventKind.ALERT_FIRING,
        EventKind.ALERT_RESOLVED,
        EventKind.CHANNEL_UNARCHIVED,  # what changed while it was archived
    }
)


def refresh(session: Session, incident: Incident, *, now: datetime) -> None:
    """Bring the incident's summary, topic and announcement up to date (coalesced)."""
    assert incident.id is not None
    store.arm(
        session,
        kind=kinds.REFRESH,
        key=f"refresh:{incident.id}",
        incident_id=incident.id,
        lane=incident_lane(incident.id),
        now=now,
    )


def post(
    session: Session,
    incident: Incident,
    key: str,
    notice: dict[str, Any],
    *,
    now: datetime,
    to: str = "incident",
) -> None:
    """Post a notice in the incident channel (``to="incident"``) or another channel, once."""
    assert incident.id is not None
    store.enqueue(
        session,
        kind=kinds.POST,
        key=key,
        data={"to": to, "notice": notice},
        incident_id=incident.id,
        lane=incident_lane(incident.id),
        now=now,
    )


def _say(
    session: Session, incident: Incident, event: TimelineEvent, what: str, *, to: str = "incident"
) -> None:
    """Post the notice ``what`` about ``event`` (rendered from the event when it runs), once."""
    post(
        session,
        incident,
        f"event:{event.id}:{what}",
        {"type": what, "event": event.id},
        now=event.recorded_at,
        to=to,
    )


def set_up(session: Session, policy: Policy, incident: Incident, *, now: datetime) -> None:
    """What follows once the channel exists (and its first people were invited, by the
    channel's own effect): the summary (posted and pinned), the announcement, runbook
    suggestions. Each is its own effect, in the incident's lane."""
    assert incident.id is not None
    lane = incident_lane(incident.id)
    refresh(session, incident, now=now)
    if policy.slack.announcements_channel and not incident.private:
        store.enqueue(
            session,
            kind=kinds.ANNOUNCE,
            key=f"announce:{incident.id}",
            data={"channel": policy.slack.announcements_channel},
            incident_id=incident.id,
            lane=lane,
            now=now,
        )
    if policy.runbooks.suggestions > 0:
        post(session, incident, f"suggest:{incident.id}", {"type": "runbook_suggestions"}, now=now)


CLOCK_TRIGGERS = frozenset(
    {
        EventKind.DECLARED,
        EventKind.SEVERITY_CHANGED,
        EventKind.CLASSIFIED,
        EventKind.CLOCK_COMPLETED,
        EventKind.ALERT_FIRING,
    }
)
"""Events that may start a regulatory clock (``[[clocks]]`` ``starts``)."""


def on_timeline_event(
    session: Session, policy: Policy, incident: Incident, event: TimelineEvent
) -> None:
    if incident.id is None or event.id is None:
        return
    now = event.recorded_at
    kind = event.kind
    lane = incident_lane(incident.id)
    if policy.clocks and (kind in CLOCK_TRIGGERS or "labels" in (event.data or {})):
        store.enqueue(
            session,
            kind=kinds.CLOCK_SYNC,
            key=f"clocks:{event.id}",
            incident_id=incident.id,
            now=now,
        )
    if kind == EventKind.DECLARED:
        store.enqueue(
            session,
            kind=kinds.CREATE_CHANNEL,
            key=f"channel:{incident.id}",
            incident_id=incident.id,
            lane=lane,
            now=now,
        )
        return
    if kind == EventKind.CHANNEL_CREATED:
        set_up(session, policy, incident, now=now)
        return
    if kind in SHOWN_IN_SUMMARY and incident.slack_channel_id is not None:
        refresh(session, incident, now=now)
    run_id = event.data.get("run_id")
    if kind in (EventKind.RUNBOOK_STARTED, EventKind.RUNBOOK_STEP) and isinstance(run_id, int):
        # However the run was started or moved (a person, an alert): its message shows it.
        queue_runbook_message(session, run_id, incident.id)
    assignee = event.data.get("assignee") if kind == EventKind.RUNBOOK_STEP else None
    invited = event.data.get("user") if kind == EventKind.ROLE_ASSIGNED else assignee
    if invited and (kind == EventKind.ROLE_ASSIGNED or event.data.get("state") == "in_progress"):
        # Someone given a role or a runbook step is invited, before the post that says so: the
        # person is in the channel when it is said (Slack notifies no one outside it), and an
        # invite (claimed first) never waits in its lane behind a post (claimed later).
        store.enqueue(
            session,
            kind=kinds.INVITE,
            key=f"event:{event.id}:invite",
            data={"users": [str(invited)]},
            incident_id=incident.id,
            lane=lane,
            now=now,
        )
    if kind in NOTICES:
        suffix, notice = NOTICES[kind]
        post(
            session,
            incident,
            f"event:{event.id}:{suffix}",
            {"type": notice, "event": event.id},
            now=now,
        )
    # "in_progress": an assigned step (``progress.IN_PROGRESS``; that module imports this one)
    if assignee and event.data.get("state") == "in_progress" and assignee != event.actor_id:
        # Assigning edits the runbook message, and Slack notifies nobody of a mention added by
        # an edit: the person is told in the channel, by name.
        _say(session, incident, event, "step_assigned")
    announcements = policy.slack.announcements_channel
    reopened = kind == EventKind.STATUS_CHANGED and bool(event.data.get("reopened"))
    if reopened and announcements and not incident.private:
        # The announcement is edited, which notifies nobody: a reopen is also said there.
        _say(session, incident, event, "reopened", to=announcements)
    if kind == EventKind.STATUS_CHANGED and policy.impact_mitigated(incident.status):
        # Mitigated, resolved or closed by any means (a command, the summary's buttons): an
        # "all alerts resolved: mitigate?" question still open is moot, and its button would
        # now be refused. Its message says what happened instead.
        status = policy.status(incident.status)
        answer_all_resolved(
            session,
            incident.id,
            outcome="Marked mitigated"
            if status.milestone == "mitigated"
            else f"Marked {status.name.lower()}",
            actor=event.actor_id or "",
            now=now,
        )
    if kind == EventKind.STATUS_CHANGED and (
        event.data.get("reopened") or policy.phase_of(incident.status) == "closed"
    ):
        _runbook_messages(session, incident)
    if kind == EventKind.CHANNEL_REGAINED:
        # Invited back: what could not be posted while Firebreak was out goes out now, in
        # order, and the pinned summary catches up.
        store.retry_failed(session, incident.id, now=now)
        refresh(session, incident, now=now)
    if kind == EventKind.CHANNEL_LOST and event.data.get("tell"):
        # Not in the incident's lane: that lane is the channel's, which no longer works.
        store.enqueue(
            session,
            kind=kinds.POST,
            key=f"event:{event.id}:lost",
            data={
                "to": str(event.data["tell"]),
                "notice": {"type": "channel_lost", "deleted": bool(event.data.get("deleted"))},
            },
            incident_id=incident.id,
            now=now,
        )
    shared = event.data.get("shared") and not event.data.get("removed")
    if kind == EventKind.CHANNEL_SHARED and event.data.get("tell") and shared:
        store.enqueue(
            session,
            kind=kinds.POST,
            key=f"event:{event.id}:shared",
            data={
                "to": str(event.data["tell"]),
                "notice": {"type": "channel_shared", "team": str(event.data.get("team") or "")},
            },
            incident_id=incident.id,
            now=now,
        )
    if kind == EventKind.STATUS_CHANGED and event.data.get("phase") == "closed":
        store.enqueue(
            session,
            kind=kinds.POSTMORTEM_DRAFT,
            key=f"postmortem:{event.id}",
            data={"event": event.id},
            incident_id=incident.id,
            now=now,
        )


def queue_runbook_message(session: Session, run_id: int, incident_id: int) -> None:
    """Post or edit a runbook run's message (coalesced: the latest progress wins)."""
    store.arm(
        session,
        kind=kinds.RUNBOOK_MESSAGE,
        key=f"runbook-message:{run_id}",
        data={"run_id": run_id},
        incident_id=incident_id,
        lane=store.incident_lane(incident_id),
        now=utcnow(),
    )


def _runbook_messages(session: Session, incident: Incident) -> None:
    """Draw again the messages of the incident's runbook runs (closed: no buttons left to
    press; reopened: the buttons back)."""
    assert incident.id is not None
    runs = session.exec(
        select(RunbookRun.id).where(
            col(RunbookRun.incident_id) == incident.id,
            col(RunbookRun.slack_message_ts).is_not(None),
        )
    ).all()
    for run_id in runs:
        if run_id is not None:
            queue_runbook_message(session, run_id, incident.id)
