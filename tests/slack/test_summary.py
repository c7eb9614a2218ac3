"""What the pinned summary and the announcement say is the incident's latest word."""

from __future__ import annotations

from bot import incidents as core
from bot.config import Policy
from bot.db import Database
from bot.slack import blocks
from bot.slack.limits import iter_texts
from bot.slack.summary import snapshot


def latest(db: Database, policy: Policy, incident_id: int) -> str:
    with db.read() as session:
        snap = snapshot(session, incident_id, policy)
    _, announced = blocks.announcement(policy, snap)
    _, pinned = blocks.incident_summary(policy, snap)
    said = [t for t in iter_texts(announced) if t.startswith("*Latest update*: ")]
    assert len(said) == 1
    assert said[0].removeprefix("*Latest update*: ") in "\n".join(iter_texts(pinned))
    return said[0].removeprefix("*Latest update*: ")


def test_a_resolve_or_reopen_reason_is_the_latest_word_until_the_next_update(
    db: Database, policy: Policy
) -> None:
    """Stakeholders read the announcement: after "resolve Rolled back", it must not still say
    the update from before ("error rate 2%"), nor contradict a reopen."""
    with db.transaction() as session:
        incident = core.declare_incident(session, policy, title="Checkout 500s", reporter="U1")
        incident_id = incident.incident.id or 0
        core.post_status_update(session, policy, incident_id, "error rate 2%", actor="U1")
    assert latest(db, policy, incident_id) == "error rate 2%"
    with db.transaction() as session:
        core.resolve_incident(session, policy, incident_id, actor="U1", text="Rolled back")
    assert latest(db, policy, incident_id) == "Resolved: Rolled back"
    with db.transaction() as session:
        core.close_incident(session, policy, incident_id, actor="U1")  # no reason: kept
    assert latest(db, policy, incident_id) == "Resolved: Rolled back"
    with db.transaction() as session:
        core.reopen_incident(session, policy, incident_id, actor="U2", text="errors are back")
    assert latest(db, policy, incident_id) == "Reopened (Investigating): errors are back"
    with db.transaction() as session:
        core.post_status_update(session, policy, incident_id, "rolling back again", actor="U2")
    assert latest(db, policy, incident_id) == "rolling back again"


def test_a_reopen_without_a_reason_drops_the_resolve_reason(db: Database, policy: Policy) -> None:
    """Reopened from the summary's button (no reason): the summary must not go on saying why
    it was resolved while its status says it is being investigated again."""
    with db.transaction() as session:
        incident = core.declare_incident(session, policy, title="Checkout 500s", reporter="U1")
        incident_id = incident.incident.id or 0
        core.post_status_update(session, policy, incident_id, "error rate 2%", actor="U1")
        core.resolve_incident(session, policy, incident_id, actor="U1", text="Rolled back")
    assert latest(db, policy, incident_id) == "Resolved: Rolled back"
    with db.transaction() as session:
        core.reopen_incident(session, policy, incident_id, actor="U2")
    assert latest(db, policy, incident_id) == "error rate 2%"
