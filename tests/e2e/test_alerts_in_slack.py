"""Alerts reaching Slack: a group's incident gets its channel through the same effects as a
declare, and its pinned summary says how many alerts are firing as the group grows and
resolves; a storm makes a bounded number of Slack calls, not one per alert."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import select

from bot import incidents as core
from bot.alerts.intake import ingest
from bot.alerts.model import AlertMessage
from bot.alerts.policy import AlertsPolicy
from bot.alerts.sources import parse
from bot.clock import utcnow
from bot.config import Settings
from bot.db import Database
from bot.models import Incident
from bot.runtime import Firebreak
from bot.sandbox import FakeSlack, SlackSimulator
from bot.testing.harness import LocalBot
from tests.e2e.conftest import SECRET, RunningBot, texts
from tests.e2e.helpers import answer, declare_private


def group_message(alerts: int, status: str = "firing") -> AlertMessage:
    return parse(
        "alertmanager",
        {
            "version": "4",
            "groupKey": '{}:{alertname="HighLatency"}',
            "status": status,
            "alerts": [
                {"status": status, "labels": {"alertname": "HighLatency", "pod": f"pod-{i}"}}
                for i in range(alerts)
            ],
        },
        now=utcnow(),
    )


def summary(fake: FakeSlack, db: Database) -> str:
    with db.read() as session:
        incident = session.exec(select(Incident)).one()
    return texts(fake.message(incident.slack_channel_id or "", incident.summary_message_ts or ""))


def test_a_storm_is_one_incident_whose_summary_counts_the_alerts(
    fake: FakeSlack, bot: RunningBot, db: Database
) -> None:
    policy = bot.firebreak.policy
    with db.transaction() as session:
        ingest(session, policy, group_message(300))
    bot.settle()
    assert "300 of 300 firing" in summary(fake, db)
    posts = len(fake.calls_to("chat.postMessage"))
    assert posts < 10  # the summary, the announcement, the alert links: not one per alert

    with db.transaction() as session:
        ingest(session, policy, group_message(300, status="resolved"))
    bot.settle()
    assert "all 300 resolved" in summary(fake, db)
    with db.read() as session:
        assert len(session.exec(select(Incident)).all()) == 1


def triage_request(fake: FakeSlack, bot: RunningBot, db: Database) -> tuple[str, Any]:
    """Two alerts under the triage policy: the triage channel and the question posted there."""
    channel = fake.channel_id("incidents")
    triage = bot.firebreak.policy.model_copy(
        update={"alerts": AlertsPolicy(declare="triage", triage_channel=channel)}
    )
    with db.transaction() as session:
        ingest(session, triage, group_message(2))
    bot.settle()
    [request] = [m for m in fake.messages(channel) if "needs triage" in m.text]
    return channel, request


def test_a_triage_decision_edits_the_request_into_its_outcome_without_buttons(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    channel, request = triage_request(fake, bot, db)
    slack.click(channel, request.ts, "alerts:declare", user="ana.garcia")
    bot.settle()
    edited = fake.message(channel, request.ts)
    assert "Declared INC-1 by" in texts(edited)
    assert [b["type"] for b in edited.blocks] == ["section", "context"]  # no buttons left
    assert edits_of(fake, request.ts) == 1
    with db.read() as session:
        assert len(session.exec(select(Incident)).all()) == 1


def edits_of(fake: FakeSlack, ts: str) -> int:
    return sum(call.args.get("ts") == ts for call in fake.calls_to("chat.update", applied=True))


@pytest.fixture
def second_replica(fake: FakeSlack, bot: RunningBot, database_url: str) -> Iterator[RunningBot]:
    """Another replica on the same database, claiming effects as the first does."""
    settings = Settings(
        DATABASE_URL=database_url,
        SLACK_BOT_TOKEN=fake.token,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=fake.api_url,
    )
    database = Database(database_url, pool_size=5)
    firebreak = Firebreak.create(settings, bot.firebreak.policy, database=database)
    running = LocalBot(firebreak, signing_secret=SECRET, worker_id="replica-2").start()
    yield running
    running.stop()
    database.dispose()


def test_a_triage_request_says_its_alerts_resolved_and_fired_again_once_across_replicas(
    fake: FakeSlack,
    bot: RunningBot,
    second_replica: RunningBot,
    slack: SlackSimulator,
    db: Database,
) -> None:
    """Nobody has decided yet when the alerts resolve: the request in the triage channel says
    so, and still offers Declare and Ignore (someone may want to look anyway); when they fire
    again it says so too. Each change is one edit, whichever replica makes it. Before, the
    request kept saying "2 firing" with live buttons after everything had resolved."""
    channel, request = triage_request(fake, bot, db)
    triage = bot.firebreak.policy.model_copy(
        update={"alerts": AlertsPolicy(declare="triage", triage_channel=channel)}
    )
    with db.transaction() as session:
        ingest(session, triage, group_message(2, status="resolved"))
    bot.settle()
    second_replica.settle()
    edited = fake.message(channel, request.ts)
    assert "0 firing: every alert resolved while it waited" in texts(edited)
    assert edited.text.startswith("Alert resolved while waiting for triage:")
    assert [b["type"] for b in edited.blocks] == ["section", "actions"]  # still decidable
    assert edits_of(fake, request.ts) == 1
    with db.transaction() as session:
        ingest(session, triage, group_message(2))
    bot.settle()
    second_replica.settle()
    edited = fake.message(channel, request.ts)
    assert "· 2 firing" in texts(edited) and edited.text.startswith("Alert needs triage:")
    assert edits_of(fake, request.ts) == 2
    slack.click(channel, request.ts, "alerts:declare", user="ana.garcia")
    bot.settle()
    second_replica.settle()
    assert "Declared INC-1 by" in texts(fake.message(channel, request.ts))
    assert edits_of(fake, request.ts) == 3
    requests = [m.ts for m in fake.messages(channel) if "Alert from alertmanager" in texts(m)]
    assert requests == [request.ts]  # edited, never posted again


def test_automatic_mitigation_names_the_tool_and_firing_again_is_posted(
    fake: FakeSlack, bot: RunningBot, db: Database
) -> None:
    policy = bot.firebreak.policy.model_copy(
        update={"alerts": AlertsPolicy(on_all_resolved="mitigate")}
    )
    with db.transaction() as session:
        ingest(session, policy, group_message(1))
    bot.settle()
    with db.transaction() as session:
        ingest(session, policy, group_message(1, status="resolved"))
    bot.settle()
    with db.transaction() as session:
        ingest(session, policy, group_message(1))
    bot.settle()
    with db.read() as session:
        incident = session.exec(select(Incident)).one()
    said = [texts(m) for m in fake.messages(incident.slack_channel_id or "")]
    changed = [t for t in said if "status changed" in t]
    assert changed == [
        ":arrows_counterclockwise: Alertmanager — INC-1 status changed: Triage → Monitoring\n"
        ":arrows_counterclockwise: Alertmanager — INC-1 status changed: Triage → Monitoring"
    ]
    assert not any("<@alerts:" in t for t in said)
    again = [t for t in said if t.startswith("Alerts firing again")]
    assert again == [
        "Alerts firing again: HighLatency (1 of 1 firing)\n"
        ":rotating_light: *Alerts firing again* from alertmanager: HighLatency (1 of 1 firing). "
        "The incident is still Monitoring."
    ]
    assert incident.status == "monitoring"


def asked_to_mitigate(fake: FakeSlack, bot: RunningBot, db: Database) -> tuple[Incident, str, Any]:
    """Two alerts fired and resolved: the incident they opened, its channel, and the
    "All alerts resolved: mitigate?" question posted there."""
    policy = bot.firebreak.policy
    with db.transaction() as session:
        ingest(session, policy, group_message(2))
    bot.settle()
    with db.transaction() as session:
        ingest(session, policy, group_message(2, status="resolved"))
    bot.settle()
    with db.read() as session:
        incident = session.exec(select(Incident)).one()
    channel = incident.slack_channel_id or ""
    [asked] = [m for m in fake.messages(channel) if "All alerts resolved" in texts(m)]
    return incident, channel, asked


def test_the_all_resolved_question_is_answered_when_people_resolve_by_other_means(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    """Every alert resolved, so Firebreak asked "mitigate?"; the commander resolved the
    incident with a command instead. The question's message says so and loses its button
    (which would now be refused): it does not stay open beside a resolved incident."""
    _, channel, asked = asked_to_mitigate(fake, bot, db)
    assert any(b["type"] == "actions" for b in asked.blocks)

    fake.join(channel, "ana.garcia")
    slack.slash_command("resolve rolled back the bad deploy", user="ana.garcia", channel=channel)
    bot.settle()
    answered = fake.message(channel, asked.ts)
    assert "Marked resolved by" in texts(answered)
    assert [b["type"] for b in answered.blocks] == ["section", "context"]  # no button left
    assert edits_of(fake, asked.ts) == 1


def test_mark_mitigated_on_an_old_copy_says_nothing_changed(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    """Ana's screen still shows the "mitigate?" question after Ben mitigated by command: her
    click changes nothing, and she is told so, not that she mitigated it."""
    incident, channel, asked = asked_to_mitigate(fake, bot, db)
    for person in ("ana.garcia", "ben.okafor"):
        fake.join(channel, person)
    old_copy = fake.message_json(channel, asked.ts)
    slack.slash_command("mitigate", user="ben.okafor", channel=channel)
    bot.settle()
    click = slack.click(channel, asked.ts, "alerts:mitigate", user="ana.garcia", as_shown=old_copy)
    bot.settle()
    assert answer(fake, click) == f"{incident.ref} is already Monitoring."
    with db.read() as session:
        events = core.timeline(session, incident.id or 0)
    assert [e.actor_id for e in events if e.kind == "status_changed"] == [
        fake.user_id("ben.okafor")
    ]


def test_alerts_attach_to_a_private_incident_only_for_its_members(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    """A triage message never names a private incident, but a copy of it made before the
    incident was there could be clicked on: only the incident's members may attach to it, and
    finding out who they are (Slack's member list) holds no transaction while Slack answers."""
    incident = declare_private(fake, bot, slack, db)
    channel, request = triage_request(fake, bot, db)
    shown = fake.message_json(channel, request.ts)
    [buttons] = [b for b in shown["blocks"] if b["type"] == "actions"]
    declare_button = buttons["elements"][0]
    attach = {
        **declare_button,
        "action_id": f"alerts:attach:{incident.ref}",
        "value": f"{declare_button['value']}|{incident.ref}",
        "text": {"type": "plain_text", "text": f"Attach to {incident.ref}"},
    }
    attach.pop("style", None)
    buttons["elements"].insert(1, attach)

    refused = slack.click(
        channel, request.ts, attach["action_id"], user="farid.haddad", as_shown=shown
    )
    bot.settle()
    assert f"There is no incident {incident.ref}." in answer(fake, refused)
    attached = slack.click(
        channel, request.ts, attach["action_id"], user="ana.garcia", as_shown=shown
    )
    bot.settle()
    assert f"Attached these alerts to {incident.ref}." in answer(fake, attached)
    with db.read() as session:
        said = [e.text for e in core.timeline(session, incident.id or 0)]
    assert sum(t.startswith("Alerts attached from triage") for t in said) == 1
