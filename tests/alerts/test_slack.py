"""The Slack side of alerts: notices render within Slack's limits, are delivered once their
channel exists, and the triage and mitigate buttons do what they say."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlmodel import col, select

from bot import incidents as core
from bot.alerts.intake import ingest
from bot.alerts.models import AlertGroup, AlertNotice
from bot.alerts.notices import (
    AlertLinks,
    AllResolved,
    Answered,
    Notice,
    TriageRequest,
    answer_triage,
    queue_notice,
)
from bot.alerts.sources import parse
from bot.config import policy_from_dict
from bot.db import Database
from bot.effects import kinds
from bot.effects.models import Effect
from bot.models import Incident
from bot.slack.alerts import RENDERERS, AlertButtons, render
from bot.slack.limits import message_errors
from tests.alerts.conftest import NOW


class Directory:
    def is_workspace_admin(self, user: str) -> bool:
        return False

    def group_members(self, group: str) -> set[str]:
        return set()

    def channel_members(self, channel: str) -> set[str]:
        return set()


class Click:
    def __init__(self) -> None:
        self.acked = 0
        self.responses: list[dict[str, Any]] = []

    def ack(self) -> None:
        self.acked += 1

    def respond(self, **kwargs: Any) -> None:
        self.responses.append(kwargs)


def body(value: str, user: str = "U1") -> dict[str, Any]:
    return {"user": {"id": user}, "actions": [{"value": value, "action_ts": "1.5"}]}


def test_every_notice_renders_within_slacks_limits_and_links_stay_safe() -> None:
    links = [
        {"kind": "dashboard", "url": "https://grafana.example.com/d/1?a=1&b=2"},
        {"kind": "evil", "url": "javascript:alert(1)"},
        {"kind": "pipe", "url": "https://x.example.com/|<!channel>"},
    ]
    notices: list[Notice] = [
        TriageRequest(1, "C1", "grafana", "<b>@\u2060channel</b>" * 50, "SEV2", 3, ["INC-1"]),
        AlertLinks(1, 1, "alertmanager", "KubePodCrashLooping", 3, links, "k/crash", "Crash", True),
        AllResolved(1, 1, "datadog", "Unauthorized access", 2),
    ]
    for notice in notices:
        text, blocks = render(notice)
        assert message_errors(text, blocks) == []
        flat = str(blocks)
        assert "javascript:" not in flat and "<!channel>" not in flat and "<b>" not in flat
    _, blocks = render(notices[1])
    assert "<https://grafana.example.com/d/1?a=1&b=2|dashboard>" in str(blocks)
    assert "Runbook started: *Crash*" in str(blocks)
    suggested = AlertLinks(4, 1, "generic", "Disk", 1, [], "disk", "Disk full", False)
    _, blocks = render(suggested)
    assert blocks[1]["accessory"]["action_id"] == "suggest:start:0"
    assert json.loads(blocks[1]["accessory"]["value"]) == {"incident": 4, "runbook": "disk"}


def test_alerts_declared_after_they_resolved_are_said_to_have_resolved_not_zero_firing() -> None:
    """In the message and in its notification (the top-level text) alike."""
    text, blocks = render(
        AlertLinks(1, 1, "pagerduty", "Checkout down", 0, [], None, None, False, 2)
    )
    assert blocks[0]["text"]["text"] == "*2 alert(s) resolved from pagerduty:* Checkout down"
    assert text == "Alerts resolved: Checkout down"
    text, blocks = render(
        AlertLinks(1, 1, "pagerduty", "Checkout down", 3, [], None, None, False, 1)
    )
    assert blocks[0]["text"]["text"].startswith("*3 alert(s) firing from pagerduty:*")
    assert text == "Alerts firing: Checkout down"


def test_the_all_resolved_question_says_what_the_sender_left_out() -> None:
    _, blocks = render(AllResolved(1, 1, "alertmanager", "DiskFull", 2))
    assert blocks[0]["text"]["text"] == (
        "*All alerts resolved* (2 from alertmanager: DiskFull). Mitigate the incident?"
    )
    _, blocks = render(AllResolved(1, 1, "alertmanager", "DiskFull", 2, unlisted=1))
    assert blocks[0]["text"]["text"] == (
        "*All alerts resolved* (2 from alertmanager: DiskFull). The sender left 1 more out of"
        " its message: any that still fires is in its next one. Mitigate the incident?"
    )


def posts(db: Database) -> list[Effect]:
    with db.read() as session:
        return list(
            session.exec(
                select(Effect).where(Effect.kind == "message.post").order_by(col(Effect.id))
            ).all()
        )


def test_notices_become_post_effects_once_and_render_through_the_renderers(db: Database) -> None:
    policy = policy_from_dict({"alerts": {"declare": "triage", "triage_channel": "C0TRIAGE"}})
    message = parse("generic", {"title": "db", "dedupe_key": "db"}, now=NOW)
    for _ in range(2):  # a retry queues nothing more
        with db.transaction() as session:
            outcome = ingest(session, policy, message)
    [triage] = posts(db)
    # In its group's lane: the edit that answers it runs after it.
    assert (triage.data["to"], triage.incident_id, triage.lane) == (
        "C0TRIAGE",
        None,
        f"alerts:group:{outcome.group_id}",
    )
    notice = triage.data["notice"]
    assert notice["type"] == "alerts.triage"
    text, blocks = RENDERERS[notice["type"]](notice) or ("", [])
    assert text == "Alert needs triage: db"
    assert [a["action_id"] for a in blocks[1]["elements"]] == ["alerts:declare", "alerts:ignore"]

    click = Click()
    AlertButtons(db, policy, Directory()).declare(
        click.ack, body(str(outcome.group_id)), click.respond
    )
    assert click.acked == 1
    assert click.responses == [
        {
            "text": "Declared INC-1 for these alerts.",
            "response_type": "ephemeral",
            "replace_original": False,
        }
    ]
    links = posts(db)[1]
    assert (links.data["to"], links.incident_id, links.lane) == ("incident", 1, "incident:1")
    assert links.data["notice"]["type"] == "alerts.links"
    with db.read() as session:
        create = session.exec(select(Effect).where(Effect.kind == "channel.create")).one()
        assert create.lane == "incident:1" and create.id is not None and links.id is not None
        assert create.id < links.id  # the channel first, in the incident's lane
        assert len(session.exec(select(AlertNotice)).all()) == 2
    assert RENDERERS["alerts.links"](links.data["notice"]) is not None


def test_attaching_to_a_resolved_incident_says_it_is_resolved(db: Database) -> None:
    """Before, the clicker read only "Attached these alerts to INC-1.", as if the incident were
    being worked on; the channel was told alerts fire again, the clicker was not."""
    policy = policy_from_dict({"alerts": {"declare": "triage", "triage_channel": "C0TRIAGE"}})
    with db.transaction() as session:
        incident = core.declare_incident(session, policy, title="Checkout down", reporter="U9")
        core.resolve_incident(session, policy, incident.incident.id or 0, actor="U9")
        waiting = ingest(
            session, policy, parse("generic", {"title": "a", "dedupe_key": "a"}, now=NOW)
        )
    click = Click()
    AlertButtons(db, policy, Directory()).attach(
        click.ack, body(f"{waiting.group_id}|INC-1"), click.respond
    )
    assert [r["text"] for r in click.responses] == [
        "Attached these alerts to INC-1, which is resolved: its channel is told they fire "
        "again; reopen it if the impact is back (`/incident INC-1 reopen`)."
    ]


def test_attach_ignore_and_mitigate_buttons(db: Database) -> None:
    policy = policy_from_dict({"alerts": {"declare": "triage", "triage_channel": "C0TRIAGE"}})
    with db.transaction() as session:
        core.declare_incident(session, policy, title="Checkout down", reporter="U9")
        first = ingest(
            session, policy, parse("generic", {"title": "a", "dedupe_key": "a"}, now=NOW)
        )
        second = ingest(
            session, policy, parse("generic", {"title": "b", "dedupe_key": "b"}, now=NOW)
        )
    with db.read() as session:
        triage = [n.payload for n in session.exec(select(AlertNotice)).all()]
        assert [t["open_incidents"] for t in triage] == [["INC-1"], ["INC-1"]]
    buttons = AlertButtons(db, policy, Directory())
    click = Click()
    buttons.attach(click.ack, body(f"{first.group_id}|INC-1"), click.respond)
    buttons.ignore(click.ack, body(str(second.group_id)), click.respond)
    buttons.attach(click.ack, body(f"{second.group_id}|INC-99"), click.respond)
    assert [r["text"] for r in click.responses] == [
        "Attached these alerts to INC-1.",
        "Ignored: these alerts open nothing until they fire again later.",
        "There is no incident INC-99.",
    ]
    buttons.mitigate(click.ack, body("1"), click.respond)
    buttons.mitigate(click.ack, body("1"), click.respond)  # a double click changes nothing more
    with db.read() as session:
        incident = session.exec(select(Incident)).one()
        assert incident.mitigated_at is not None
        kinds = [e.kind for e in core.timeline(session, 1)]
        assert kinds.count("status_changed") == 1
        groups = session.exec(select(AlertGroup)).all()
        assert sorted(g.disposition for g in groups) == ["ignored", "incident"]


def test_a_triage_question_queued_under_a_long_key_is_still_edited_when_answered(
    db: Database,
) -> None:
    """The answer is found from the key the question's row stores (hashed when long), and it
    edits the very message that asked."""
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    with db.transaction() as session:
        group = AlertGroup(
            source="generic", group_key="g", title="Disk full", first_seen_at=now, last_seen_at=now
        )
        session.add(group)
        session.flush()
        assert group.id is not None
        asked = TriageRequest(group.id, "C0TRIAGE", "generic", "Disk full", "SEV2", 1)
        queue_notice(session, asked, dedupe_key="triage:" + "k" * 300, now=now)
        answer = Answered(group.id, "generic", "Disk full", "Ignored", actor="U1")
        answer_triage(session, answer, now=now)
    with db.read() as session:
        rows = {e.kind: e for e in session.exec(select(Effect)).all()}
    assert rows[kinds.UPDATE].data["post"] == rows[kinds.POST].key


def test_a_stale_attach_button_of_a_closed_incident_is_refused_and_declare_still_works(
    db: Database,
) -> None:
    """The clicker is told the incident is closed and to declare instead; the triage message
    keeps its buttons (nothing was decided), so Declare opens a new incident."""
    policy = policy_from_dict({"alerts": {"declare": "triage", "triage_channel": "C0TRIAGE"}})
    with db.transaction() as session:
        core.declare_incident(session, policy, title="Checkout down", reporter="U9")
        core.resolve_incident(session, policy, 1, actor="U9")
        core.close_incident(session, policy, 1, actor="U9")
        waiting = ingest(
            session, policy, parse("generic", {"title": "a", "dedupe_key": "a"}, now=NOW)
        )
    buttons = AlertButtons(db, policy, Directory())
    click = Click()
    buttons.attach(click.ack, body(f"{waiting.group_id}|INC-1"), click.respond)
    with db.read() as session:
        assert [n.state for n in session.exec(select(AlertNotice)).all()] == ["queued"]
    buttons.declare(click.ack, body(str(waiting.group_id)), click.respond)
    assert [r["text"] for r in click.responses] == [
        "INC-1 is closed: a closed incident is never reused. "
        "Declare a new incident for these alerts instead.",
        "Declared INC-2 for these alerts.",
    ]


def test_the_ignore_button_carries_the_count_its_request_shows(db: Database) -> None:
    """What a person saw travels with the click: an Ignore on a request that said "0 firing",
    clicked after the alerts fired again, ignores nothing and says why."""
    policy = policy_from_dict({"alerts": {"declare": "triage", "triage_channel": "C0TRIAGE"}})
    firing = parse("generic", {"title": "db", "dedupe_key": "db"}, now=NOW)
    resolved = parse("generic", {"title": "db", "dedupe_key": "db", "status": "resolved"}, now=NOW)
    with db.transaction() as session:
        outcome = ingest(session, policy, firing)
    with db.transaction() as session:
        ingest(session, policy, resolved)
    with db.read() as session:
        [request] = [n.payload for n in session.exec(select(AlertNotice)).all()]
    _, shown = RENDERERS["alerts.triage"]({**request, "type": "alerts.triage"}) or ("", [])
    [ignore] = [a for a in shown[-1]["elements"] if a["action_id"] == "alerts:ignore"]
    assert ignore["value"] == f"{outcome.group_id}|0"
    with db.transaction() as session:
        ingest(session, policy, firing)  # fired again before the click arrived
    click = Click()
    AlertButtons(db, policy, Directory()).ignore(click.ack, body(ignore["value"]), click.respond)
    assert click.responses[-1]["text"].startswith(
        "These alerts fired again since your copy of the request (1 firing now, not 0)"
    )
    with db.read() as session:
        assert session.exec(select(AlertGroup)).one().disposition == "triage"
