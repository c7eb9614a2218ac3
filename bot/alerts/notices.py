"""Slack messages only alerts send, as plain data, handed to the effects outbox.

``queue_notice`` runs in the caller's transaction: it records the notice in ``alert_notices``
(what alerts asked for, once per dedupe key) and enqueues a ``message.post`` effect carrying it
(``{"type": "alerts.<kind>", ...}``); the Slack adapter renders it with the renderers of
``bot/slack/alerts.py`` and posts it once. Notices about an incident go in the incident's lane,
so they are posted after its channel exists. Nothing here knows Slack.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from bot.alerts.models import AlertNotice
from bot.clock import utcnow
from bot.effects import kinds, store
from bot.keys import fit_key

TRIAGE = "triage"
LINKS = "links"
ALL_RESOLVED = "all_resolved"
FIRING_AGAIN = "firing_again"
ANSWERED = "answered"
TYPE_PREFIX = "alerts."
"""Notice types in effects are ``alerts.triage``, ``alerts.links``, ``alerts.all_resolved``,
``alerts.firing_again`` (posted) and ``alerts.answered`` (an edit of a posted question)."""


@dataclass(frozen=True)
class TriageRequest:
    """Posted in the triage channel: Declare / Attach to INC-n / Ignore."""

    group_id: int
    channel: str
    source: str
    title: str
    severity: str
    firing: int
    open_incidents: list[str] = field(default_factory=list)
    """Refs of active incidents offered by "Attach to" (``INC-7``), newest first."""
    kind: str = TRIAGE


@dataclass(frozen=True)
class AlertLinks:
    """Posted in the incident channel when alerts open or join it: what fires, the links, and
    the runbook the alert names."""

    incident_id: int
    group_id: int
    source: str
    title: str
    firing: int
    links: list[dict[str, str]] = field(default_factory=list)
    runbook_id: str | None = None
    runbook_title: str | None = None
    runbook_started: bool = False
    resolved: int = 0
    """With ``firing`` 0: the alerts, all resolved before the incident was declared (a Declare
    from triage after they resolved), so the post says they resolved, not "0 firing"."""
    runbook_alert: str | None = None
    """The alert whose section of the runbook its Start button opens the run at (a runbook
    covering many alerts)."""
    kind: str = LINKS


@dataclass(frozen=True)
class AllResolved:
    """Posted in the incident channel: "all alerts resolved: mitigate?" with a button."""

    incident_id: int
    group_id: int
    source: str
    title: str
    resolved: int
    unlisted: int = 0
    """Alerts the sender left out of its message (Alertmanager's ``max_alerts``): not known
    to have resolved; the sender lists any that still fire in its next message."""
    kind: str = ALL_RESOLVED


@dataclass(frozen=True)
class FiringAgain:
    """Posted in the incident channel when a group fires again within its flap window while
    its incident is mitigated or resolved: people decided the impact was over, and the alerts
    say otherwise (the incident is not reopened for them)."""

    incident_id: int
    group_id: int
    source: str
    names: str
    """What fired again (``HighLatency ×3``)."""
    firing: int
    alerts: int
    status: str
    """The incident's status, as the policy names it (``Monitoring``)."""
    kind: str = FIRING_AGAIN


@dataclass(frozen=True)
class Answered:
    """What a triage request or an "all alerts resolved" prompt becomes once it is decided: the
    same words, the decision and who made it, and no buttons (the message is edited)."""

    group_id: int
    source: str
    title: str
    outcome: str
    """``Declared INC-3``, ``Attached to INC-2``, ``Ignored``, ``Marked mitigated``."""
    actor: str | None = None
    """Who decided (a Slack user id, or an ``alerts:<source>`` principal)."""
    question: str = TRIAGE
    """The kind of the notice answered."""
    incident_id: int | None = None
    kind: str = ANSWERED


Notice = TriageRequest | AlertLinks | AllResolved | FiringAgain | Answered

_BUILD: dict[str, type[Notice]] = {
    TRIAGE: TriageRequest,
    LINKS: AlertLinks,
    ALL_RESOLVED: AllResolved,
    FIRING_AGAIN: FiringAgain,
    ANSWERED: Answered,
}


def _insert(dialect: str) -> Any:
    insert = sqlite_insert if dialect == "sqlite" else postgresql_insert
    return insert(AlertNotice.__table__).on_conflict_do_nothing(  # type: ignore[attr-defined]
        index_elements=["dedupe_key"]
    )


_INSERT = {name: _insert(name) for name in ("sqlite", "postgresql")}


def as_effect_notice(notice: Notice) -> dict[str, Any]:
    """The notice as the plain dict a ``message.post`` effect carries."""
    data = asdict(notice)
    data["type"] = TYPE_PREFIX + data.pop("kind")
    return data


def notice_from(data: dict[str, Any]) -> Notice | None:
    """The notice in an effect's dict (``None`` for a type alerts do not know)."""
    kind = str(data.get("type") or "").removeprefix(TYPE_PREFIX)
    build = _BUILD.get(kind)
    if build is None:
        return None
    # Only the fields this version knows: a notice written by a newer replica (a field added
    # since) is still shown, in a rolling deploy.
    known = {f.name for f in fields(build)}
    values = {k: v for k, v in data.items() if k != "type" and k in known}
    return build(**values)


def queue_notice(session: Session, notice: Notice, *, dedupe_key: str, now: datetime) -> None:
    """Record and post ``notice`` once per ``dedupe_key`` (a repeat is a no-op)."""
    written = session.execute(
        _INSERT[session.get_bind().dialect.name],
        {
            "dedupe_key": fit_key(dedupe_key),
            "kind": notice.kind,
            "incident_id": getattr(notice, "incident_id", None),
            "group_id": notice.group_id,
            "payload": asdict(notice),
            "state": "queued",
            "created_at": now,
        },
    ).rowcount  # type: ignore[attr-defined]
    if not written:
        return
    if isinstance(notice, TriageRequest):
        to, incident_id = notice.channel, None
    else:
        to, incident_id = "incident", notice.incident_id
    store.enqueue(
        session,
        kind=kinds.POST,
        key=_post_key(dedupe_key),
        # A notice of alerts firing again, or asking to mitigate, tells of a moment: a retry
        # hours later never posts it.
        data={
            "to": to,
            "notice": as_effect_notice(notice),
            store.MOMENT: notice.kind in (FIRING_AGAIN, ALL_RESOLVED),
        },
        incident_id=incident_id,
        lane=_lane(notice),
        now=now,
    )


def _post_key(dedupe_key: str) -> str:
    """The key of a notice's post, the same from the key it was queued under and from the key
    its row stores (which is already fitted when long)."""
    return fit_key(f"alerts:{fit_key(dedupe_key)}")


def _triage(notice: Notice) -> bool:
    return isinstance(notice, TriageRequest) or (
        isinstance(notice, Answered) and notice.question == TRIAGE
    )


def _lane(notice: Notice) -> str:
    """Incident notices run in the incident's lane (after its channel exists); a triage request
    in its group's, so the edit that answers it always follows its post."""
    incident_id = None if _triage(notice) else getattr(notice, "incident_id", None)
    if incident_id is None:
        return f"alerts:group:{notice.group_id}"
    return store.incident_lane(incident_id)


_ANSWER = (
    update(AlertNotice)
    .where(
        col(AlertNotice.dedupe_key) == bindparam("key"),
        col(AlertNotice.state) == "queued",
    )
    .values(state="answered")
)


def answer_notice(session: Session, dedupe_key: str, answer: Answered, *, now: datetime) -> bool:
    """Mark the question queued under ``dedupe_key`` answered and edit its message into
    ``answer`` (no buttons left to press). False when it was answered already: the first
    decision is the one the message shows."""
    answered = session.execute(_ANSWER, {"key": fit_key(dedupe_key)}).rowcount  # type: ignore[attr-defined]
    if not answered:
        return False
    store.enqueue(
        session,
        kind=kinds.UPDATE,
        key=f"alerts:answer:{dedupe_key}",
        data={"post": _post_key(dedupe_key), "notice": as_effect_notice(answer)},
        incident_id=None if _triage(answer) else answer.incident_id,
        lane=_lane(answer),
        now=now,
    )
    return True


def _waiting(
    session: Session, kind: str, incident_id: int | None = None, *, group_id: int | None = None
) -> list[AlertNotice]:
    """The ``kind`` notices about the incident (or the group) still waiting for an answer."""
    about = (
        AlertNotice.incident_id == incident_id
        if group_id is None
        else AlertNotice.group_id == group_id
    )
    return list(
        session.exec(
            select(AlertNotice).where(
                AlertNotice.kind == kind, about, AlertNotice.state == "queued"
            )
        ).all()
    )


def waiting_triage(session: Session, group_id: int) -> list[AlertNotice]:
    """The group's triage requests still waiting for a decision."""
    return _waiting(session, TRIAGE, group_id=group_id)


def restate(session: Session, row: AlertNotice, notice: Notice, *, now: datetime) -> None:
    """Edit the message of ``row``, a question still waiting for an answer, into ``notice`` (the
    same question as things stand now, its buttons kept): one coalesced edit per question, the
    latest wins, in its post's lane, so it follows the post and comes before any answer."""
    row.payload = asdict(notice)
    session.add(row)
    store.arm(
        session,
        kind=kinds.UPDATE,
        key=fit_key(f"alerts:restate:{fit_key(row.dedupe_key)}"),
        data={"post": _post_key(row.dedupe_key), "notice": as_effect_notice(notice)},
        incident_id=None if _triage(notice) else getattr(notice, "incident_id", None),
        lane=_lane(notice),
        now=now,
    )


def open_questions(session: Session, kind: str, incident_id: int) -> list[str]:
    """The dedupe keys of the ``kind`` notices about the incident still waiting for an answer."""
    return [notice.dedupe_key for notice in _waiting(session, kind, incident_id)]


def answer_triage(session: Session, answer: Answered, *, now: datetime) -> None:
    """Every triage request of ``answer.group_id`` still waiting is answered (one: a request
    of an earlier episode says it was superseded when the next is posted,
    ``bot.alerts.triage_request.ask``)."""
    for notice in _waiting(session, TRIAGE, group_id=answer.group_id):
        answer_notice(session, notice.dedupe_key, answer, now=now)


def answer_all_resolved(
    session: Session, incident_id: int, *, outcome: str, actor: str, now: datetime | None = None
) -> None:
    """The "all alerts resolved: mitigate?" questions about the incident are answered (its
    button was pressed, or alerts fired again): their messages say so, without the button."""
    for notice in _waiting(session, ALL_RESOLVED, incident_id):
        answer_notice(
            session,
            notice.dedupe_key,
            Answered(
                group_id=notice.group_id or 0,
                source=str(notice.payload.get("source") or ""),
                title=str(notice.payload.get("title") or ""),
                outcome=outcome,
                actor=actor,
                question=ALL_RESOLVED,
                incident_id=incident_id,
            ),
            now=now or utcnow(),
        )
