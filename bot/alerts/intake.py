"""The database side: store a parsed message, group it, open or update the incident.

``ingest`` runs in the caller's transaction. Exactly once, whatever the retries and replicas:

* The group row is created with INSERT ... ON CONFLICT DO NOTHING and then locked
  (``FOR UPDATE`` on PostgreSQL; SQLite transactions hold the write lock), so every message
  of one group is applied one after the other.
* Alerts are state, not events: a message changes an alert's status or does nothing. A retry,
  a duplicate delivery or a second replica finds the state already applied and writes nothing.
* The incident is declared with the key ``alerts:<group id>:<episode>`` and timeline entries
  carry keys derived from the alerts' transition counters, so even a race writes each once.
* A note or acknowledgement that comes while the group has no incident (before the event that
  opens it: senders do not deliver in order) is held on the group, and recorded with its own
  key when the group is declared or attached, in that transaction (``carry_over``).
"""

from __future__ import annotations

import hashlib
import re
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from bot import incidents as core
from bot.alerts import triage_request
from bot.alerts.changes import (
    Changes,
    apply_alerts,
    links,
    names,
    rephrased_text,
    store_alerts,
    timeline_text,
    transition_key,
)
from bot.alerts.held import adopt_strays, carry_over, hold, hold_entry, record_note
from bot.alerts.model import SOURCE_TITLES, AlertMessage, Status, reporter_of
from bot.alerts.models import DECLARING, AlertGroup, AlertRecord
from bot.alerts.notices import (
    ALL_RESOLVED,
    AlertLinks,
    AllResolved,
    FiringAgain,
    answer_all_resolved,
    open_questions,
    queue_notice,
)
from bot.alerts.priorities import assess, entry_text, opening_severity
from bot.alerts.related import labelled, related_incident
from bot.alerts.routing import Route, mapped_severity, route
from bot.clock import utcnow
from bot.config import Policy
from bot.effects import kinds, store
from bot.errors import InvalidInput, InvalidTransition, NotFound
from bot.markup import escape_mrkdwn
from bot.models import EventKind, Incident
from bot.runbooks import progress
from bot.runbooks.catalog import RunbookCatalog

DATA_LIST_MAX = 50


@dataclass(frozen=True)
class Outcome:
    """What one message did."""

    group_id: int
    disposition: str
    incident_id: int | None
    incident_ref: str | None
    declared: bool
    firing: int
    fired: int
    resolved: int
    severity: str


# --------------------------------------------------------------------------------------------
# The group row


def _group_insert(dialect: str) -> Any:
    # The new row comes back as the ORM object, held by this transaction (the insert locks it);
    # nothing comes back when the group exists (a concurrent creator committed it first).
    insert = sqlite_insert if dialect == "sqlite" else postgresql_insert
    return (
        insert(AlertGroup)
        .on_conflict_do_nothing(index_elements=["source", "group_key"])
        .returning(AlertGroup)
    )


_GROUP_INSERT = {name: _group_insert(name) for name in ("sqlite", "postgresql")}


def lock_group(session: Session, group_id: int) -> AlertGroup:
    group = session.exec(
        select(AlertGroup)
        .where(AlertGroup.id == group_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if group is None:
        raise NotFound(f"No alert group {group_id}.")
    return group


_LOCK_GROUP_BY_KEY = (
    select(AlertGroup)
    .where(
        col(AlertGroup.source) == bindparam("source"),
        col(AlertGroup.group_key) == bindparam("group_key"),
    )
    .with_for_update()
    .execution_options(populate_existing=True)
)


def _open_group(session: Session, message: AlertMessage, now: datetime) -> AlertGroup:
    """The message's group, locked; created first when it is new (a concurrent creator waits
    on the unique key and then finds the row). A message that names its group only by another
    id (``same_as``) joins the group whose alert carries that id, when there is one."""
    params = {"source": message.source, "group_key": message.group_key}
    group = session.exec(_LOCK_GROUP_BY_KEY, params=params).first()
    if group is not None:
        return group
    if message.same_as is not None:
        known = session.exec(labelled(message.source, *message.same_as).limit(1)).first()
        if known is not None and known.id is not None:
            return lock_group(session, known.id)
    created = session.scalars(
        _GROUP_INSERT[session.get_bind().dialect.name],
        {
            **params,
            "episode": 1,
            "status": Status.FIRING.value if message.firing else Status.RESOLVED.value,
            "disposition": "pending",
            "title": message.title[:300],
            "firing_count": 0,
            "alert_count": 0,
            "links": [],
            "held": [],
            "first_seen_at": now,
            "last_seen_at": now,
        },
    ).first()
    return created if created is not None else session.exec(_LOCK_GROUP_BY_KEY, params=params).one()


# --------------------------------------------------------------------------------------------
# The incident


def _phase(policy: Policy, incident: Incident) -> str:
    return policy.phase_of(incident.status)


def _summary(message: AlertMessage, firing: int, description: str | None = None) -> str:
    """``description``: the first firing alert's, for a message that lists none (a declare
    after the webhook: from triage, or one that waited)."""
    first = next((a for a in message.alerts if a.status == Status.FIRING), None)
    source = "" if message.source == "generic" else f"{SOURCE_TITLES[message.source]} "
    lines = [f"Opened by {source}alerts ({firing} firing)."]
    description = first.description if first is not None else description
    if description:
        lines.append(_description_shown(description))
    return "\n\n".join(lines)


DESCRIPTION_SHOWN = 2000
_CUT_ENTITY = re.compile(r"&[a-z]*$")


def _description_shown(description: str) -> str:
    """The alert's description in the summary: Slack markup, so shown as written, never as
    links or mentions ("nothing in an alert can format"); at most ``DESCRIPTION_SHOWN``
    characters once escaped (2,000 ``&`` are 10,000 characters of ``&amp;``), never cutting
    an entity in two."""
    shown = escape_mrkdwn(description[:DESCRIPTION_SHOWN])
    if len(shown) <= DESCRIPTION_SHOWN:
        return shown
    return _CUT_ENTITY.sub("", shown[: DESCRIPTION_SHOWN - 1]) + "…"


def _declare(
    session: Session,
    policy: Policy,
    group: AlertGroup,
    message: AlertMessage,
    plan: Route,
    firing: int,
    *,
    reporter: str,
    now: datetime,
    invite_also: tuple[str, ...] = (),
    since: datetime | None = None,
    started: datetime | None = None,
    description: str | None = None,
) -> Incident:
    """Declare the group's incident. ``since``: when the alerts came that it is declared for
    (by default now, in this message); ``started``: when they started firing, for a message
    that lists none."""
    starts = [a.starts_at for a in message.alerts if a.starts_at is not None]
    change = core.declare_incident(
        session,
        policy,
        title=group.title or message.title or f"{message.source} alert",
        reporter=reporter,
        severity=group.severity or plan.severity,
        summary=_summary(message, firing, description),
        service=group.service or plan.service,
        impact_started_at=min(starts) if starts else started,
        detected_at=since or now,
        key=f"alerts:{group.id}:{group.episode}",
        invite=[*policy.alerts.invite, *invite_also],
        now=now,
    )
    incident = change.incident
    assert incident.id is not None
    group.incident_id = incident.id
    group.disposition = "incident"
    carry_over(session, policy, group, incident, now, since=since)
    return incident


def record_changes(
    session: Session,
    policy: Policy,
    group: AlertGroup,
    incident: Incident,
    changes: Changes,
    counts: tuple[int, int, int],
    *,
    key: str,
    now: datetime,
    held: Incident | None,
    occurred_at: datetime | None = None,
) -> None:
    """What fired and resolved, on the incident's timeline (once: ``key``). ``counts``: the
    group's firing and counted alerts, and those the sender left out."""
    assert incident.id is not None
    firing, total, truncated = counts
    core.record_timeline_event(
        session,
        policy,
        incident.id,
        kind=EventKind.ALERT_FIRING if changes.fired else EventKind.ALERT_RESOLVED,
        text=timeline_text(changes, firing, total, truncated, group.episode),
        actor=reporter_of(group.source),
        occurred_at=occurred_at,
        data={
            "source": group.source,
            "group_id": group.id,
            "firing": firing,
            "alerts": total,
            "fired": [r.key for r in changes.fired][:DATA_LIST_MAX],
            "resolved": [r.key for r in changes.resolved][:DATA_LIST_MAX],
            "truncated": truncated,
        },
        key=key,
        now=now,
        held=held,
    )


def _rephrased(group: AlertGroup, changes: Changes, now: datetime) -> tuple[str, str] | None:
    """The timeline entry (key, text) for alerts whose sender's word for their state changed
    while their status stayed (a Datadog Warn escalating to Triggered), if any."""
    if not changes.rephrased:
        return None
    said = [(m.key, old, new) for m, old, new in changes.rephrased]
    # Once: a repeat of this message finds the word already changed.
    digest = hashlib.sha256(repr((said, now.isoformat())).encode())
    key = f"alerts:phase:{group.id}:{digest.hexdigest()[:40]}"
    return key, rephrased_text(group.source, changes.rephrased)


def _defer_declare(
    session: Session, group: AlertGroup, plan: Route, message: AlertMessage, now: datetime
) -> None:
    """Another declare holds the incident counter (PostgreSQL) until its commit: rather than
    this webhook waiting for it, the group is declared by an effect moments later, on any
    replica (``bot.alerts.declaring``). The alerts are stored now; messages that come
    meanwhile are stored on the group, as while it waits in triage. Also when another group
    of the same thing (``message.related``) is waiting so: it attaches to that one's incident
    once it has one."""
    assert group.id is not None
    group.disposition = DECLARING
    # The runbook the alerts name, kept for the declare (as for a Declare from triage).
    group.runbook_id = plan.runbook.id if plan.runbook is not None else None
    store.enqueue(
        session,
        kind=kinds.ALERTS_DECLARE,
        key=f"alerts:declare:{group.id}:{group.episode}",
        data={
            "group": group.id,
            "episode": group.episode,
            "since": now.isoformat(),
            "related": list(message.related) if message.related else None,
        },
        now=now,
    )


def _announce(
    session: Session,
    policy: Policy,
    group: AlertGroup,
    incident: Incident,
    plan: Route,
    firing: int,
    now: datetime,
) -> None:
    """The links and the runbook, posted in the incident channel once per episode; the runbook
    is started when the policy says so."""
    assert incident.id is not None and group.id is not None
    started = False
    runbook = plan.runbook
    section = next(
        (a for a in plan.runbook_alerts if runbook and runbook.first_step_for([a]) is not None),
        None,
    )
    if runbook is not None:
        group.runbook_id = runbook.id
        if policy.alerts.start_runbook and runbook.steps:
            progress.start_run(
                session,
                policy,
                incident.id,
                runbook,
                actor=reporter_of(group.source),
                key=f"alerts:runbook:{group.id}:{group.episode}",
                now=now,
                alerts=plan.runbook_alerts,
            )
            started = True
    queue_notice(
        session,
        AlertLinks(
            incident_id=incident.id,
            group_id=group.id,
            source=group.source,
            title=group.title,
            firing=firing,
            resolved=0 if firing else group.alert_count,
            links=list(group.links),
            runbook_id=runbook.id if runbook else None,
            runbook_title=runbook.title if runbook else None,
            runbook_started=started,
            runbook_alert=section[:200] if section else None,
        ),
        dedupe_key=f"links:{group.id}:{group.episode}:{incident.id}",
        now=now,
    )


def _merge_links(group: AlertGroup, message: AlertMessage) -> None:
    """The group's links: the first ten distinct ones its alerts brought."""
    if len(group.links) >= 10:
        return
    merged = {link["url"]: link for link in group.links}
    for alert in message.alerts:
        for link in links(alert):
            merged.setdefault(link["url"], link)
    if len(merged) != len(group.links):
        group.links = list(merged.values())[:10]


def _all_resolved(
    session: Session,
    policy: Policy,
    group: AlertGroup,
    incident: Incident,
    now: datetime,
    *,
    unlisted: int = 0,
) -> None:
    """Every alert of the incident resolved: ask whether to mitigate, or mitigate when the
    policy says so; asked, never done, while the sender left ``unlisted`` alerts out."""
    assert incident.id is not None and group.id is not None
    others = session.exec(
        select(func.count()).where(
            AlertGroup.incident_id == incident.id,
            AlertGroup.id != group.id,
            AlertGroup.firing_count > 0,
        )
    ).one()
    if others or policy.impact_mitigated(incident.status):
        return
    if open_questions(session, ALL_RESOLVED, incident.id):
        return  # one open question per incident: the one already asked stands
    turn = session.exec(
        select(func.sum(AlertRecord.transitions)).where(AlertRecord.group_id == group.id)
    ).one()
    key = f"alerts:resolved:{group.id}:{group.episode}:{turn}"
    if policy.alerts.on_all_resolved == "mitigate" and not unlisted:
        # A policy with no way from here to mitigated: people are asked instead.
        with suppress(InvalidTransition, InvalidInput):
            core.mitigate_incident(
                session, policy, incident.id, actor=reporter_of(group.source), key=key, now=now
            )
            return
    if policy.alerts.on_all_resolved in ("ask", "mitigate"):
        queue_notice(
            session,
            AllResolved(
                incident_id=incident.id,
                group_id=group.id,
                source=group.source,
                title=group.title,
                resolved=group.alert_count,
                unlisted=unlisted,
            ),
            dedupe_key=key,
            now=now,
        )


def _new_episode(
    policy: Policy,
    group: AlertGroup,
    incident: Incident | None,
    changes: Changes,
    refired: bool,
    now: datetime,
) -> bool:
    """Whether what fired starts a new episode (a new incident, or triage): any alert firing
    while the group's incident is closed (a closed incident is never reused), or the group
    firing again after its flap window while its incident is resolved. An incident people
    are still working on (active, mitigated included) takes it however late: a second
    incident for the same alerts beside an open one splits the responders. An ignored group
    stays ignored within the window."""
    if not changes.fired:
        return False
    phase = _phase(policy, incident) if incident is not None else None
    if phase == "closed":
        return True
    if not refired:
        return False
    assert group.resolved_at is not None
    late = now - group.resolved_at > policy.alerts.flap_window
    return (late and phase != "active") or group.disposition in ("dropped", "none")


def firing_again(
    session: Session,
    policy: Policy,
    group: AlertGroup,
    incident: Incident,
    fired: tuple[str, str],
    refired: bool,
    now: datetime,
) -> None:
    """Alerts fired in (or were attached from triage to) the incident: an open "all resolved"
    question is moot (its message is edited); firing again after the impact was mitigated or
    resolved, the channel is told, once per ``fired`` (what fired, key); it is not reopened."""
    assert incident.id is not None and group.id is not None
    answer_all_resolved(
        session, incident.id, outcome="Alerts fired again", actor=reporter_of(group.source), now=now
    )
    if not refired or not policy.impact_mitigated(incident.status):
        return
    status = policy.find_status(incident.status)
    queue_notice(
        session,
        FiringAgain(
            incident_id=incident.id,
            group_id=group.id,
            source=group.source,
            names=fired[0],
            firing=group.firing_count,
            alerts=group.alert_count,
            status=status.label if status is not None else incident.status,
        ),
        dedupe_key=f"again:{fired[1]}",
        now=now,
    )


def ingest(
    session: Session,
    policy: Policy,
    message: AlertMessage,
    *,
    catalog: RunbookCatalog | None = None,
    now: datetime | None = None,
) -> Outcome:
    """Store ``message`` and do what the policy says; idempotent (see the module docstring)."""
    now = now or utcnow()
    plan = route(policy, catalog, message)
    group = _open_group(session, message, now)
    assert group.id is not None
    adopt_strays(session, group, message)
    was_firing, was_counted = group.firing_count, group.alert_count
    group_was_firing = group.status == Status.FIRING.value
    changes = apply_alerts(session, group, message, plan, now)
    # Kept incrementally under the group lock (never re-counted: a storm group has thousands).
    firing = group.firing_count + changes.firing_delta
    total = group.alert_count + changes.new_rows
    group.last_seen_at = now
    group.alert_count = total
    group.firing_count = firing
    if message.info:
        group.last_info = message.info[-1].text
    # The newest priority wins: not one older than what was applied, nor a retry.
    priority = assess(session, policy, group, message, late=changes.late > 0)
    group.severity = priority.severity or group.severity

    # Locked now (group, then incident: the order every path takes) rather than when its
    # timeline entry is written: one statement instead of two.
    incident: Incident | None = None
    if group.incident_id is not None:
        with suppress(NotFound):
            incident = core.lock_incident(session, group.incident_id)
    held = incident
    # Fired again: not when only alerts the policy drops came before (no episode to end).
    refired = bool(changes.fired) and was_firing == 0 and group.resolved_at is not None
    refired = refired and was_counted > 0
    if _new_episode(policy, group, incident, changes, refired, now):
        group.episode += 1
        group.incident_id = None
        group.disposition = "pending"
        group.severity = None
        group.runbook_id = None
        incident = None
        ended = group.resolved_at
        if group.held and ended is not None:  # what came after it resolved is of this episode
            group.held = [e for e in group.held if datetime.fromisoformat(e["at"]) > ended]
    if firing:
        group.status = Status.FIRING.value
        group.resolved_at = None
    elif was_firing or group.status == Status.FIRING.value:
        # Every alert known has resolved. Alerts the sender left out of the message
        # (``truncated``) may still fire: Alertmanager drops the resolved ones once it has
        # sent them, so any still firing is listed in its next message, which fires again.
        group.status = Status.RESOLVED.value
        group.resolved_at = now
    _merge_links(group, message)

    opening = incident is None and group.disposition in ("pending", "none", "dropped")
    if opening and firing:  # set before the alerts are written: one UPDATE of the group
        group.severity = opening_severity(group, message, plan.severity)
        group.service = plan.service
        group.title = message.title[:300] or group.title
    # Written before a declare takes its incident number (that holds the counter row until the
    # commit); the declare or attach gives the new firing alerts their incident (carry_over).
    store_alerts(session, changes, incident.id if incident is not None else None)
    declared = False
    if opening:
        if firing:
            other = related_incident(session, policy, group, message.related, now)
            incident, refired = other.incident, other.refired
            if incident is not None:
                group.incident_id = incident.id
                group.disposition = "incident"
                carry_over(session, policy, group, incident, now)
            elif other.waiting or (
                policy.alerts.declare == "auto" and not core.number_free(session)
            ):
                _defer_declare(session, group, plan, message, now)
            elif policy.alerts.declare == "auto":
                incident = _declare(
                    session,
                    policy,
                    group,
                    message,
                    plan,
                    firing,
                    reporter=reporter_of(message.source),
                    now=now,
                )
                declared = True
                held = incident  # its row was written by this transaction
            else:
                group.disposition = "triage"
                # The runbook the alerts name, kept for a Declare from triage to open with.
                group.runbook_id = plan.runbook.id if plan.runbook is not None else None
                triage_request.ask(
                    session, policy, group, group.severity or plan.severity, firing, now
                )
        elif message.alerts:
            group.disposition = "dropped" if plan.dropped else "none"
        else:
            group.disposition = "none"
    elif group.disposition == "triage" and (changes.fired or changes.resolved):
        triage_request.refresh(session, group, firing, now)  # still waiting: says what fires

    rephrased = _rephrased(group, changes, now)
    if incident is not None and incident.id is not None:
        if declared:
            _announce(session, policy, group, incident, plan, firing, now)
        elif changes.fired:
            fired = (names(changes.fired), transition_key(group, changes))
            firing_again(session, policy, group, incident, fired, refired, now)
        if changes.fired or changes.resolved:
            record_changes(
                session,
                policy,
                group,
                incident,
                changes,
                (firing, total, message.truncated),
                key=transition_key(group, changes),
                now=now,
                held=held,
            )
        if rephrased is not None:
            key, text = rephrased
            record_note(session, policy, incident.id, group, key, text, None, now=now, held=held)
        for info in message.info:
            severity = mapped_severity(policy, info.severity)
            record_note(
                session,
                policy,
                incident.id,
                group,
                info.key,
                entry_text(info.text, severity, priority, info.key, incident),
                None,
                now=now,
                held=held,
            )
        # Every alert resolved, as far as the messages tell (but for those it left out, which
        # the question names), and the group was firing until now.
        if (
            changes.resolved
            and (was_firing or group_was_firing)
            and not firing
            and not message.merged
        ):
            _all_resolved(session, policy, group, incident, now, unlisted=message.truncated)
    else:  # held until the group is declared or attached
        if message.info:
            hold(policy, group, message, priority, now)
        if rephrased is not None:
            hold_entry(group, *rephrased, now)
    session.flush()
    return Outcome(
        group_id=group.id,
        disposition=group.disposition,
        incident_id=incident.id if incident is not None else None,
        incident_ref=incident.ref if incident is not None else None,
        declared=declared,
        firing=firing,
        fired=len(changes.fired),
        resolved=len(changes.resolved),
        severity=group.severity or plan.severity,
    )
