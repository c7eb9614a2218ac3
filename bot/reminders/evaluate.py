"""What a due reminder says, as plain notices (the Slack adapter renders them), and when it
is due next. Every evaluator re-checks its condition under the incident lock first."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from bot.audit import regulatory
from bot.clock import as_utc
from bot.config import COMMANDER, Policy, format_duration
from bot.cron import next_cron_time
from bot.durations import humanize_duration
from bot.incidents.chat import channel_lost, channel_unusable
from bot.incidents.queries import commander_or_reporter, list_incidents
from bot.models import (
    ActionItem,
    EventKind,
    Incident,
    Reminder,
    RoleAssignment,
    RunbookRun,
    TimelineEvent,
)
from bot.reminders.hours import next_working_time
from bot.reminders.schedule import (
    ACK,
    ACTIONS,
    CHANNEL_RETRY,
    CLOSE,
    DIGEST,
    STEP,
    UPDATE,
    _as_index,
    _commander,
    _latest_update_at,
    _parse_time,
    _phase,
)

# --------------------------------------------------------------------------------------------
# What a due reminder turns into

log = logging.getLogger(__name__)


Notice = dict[str, Any]
"""What a reminder says, as plain data: ``{"type": "escalation", ...fields}``. The Slack
adapter renders each type (``bot.slack.reminder_blocks``)."""


def notice(kind: str, **fields: Any) -> Notice:
    return {"type": kind, **fields}


@dataclass(frozen=True)
class Outgoing:
    ref: str
    """Names the message within one occurrence (``incident``, ``escalation``, ``incident:12``),
    so a retry after a partial failure sends only the missing ones."""
    channel: str
    notice: Notice


@dataclass(frozen=True)
class Entry:
    """A timeline event to record once any of ``refs`` was delivered."""

    incident_id: int
    kind: str
    text: str
    data: dict[str, Any]
    refs: frozenset[str]


Next = tuple[datetime | None, dict[str, Any] | None]
"""When a reminder is due next (``None``: done) and its data from then on."""


def _fixed(due: datetime | None, data: dict[str, Any] | None = None) -> Callable[..., Next]:
    return lambda _incident, _now: (due, data)


@dataclass(frozen=True)
class Send:
    seq: int
    messages: list[Outgoing]
    entries: list[Entry]
    after: Callable[[Incident | None, datetime], Next]
    """The next occurrence, computed when the send is finished from the incident as it is then
    (its severity may have changed while the message was on its way)."""


@dataclass(frozen=True)
class Settle:
    """No message: cancel the row, or re-time it (``due``) without sending."""

    reason: str
    due: datetime | None = None
    data: dict[str, Any] | None = None
    retry: bool = False
    """A deferral (e.g. no channel yet): keep the error on the row for operators to see."""


Outcome = Send | Settle


@dataclass
class Context:
    session: Session
    policy: Policy
    row: Reminder
    incident: Incident | None
    now: datetime

    @property
    def seq(self) -> int:
        return self.row.sent_count + 1

    def data(self, **changes: Any) -> dict[str, Any]:
        kept = {k: v for k, v in self.row.data.items() if k not in ("delivered", "snoozed_until")}
        return {**kept, **changes}


def _no_channel(incident: Incident, now: datetime) -> Settle:
    return Settle(f"{incident.ref} has no Slack channel yet", due=now + CHANNEL_RETRY, retry=True)


def _channel_gone(incident: Incident) -> str | None:
    """Why nothing posted in the incident's channel reaches anyone now, else ``None``."""
    if not channel_unusable(incident):
        return None
    lost = channel_lost(incident)
    return {"deleted": "was deleted", "removed": "no longer has Firebreak in it"}.get(
        lost or "", "is archived"
    )


def _reach(session: Session, incident: Incident, person: str | None) -> tuple[str, str | None, str]:
    """Where a reminder about ``incident`` is said: in its channel, to ``person``; when that
    reaches nobody (archived, deleted, Firebreak removed), to ``person`` (else the commander,
    else the reporter) by direct message. Returns (channel or person, person, what the timeline
    adds)."""
    gone = _channel_gone(incident)
    if gone is None:
        assert incident.slack_channel_id is not None
        return incident.slack_channel_id, person, ""
    person = person or commander_or_reporter(session, incident)
    return person, person, f" (by direct message: the incident's channel {gone})"


def _evaluate_ack(ctx: Context) -> Outcome:
    incident, session, policy, now = ctx.incident, ctx.session, ctx.policy, ctx.now
    assert incident is not None and incident.id is not None
    sev = policy.find_severity(incident.severity)
    if _phase(policy, incident) != "active":
        return Settle(f"{incident.ref} is {incident.status}")
    if incident.acknowledged_at is not None or _commander(session, incident.id) is not None:
        return Settle(f"{incident.ref} was acknowledged")
    if policy.impact_mitigated(incident.status):
        # Someone mitigated it: it is being worked on, and paging people (a second tier) to
        # come and acknowledge it would be noise. Its update nudges go on.
        return Settle(f"{incident.ref} is mitigated")
    if sev is None or sev.ack_within is None:
        return Settle(f"{incident.severity} has no acknowledgement deadline")
    rules = policy.reminders
    tier = int(ctx.row.data.get("tier", 1))
    since = _parse_time(ctx.row.data.get("since")) or incident.declared_at
    if tier == 1:
        due = since + sev.ack_within
    elif sev.escalate_again_after is not None:
        due = (ctx.row.last_sent_at or since) + sev.escalate_again_after
    else:
        return Settle(f"{incident.severity} has no second escalation tier")
    if due > now:  # the severity changed since this was scheduled
        return Settle("not due under the current severity", due=due, data=ctx.data())
    if not incident.slack_channel_id and not rules.escalation_channel:
        return _no_channel(incident, now)  # nowhere to say it yet
    targets = rules.escalate_to if tier == 1 else (rules.escalate_again_to or rules.escalate_to)
    waited = humanize_duration(now - since)

    def message(in_incident_channel: bool) -> Notice:
        assert incident is not None
        return notice(
            "escalation",
            incident_ref=incident.ref,
            title=incident.title,
            severity=incident.severity,
            channel_id=incident.slack_channel_id,
            private=incident.private,
            tier=tier,
            targets=list(targets),
            waited=waited,
            in_incident_channel=in_incident_channel,
        )

    # An incident whose channel could not be made yet is escalated all the same, in the
    # escalation channel: nobody acknowledging it is then all the more urgent.
    gone = _channel_gone(incident) if incident.slack_channel_id else None
    messages = (
        [Outgoing("incident", incident.slack_channel_id, message(True))]
        if incident.slack_channel_id and gone is None
        else []
    )
    if rules.escalation_channel and rules.escalation_channel != incident.slack_channel_id:
        messages.append(Outgoing("escalation", rules.escalation_channel, message(False)))
    who = ", ".join(_plain_targets(targets)) or "the incident channel"
    where = ""
    if not incident.slack_channel_id:
        where = f" (posted in <#{rules.escalation_channel}>: the incident has no channel yet)"
    elif gone is not None and messages:
        where = f" (posted in <#{rules.escalation_channel}>: the incident's channel {gone})"
    elif gone is not None:  # nowhere the targets would see it: whoever reported it is told
        messages.append(Outgoing("incident", incident.reporter_id, message(False)))
        where = f" (by direct message to <@{incident.reporter_id}>: the incident's channel {gone})"
    elif len(messages) > 1:
        where = f" (also posted in <#{rules.escalation_channel}>)"
    text = f"Escalated{' again' if tier > 1 else ''} to {who}: not acknowledged after {waited}"
    text += where
    return Send(
        seq=ctx.seq,
        messages=messages,
        entries=[
            Entry(
                incident.id,
                EventKind.ESCALATED,
                text,
                {"reminder": ACK, "tier": tier, "targets": list(targets)},
                frozenset(m.ref for m in messages),
            )
        ],
        after=lambda current, sent_at: _after_escalation(policy, current, tier, sent_at, ctx),
    )


def _after_escalation(
    policy: Policy, incident: Incident | None, tier: int, sent_at: datetime, ctx: Context
) -> Next:
    sev = policy.find_severity(incident.severity) if incident is not None else None
    again = sev.escalate_again_after if sev is not None and tier == 1 else None
    if again is None:
        return None, None
    return sent_at + again, ctx.data(tier=2)


def _plain_targets(targets: Iterable[str]) -> list[str]:
    """Targets for the timeline: people as mentions, groups by name (no @-everyone pings when
    the timeline is shown in Slack later)."""
    return [f"<@{t}>" if t.startswith(("U", "W")) else t for t in targets]


def _evaluate_update(ctx: Context) -> Outcome:
    incident, session, policy, now = ctx.incident, ctx.session, ctx.policy, ctx.now
    assert incident is not None and incident.id is not None
    sev = policy.find_severity(incident.severity)
    every = sev.update_every if sev is not None else None
    if _phase(policy, incident) != "active":
        return Settle(f"{incident.ref} is {incident.status}")
    if every is None:
        return Settle(f"{incident.severity} has no update cadence")
    last_update = _latest_update_at(session, incident.id)
    since = _parse_time(ctx.row.data.get("since")) or incident.declared_at
    reference = max(since, last_update) if last_update else since
    if reference + every > now:
        # An update was posted after this was scheduled: no nudge, count from the update.
        return Settle("a status update was posted", due=reference + every, data=ctx.data())
    if not incident.slack_channel_id:
        return _no_channel(incident, now)
    where, person, how = _reach(session, incident, _commander(session, incident.id))
    mention = f"<@{person}>" if person else "<!channel>"
    who = f"<@{person}>" if person else "the channel"
    quiet = humanize_duration(now - reference)
    assert ctx.row.id is not None
    message = notice(
        "update_nudge",
        reminder_id=ctx.row.id,
        seq=ctx.seq,  # on the buttons: which cycle the message is of
        incident_id=incident.id,
        incident_ref=incident.ref,
        title=incident.title,
        severity=incident.severity,
        mention=mention,
        quiet_for=quiet,
        every=format_duration(every),
        had_update=last_update is not None and last_update >= since,
        origin=str(ctx.row.data.get("from") or "declared"),
    )
    return Send(
        seq=ctx.seq,
        messages=[Outgoing("incident", where, message)],
        entries=[
            Entry(
                incident.id,
                EventKind.REMINDER_SENT,
                f"Reminded {who} to post a status update (none for {quiet}){how}",
                {"reminder": UPDATE},
                frozenset({"incident"}),
            )
        ],
        after=lambda current, sent_at: _after_nudge(policy, current, sent_at, ctx),
    )


def _after_nudge(
    policy: Policy, incident: Incident | None, sent_at: datetime, ctx: Context
) -> Next:
    sev = policy.find_severity(incident.severity) if incident is not None else None
    every = sev.update_every if sev is not None else None
    if every is None:
        return None, None
    return sent_at + every, ctx.data()


def _latest_step(
    session: Session, incident_id: int, run_id: int, step: int
) -> dict[str, Any] | None:
    events = session.exec(
        select(TimelineEvent)
        .where(
            TimelineEvent.incident_id == incident_id,
            TimelineEvent.kind == EventKind.RUNBOOK_STEP,
        )
        .order_by(col(TimelineEvent.id).desc())
    ).all()
    for event in events:
        data = event.data
        if _as_index(data.get("run_id")) == run_id and _as_index(data.get("step")) == step:
            return dict(data)
    return None


def _evaluate_step(ctx: Context) -> Outcome:
    incident, session, policy, now = ctx.incident, ctx.session, ctx.policy, ctx.now
    assert incident is not None and incident.id is not None
    data = ctx.row.data
    run_id, step = _as_index(data.get("run_id")), _as_index(data.get("step"))
    if _phase(policy, incident) != "active":
        return Settle(f"{incident.ref} is {incident.status}")
    latest = (
        _latest_step(session, incident.id, run_id, step)
        if run_id is not None and step is not None
        else None
    )
    if latest is None or latest.get("state") != "in_progress":
        return Settle("the step is no longer in progress")
    if not incident.slack_channel_id:
        return _no_channel(incident, now)
    assignee = latest.get("assignee") or data.get("assignee")
    commander = _commander(session, incident.id)
    person = assignee if isinstance(assignee, str) and assignee else commander
    where, person, how = _reach(session, incident, person)
    mention = f"<@{person}>" if person else "<!channel>"
    who = f"<@{person}>" if person else "the channel"
    run = session.get(RunbookRun, run_id)
    runbook = run.title if run is not None else str(data.get("runbook_id") or "runbook")
    since = _parse_time(data.get("since")) or ctx.row.created_at
    in_progress = humanize_duration(now - since)
    assert ctx.row.id is not None and step is not None
    message = notice(
        "stale_step",
        reminder_id=ctx.row.id,
        seq=ctx.seq,  # on the buttons: which cycle the message is of
        incident_ref=incident.ref,
        runbook_title=runbook,
        step_number=step + 1,
        step_title=str(latest.get("step_title") or data.get("step_title") or ""),
        mention=mention,
        in_progress_for=in_progress,
    )
    return Send(
        seq=ctx.seq,
        messages=[Outgoing("incident", where, message)],
        entries=[
            Entry(
                incident.id,
                EventKind.REMINDER_SENT,
                f"Reminded {who}: runbook step {step + 1} in progress for {in_progress}{how}",
                {"reminder": STEP, "run_id": run_id, "step": step},
                frozenset({"incident"}),
            )
        ],
        after=_fixed(None),
    )


def _evaluate_close(ctx: Context) -> Outcome:
    incident, session, policy, now = ctx.incident, ctx.session, ctx.policy, ctx.now
    assert incident is not None and incident.id is not None
    if _phase(policy, incident) != "resolved":
        return Settle(f"{incident.ref} is {incident.status}")
    if not incident.slack_channel_id:
        return _no_channel(incident, now)
    opens = next_working_time(policy, now)
    if opens > now:
        # Due while nobody works (it was scheduled in working hours, then snoozed past them,
        # or no replica ran until after they ended): at the next working time instead.
        return Settle("outside working hours", due=opens)
    where, commander, how = _reach(session, incident, commander_or_reporter(session, incident))
    mention = f"<@{commander}>"
    resolved_at = incident.resolved_at or _parse_time(ctx.row.data.get("resolved_at")) or now
    resolved_for = humanize_duration(now - resolved_at)
    assert ctx.row.id is not None
    message = notice(
        "close_reminder",
        reminder_id=ctx.row.id,
        seq=ctx.seq,  # on the buttons: which cycle the message is of
        incident_ref=incident.ref,
        title=incident.title,
        mention=mention,
        resolved_for=resolved_for,
    )
    return Send(
        seq=ctx.seq,
        messages=[Outgoing("incident", where, message)],
        entries=[
            Entry(
                incident.id,
                EventKind.REMINDER_SENT,
                f"Reminded {mention} to close {incident.ref} and finish the postmortem{how}",
                {"reminder": CLOSE},
                frozenset({"incident"}),
            )
        ],
        after=_fixed(None),
    )


def _recurring_at(ctx: Context, expr: str, *, working_hours: bool) -> datetime:
    """When this occurrence of a recurring reminder (cron ``expr``) goes out: now, or for what
    chases people (``working_hours``) the next working time. An occurrence missed until a later
    day (no replica ran, the clock jumped) is caught up once: when a regular occurrence comes
    later on the day it would go out, it goes out then instead, so that day has one, not two."""
    policy, zone = ctx.policy, ctx.policy.zone
    at = next_working_time(policy, ctx.now) if working_hours else ctx.now
    day = at.astimezone(zone).date()
    if day > as_utc(ctx.row.due_at).astimezone(zone).date():
        regular = next_cron_time(expr, zone, at)
        if regular.astimezone(zone).date() == day:
            return regular
    return at


def _evaluate_actions(ctx: Context) -> Outcome:
    session, policy, now = ctx.session, ctx.policy, ctx.now
    expr = policy.reminders.action_items_cron
    if expr is None:
        return Settle("reminders.action_items_cron is unset")
    at = _recurring_at(ctx, expr, working_hours=True)
    if at > now:
        # A run missed in working hours (no replica ran, or the clock jumped) waits for them:
        # nobody is chased about action items at 3 a.m. on a Saturday.
        return Settle("outside working hours, or caught up by a run later today", due=at)
    today = now.astimezone(policy.zone).date()
    next_due = next_cron_time(expr, policy.zone, now)
    next_data = {"cron": expr, "timezone": policy.timezone}
    items = session.exec(
        select(ActionItem)
        .where(
            ActionItem.status == "open",
            col(ActionItem.due_on).is_not(None),
            col(ActionItem.due_on) < today,
        )
        .order_by(col(ActionItem.incident_id), col(ActionItem.number))
    ).all()
    by_incident: dict[int, list[ActionItem]] = defaultdict(list)
    for item in items:
        by_incident[item.incident_id].append(item)
    messages: list[Outgoing] = []
    entries: list[Entry] = []
    for incident_id, owned in sorted(by_incident.items()):
        incident = session.get(Incident, incident_id)
        if incident is None or not incident.slack_channel_id:
            continue
        overdue = [i for i in owned if i.due_on is not None]
        listed = [
            {
                "number": i.number,
                "text": i.text,
                "owner_id": i.owner_id,
                "due_on": i.due_on.isoformat(),
            }
            for i in overdue
            if i.due_on is not None
        ]
        # The channel of a closed incident is usually archived (or deleted): a post there
        # reaches nobody, so each owner is told in a direct message instead.
        gone = _channel_gone(incident)
        # (ref, where): the channel, or each owner
        sent: list[tuple[str, str]] = []
        if gone is None:
            sent.append((f"incident:{incident_id}", incident.slack_channel_id))
        else:
            for owner in dict.fromkeys(str(i["owner_id"]) for i in listed if i["owner_id"]):
                sent.append((f"incident:{incident_id}:owner:{owner}", owner))
        for ref, where in sent:
            theirs = [i for i in listed if gone is None or i["owner_id"] == where]
            messages.append(
                Outgoing(
                    ref,
                    where,
                    notice(
                        "overdue_action_items",
                        incident_ref=incident.ref,
                        items=theirs,
                        today=today.isoformat(),
                    ),
                )
            )
        if not sent:
            continue
        numbers = ", ".join(str(i["number"]) for i in listed if gone is None or i["owner_id"])
        how = f" (by direct message: the incident's channel {gone})" if gone else ""
        entries.append(
            Entry(
                incident_id,
                EventKind.REMINDER_SENT,
                f"Reminded owners of overdue action items: {numbers}{how}",
                {"reminder": ACTIONS, "action_items": [i.number for i in overdue]},
                frozenset(ref for ref, _ in sent),
            )
        )
    if not messages:
        return Settle("no overdue action items", due=next_due, data=next_data)
    return Send(ctx.seq, messages, entries, _fixed(next_due, next_data))


def _evaluate_digest(ctx: Context) -> Outcome:
    session, policy, now = ctx.session, ctx.policy, ctx.now
    expr = policy.reminders.digest_cron
    channel = policy.reminders.digest_channel or policy.slack.announcements_channel
    if expr is None or channel is None:
        return Settle("no digest cron or channel")
    at = _recurring_at(ctx, expr, working_hours=False)
    if at > now:
        return Settle("missed: caught up by the digest later today", due=at)
    open_incidents = [
        i
        for i in list_incidents(session, policy, phases=("active", "resolved"), limit=1000)
        if not i.private
    ]
    ids = [i.id for i in open_incidents if i.id is not None]
    updates: dict[int | None, datetime] = dict(
        session.exec(
            select(TimelineEvent.incident_id, func.max(TimelineEvent.occurred_at))
            .where(
                col(TimelineEvent.incident_id).in_(ids),
                TimelineEvent.kind == EventKind.STATUS_UPDATE,
            )
            .group_by(col(TimelineEvent.incident_id))
        ).all()
    )
    commanded = set(
        session.exec(
            select(RoleAssignment.incident_id).where(
                col(RoleAssignment.incident_id).in_(ids),
                RoleAssignment.role == COMMANDER,
                col(RoleAssignment.unassigned_at).is_(None),
            )
        ).all()
    )
    order = {s.key: n for n, s in enumerate(policy.severities)}
    open_incidents.sort(key=lambda i: (order.get(i.severity, len(order)), -i.number))
    entries: list[dict[str, Any]] = []
    for incident in open_incidents:
        status = policy.find_status(incident.status)
        last = updates.get(incident.id)
        entries.append(
            {
                "ref": incident.ref,
                "title": incident.title,
                "severity": incident.severity,
                "status_name": status.label if status else incident.status,
                "channel_id": incident.slack_channel_id,
                "open_for": humanize_duration(now - incident.declared_at),
                "last_update": humanize_duration(now - as_utc(last)) if last else None,
                "commander": incident.id in commanded,
            }
        )
    message = notice("digest", entries=entries, day=now.astimezone(policy.zone).date().isoformat())
    return Send(
        seq=ctx.seq,
        messages=[Outgoing("digest", channel, message)],
        entries=[],
        after=_fixed(
            next_cron_time(expr, policy.zone, now), {"cron": expr, "timezone": policy.timezone}
        ),
    )


def _evaluate_clock(ctx: Context) -> Outcome:
    """A regulatory deadline coming up, or reached: said in the incident channel."""
    incident = ctx.incident
    assert incident is not None and incident.id is not None
    out = regulatory.clock_reminder_outcome(
        ctx.session, ctx.policy, incident, ctx.row.data, ctx.now
    )
    if out.text is None:
        return Settle("clock completed or deadline moved", due=out.retry_at, data=ctx.data())
    if not incident.slack_channel_id:
        return _no_channel(incident, ctx.now)
    kind, data = regulatory.warned_event(ctx.row.data)
    where, _, how = _reach(ctx.session, incident, None)
    return Send(
        seq=ctx.seq,
        messages=[Outgoing("incident", where, notice("clock", text=out.text))],
        entries=[Entry(incident.id, kind, out.text + how, data, frozenset({"incident"}))],
        after=_fixed(None),
    )


EVALUATORS: dict[str, Callable[[Context], Outcome]] = {
    "clock": _evaluate_clock,
    ACK: _evaluate_ack,
    UPDATE: _evaluate_update,
    STEP: _evaluate_step,
    CLOSE: _evaluate_close,
    ACTIONS: _evaluate_actions,
    DIGEST: _evaluate_digest,
}
