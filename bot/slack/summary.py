"""What the pinned summary shows: the incident and what is around it, read in one session."""

from __future__ import annotations

from sqlmodel import Session, col, func, select

from bot import incidents as core
from bot.alerts.models import AlertGroup
from bot.audit import regulatory
from bot.clock import utcnow
from bot.config import Policy
from bot.models import ActionItem, EventKind, RunbookRun, TimelineEvent
from bot.runbooks.progress import run_progress
from bot.slack import blocks
from bot.slack.limits import escape_mrkdwn


def snapshot(
    session: Session, incident_id: int, policy: Policy | None = None
) -> blocks.IncidentSnapshot:
    """With ``policy``, the regulatory clocks' state comes along (the pinned summary)."""
    incident = core.get_incident(session, incident_id)
    latest = _latest_word(session, incident_id, policy)
    open_items = len(
        session.exec(
            select(ActionItem.id).where(
                ActionItem.incident_id == incident_id, ActionItem.status == "open"
            )
        ).all()
    )
    runs = session.exec(
        select(RunbookRun).where(RunbookRun.incident_id == incident_id).order_by(col(RunbookRun.id))
    ).all()
    # Said the way the run's own message says it ("2/9 done, 1 skipped"), so they agree.
    runbooks = [(run.title, str(run_progress(session, run.id))) for run in runs if run.id]
    return blocks.IncidentSnapshot(
        incident=incident,
        roles=core.current_roles(session, incident_id),
        now=utcnow(),
        latest_update=latest,
        open_action_items=open_items,
        runbooks=runbooks,
        alerts=_alerts(session, incident_id),
        clocks=(
            regulatory.clock_summary(session, policy, incident, utcnow())
            if policy is not None and policy.clocks
            else []
        ),
    )


def _latest_word(session: Session, incident_id: int, policy: Policy | None) -> TimelineEvent | None:
    """The latest status update, or the reason given with a later resolve, reopen or other
    status change (``Resolved: rolled back, error rate at baseline``): what stakeholders read
    as the incident's latest word. A reopen without a reason ends the search: the reasons
    given before it (why it was resolved) no longer hold."""
    newest_first = (col(TimelineEvent.occurred_at).desc(), col(TimelineEvent.id).desc())
    update = session.exec(
        select(TimelineEvent)
        .where(
            TimelineEvent.incident_id == incident_id, TimelineEvent.kind == EventKind.STATUS_UPDATE
        )
        .order_by(*newest_first)
    ).first()
    changes = session.exec(
        select(TimelineEvent)
        .where(
            TimelineEvent.incident_id == incident_id,
            TimelineEvent.kind == EventKind.STATUS_CHANGED,
        )
        .order_by(*newest_first)
        .limit(10)
    ).all()
    said = next((e for e in changes if _says(e) is not None), None)
    if said is not None and not _says(said):
        said = None
    if said is None or (
        update is not None
        and (update.occurred_at, update.id or 0) >= (said.occurred_at, said.id or 0)
    ):
        return update
    to = str(said.data.get("to"))
    label = escape_mrkdwn(blocks.status_label(policy, to) if policy is not None else to)
    if said.data.get("reopened"):
        label = f"Reopened ({label})"
    return TimelineEvent.model_construct(
        **{**said.model_dump(), "text": f"{label}: {said.data['note']}"}
    )


def _says(change: TimelineEvent) -> str | None:
    """The reason given with a status change; "" for a reopen without one (what was said
    before it no longer holds); None when it says nothing (look further back)."""
    data = change.data or {}
    note = str(data.get("note") or "")
    return note if note or data.get("reopened") else None


def _alerts(session: Session, incident_id: int) -> tuple[int, int] | None:
    """(firing, total) over the alert groups attached to the incident, or None if none."""
    firing, total = session.exec(
        select(func.sum(AlertGroup.firing_count), func.sum(AlertGroup.alert_count)).where(
            AlertGroup.incident_id == incident_id
        )
    ).one()
    return (int(firing or 0), int(total)) if total else None
