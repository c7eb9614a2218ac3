"""Escalation when nobody acknowledges: two tiers, mentions, the escalation channel."""

from __future__ import annotations

from datetime import timedelta

from freezegun.api import FrozenDateTimeFactory

from bot import incidents as core
from bot import postmortem, reminders
from bot.clock import utcnow
from bot.config import Policy
from bot.db import Database
from bot.models import EventKind
from bot.reminders.targets import resolve_mentions

from .conftest import T0, FakeNotifier, at, declare, events_of, make_worker, reminder

SIREN = ":rotating_light:"


def test_an_unacknowledged_incident_escalates_in_two_tiers(
    db: Database, team_policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    incident_id = declare(db, team_policy, severity="SEV1", channel="C0INC1")
    worker = make_worker(db, team_policy, notifier)

    at(clock, timedelta(minutes=4, seconds=59))
    worker.tick()
    assert notifier.containing(SIREN) == []

    at(clock, timedelta(minutes=5))
    worker.tick()
    first = notifier.containing(SIREN)
    assert [p.channel for p in first] == ["C0INC1", "C0ESCALATE"]
    for post in first:
        assert "<!subteam^S0SRE>" in post.body  # the @sre-oncall handle, resolved
        assert "<@U0LEAD>" in post.body
        assert "<!subteam^S0MANAGERS>" not in post.body
    assert "<#C0INC1>" in first[1].body  # the escalation channel is told where to go

    at(clock, timedelta(minutes=14, seconds=59))
    worker.tick()
    assert len(notifier.containing(SIREN)) == 2

    at(clock, timedelta(minutes=15))
    worker.tick()
    second = notifier.containing(SIREN)[2:]
    assert [p.channel for p in second] == ["C0INC1", "C0ESCALATE"]
    assert all("<!subteam^S0MANAGERS>" in p.body and "still" in p.body for p in second)

    at(clock, timedelta(hours=3))
    worker.tick()
    assert len(notifier.containing(SIREN)) == 4
    assert reminder(db, reminders.ack_key(incident_id)).state == "sent"
    escalated = events_of(db, incident_id, EventKind.ESCALATED)
    assert [e.data["tier"] for e in escalated] == [1, 2]
    assert "@sre-oncall" in escalated[0].text


def test_acknowledging_in_time_means_no_escalation(
    db: Database, team_policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    incident_id = declare(db, team_policy, severity="SEV1")
    worker = make_worker(db, team_policy, notifier)
    at(clock, timedelta(minutes=4))
    with db.transaction() as session:
        core.acknowledge_incident(session, team_policy, incident_id, actor="U0ONCALL")
    at(clock, timedelta(hours=1))
    worker.tick()
    assert notifier.containing(SIREN) == []
    assert events_of(db, incident_id, EventKind.ESCALATED) == []


def test_a_commander_named_after_claiming_stops_the_escalation(
    db: Database, team_policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    """The condition is checked again after the claim: taking command at the last second wins."""
    incident_id = declare(db, team_policy, severity="SEV1")
    worker = make_worker(db, team_policy, notifier)
    at(clock, timedelta(minutes=5))
    with db.transaction() as session:
        [claimed] = [
            c
            for c in reminders.claim_due_reminders(session, worker.worker_id, now=utcnow())
            if c.kind == "ack"
        ]
    with db.transaction() as session:
        core.assign_role(session, team_policy, incident_id, "commander", "U0IC", actor="U0IC")
    assert worker.process(claimed) == "lost"
    assert notifier.posts == []
    assert reminder(db, reminders.ack_key(incident_id)).state == "cancelled"


def test_a_private_incident_is_not_described_in_the_escalation_channel(
    db: Database, team_policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    declare(db, team_policy, severity="SEV1", private=True, title="Payroll data exposed")
    worker = make_worker(db, team_policy, notifier)
    at(clock, timedelta(minutes=5))
    worker.tick()
    in_channel, in_escalation = notifier.containing(SIREN)
    assert "Payroll data exposed" in in_channel.body
    assert "Payroll data exposed" not in in_escalation.body
    assert "INC-1" in in_escalation.body and "private" in in_escalation.body
    assert "<#C0INC1>" not in in_escalation.body


def test_an_unknown_handle_at_send_time_still_escalates(
    db: Database, team_policy: Policy, clock: FrozenDateTimeFactory
) -> None:
    notifier = FakeNotifier(groups={})  # the group was deleted after start-up
    declare(db, team_policy, severity="SEV1")
    at(clock, timedelta(minutes=5))
    make_worker(db, team_policy, notifier).tick()
    [post, _] = notifier.containing(SIREN)
    assert "@sre-oncall" in post.body and "<@U0LEAD>" in post.body


def test_escalation_without_targets_still_warns_the_incident_channel(
    db: Database, policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    incident_id = declare(db, policy, severity="SEV2")
    at(clock, timedelta(minutes=10))
    make_worker(db, policy, notifier).tick()
    [post] = notifier.containing(SIREN)
    assert post.channel == "C0INC1"
    assert "not been acknowledged" in post.body
    assert len(events_of(db, incident_id, EventKind.ESCALATED)) == 1


def test_mentions_are_rendered_for_each_kind_of_target() -> None:
    groups = {"sre-oncall": "S0SRE"}
    assert resolve_mentions(["U0A", "W0B", "S0C", "@SRE-Oncall", "@gone"], groups) == [
        "<@U0A>",
        "<@W0B>",
        "<!subteam^S0C>",
        "<!subteam^S0SRE>",
        "@gone",
    ]


def test_a_claimed_escalation_follows_a_severity_change_before_sending(
    db: Database, team_policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    incident_id = declare(db, team_policy, severity="SEV1")  # escalate after 5m
    worker = make_worker(db, team_policy, notifier)
    at(clock, timedelta(minutes=5))
    with db.transaction() as session:
        [claimed] = [
            c
            for c in reminders.claim_due_reminders(session, worker.worker_id, now=utcnow())
            if c.kind == "ack"
        ]
    with db.transaction() as session:  # SEV3 gives 30m to acknowledge
        core.change_severity(session, team_policy, incident_id, "SEV3", actor="U0REPORTER")
    assert worker.process(claimed) == "settled"
    assert notifier.containing(SIREN) == []
    assert reminder(db, reminders.ack_key(incident_id)).due_at == T0 + timedelta(minutes=30)
    at(clock, timedelta(minutes=30))
    worker.tick()
    assert len(notifier.containing(SIREN)) == 2


def test_the_second_tier_follows_a_severity_change_made_while_escalating(
    db: Database, team_policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    incident_id = declare(db, team_policy, severity="SEV1")  # second tier 10m after the first

    def lower_severity() -> None:
        notifier.on_post = None
        with db.transaction() as session:  # SEV2: second tier 15m after the first
            core.change_severity(session, team_policy, incident_id, "SEV2", actor="U0REPORTER")

    notifier.on_post = lower_severity
    worker = make_worker(db, team_policy, notifier)
    at(clock, timedelta(minutes=5))
    worker.tick()
    assert len(notifier.containing(SIREN)) == 2  # incident channel and escalation channel
    row = reminder(db, reminders.ack_key(incident_id))
    assert (row.state, row.data["tier"]) == ("pending", 2)
    assert row.due_at == T0 + timedelta(minutes=20)
    at(clock, timedelta(minutes=19))
    worker.tick()
    assert len(notifier.containing(SIREN)) == 2
    at(clock, timedelta(minutes=20))
    worker.tick()
    assert len(notifier.containing(SIREN)) == 4
    assert len(events_of(db, incident_id, EventKind.ESCALATED)) == 2


def test_an_incident_without_a_channel_is_escalated_in_the_escalation_channel(
    db: Database, team_policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    """The channel could not be made (set-up failing): nobody acknowledging is all the more
    urgent. The escalation goes to the escalation channel at its time, saying how to act
    without the channel; it does not wait for a channel that may never come."""
    incident_id = declare(db, team_policy, severity="SEV1", channel=None)
    worker = make_worker(db, team_policy, notifier)
    at(clock, timedelta(minutes=5))
    worker.tick()
    [first] = notifier.containing(SIREN)
    assert first.channel == "C0ESCALATE"
    assert "<!subteam^S0SRE>" in first.body and "<@U0LEAD>" in first.body
    assert "/incident INC-1 ack" in first.body and "/incident INC-1 retry" in first.body
    [escalated] = events_of(db, incident_id, EventKind.ESCALATED)
    assert "the incident has no channel yet" in escalated.text
    at(clock, timedelta(minutes=15))
    worker.tick()
    assert [p.channel for p in notifier.containing(SIREN)] == ["C0ESCALATE", "C0ESCALATE"]


def test_a_mitigated_incident_is_not_escalated_for_want_of_an_acknowledgement(
    db: Database, team_policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    """Someone moved it to the mitigated status before anyone acknowledged: it is being worked
    on, so nobody is paged to come and acknowledge it (nor the second tier)."""
    incident_id = declare(db, team_policy, severity="SEV2")
    worker = make_worker(db, team_policy, notifier)
    at(clock, timedelta(minutes=3))
    with db.transaction() as session:
        core.mitigate_incident(session, team_policy, incident_id, actor="U0X")
    at(clock, timedelta(hours=2))
    worker.tick()
    assert notifier.containing(SIREN) == []
    assert events_of(db, incident_id, EventKind.ESCALATED) == []


def test_an_escalation_queued_while_slack_is_down_is_withdrawn_by_the_acknowledgement(
    db: Database, team_policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    """Slack was failing when the escalation fell due, so it waited to be retried; meanwhile
    someone acknowledged. When Slack comes back, nobody is paged for an incident that has an
    owner: the message stopped being true before it went out."""
    incident_id = declare(db, team_policy, severity="SEV1", channel="C0INC1")
    worker = make_worker(db, team_policy, notifier)
    notifier.failing = True
    at(clock, timedelta(minutes=5))
    worker.tick()
    assert notifier.containing(SIREN) == []
    with db.transaction() as session:
        core.acknowledge_incident(session, team_policy, incident_id, actor="U0LEAD")
    notifier.failing = False
    at(clock, timedelta(minutes=8))
    worker.tick()
    assert notifier.containing(SIREN) == []
    # On the record it escalated (the decision was taken), and the record says the messages
    # were withdrawn before they reached Slack, once: nobody reading it believes they were paged.
    [escalated] = events_of(db, incident_id, EventKind.ESCALATED)
    assert escalated.data["tier"] == 1
    [withdrawn] = events_of(db, incident_id, EventKind.REMINDER_WITHDRAWN)
    assert withdrawn.text == (
        "Not posted (withdrawn before it reached Slack: no longer true) in <#C0ESCALATE>, "
        f"<#C0INC1>: {escalated.text}"
    )
    assert withdrawn.data["event"] == escalated.id
    with db.read() as session:
        draft = postmortem.render_postmortem(
            session, team_policy, incident_id, version=1, actor="U0LEAD"
        ).markdown
    assert "Not posted (withdrawn before it reached Slack: no longer true)" in draft


def escalation_queued_while_slack_is_down(
    db: Database, policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> int:
    """A SEV1 nobody acknowledged, its tier-1 escalation queued at +5 min, Slack failing."""
    incident_id = declare(db, policy, severity="SEV1", channel="C0INC1")
    notifier.failing = True
    at(clock, timedelta(minutes=5))
    make_worker(db, policy, notifier).tick()
    assert notifier.containing(SIREN) == []
    return incident_id


def test_an_escalation_queued_while_slack_is_down_is_withdrawn_by_the_mitigation(
    db: Database, team_policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    """Mitigated before Slack came back: it is being worked on, so nobody is paged to come
    and acknowledge it (the on-call group and the lead were paged when Slack recovered)."""
    incident_id = escalation_queued_while_slack_is_down(db, team_policy, notifier, clock)
    with db.transaction() as session:
        core.mitigate_incident(session, team_policy, incident_id, actor="U0DEV")
    notifier.failing = False
    at(clock, timedelta(minutes=20))
    make_worker(db, team_policy, notifier).tick()
    assert notifier.containing(SIREN) == []


def test_an_escalation_queued_while_slack_is_down_is_withdrawn_by_a_severity_without_a_deadline(
    db: Database, team_policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    """A false alarm lowered to SEV4 (no acknowledgement deadline) before Slack came back:
    nobody is paged for it."""
    incident_id = escalation_queued_while_slack_is_down(db, team_policy, notifier, clock)
    with db.transaction() as session:
        core.change_severity(session, team_policy, incident_id, "SEV4", actor="U0DEV")
    notifier.failing = False
    at(clock, timedelta(minutes=20))
    make_worker(db, team_policy, notifier).tick()
    assert notifier.containing(SIREN) == []
    assert reminder(db, reminders.ack_key(incident_id)).state == "cancelled"
    assert len(events_of(db, incident_id, EventKind.REMINDER_WITHDRAWN)) == 1


def test_an_update_nudge_queued_while_slack_is_down_is_withdrawn_by_the_resolve(
    db: Database, team_policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    incident_id = declare(db, team_policy, severity="SEV1", channel="C0INC1")
    with db.transaction() as session:
        core.acknowledge_incident(session, team_policy, incident_id, actor="U0LEAD")
    worker = make_worker(db, team_policy, notifier)
    notifier.failing = True
    at(clock, timedelta(hours=2))
    worker.tick()
    assert notifier.posts == []
    with db.transaction() as session:
        core.resolve_incident(session, team_policy, incident_id, actor="U0LEAD")
    notifier.failing = False
    at(clock, timedelta(hours=2, minutes=5))
    worker.tick()
    assert [p.body for p in notifier.posts if "update" in p.body.lower()] == []
    # The record says the nudge never went out; the postmortem, which leaves Firebreak's
    # nudges out, leaves that out too, while it shows a withdrawn escalation.
    [withdrawn] = events_of(db, incident_id, EventKind.REMINDER_WITHDRAWN)
    assert withdrawn.text.startswith("Not posted (withdrawn before it reached Slack")
    with db.read() as session:
        draft = postmortem.render_postmortem(
            session, team_policy, incident_id, version=1, actor="U0LEAD"
        ).markdown
    assert "Not posted" not in draft


def test_the_impact_coming_back_resumes_the_escalation_a_mitigation_stopped(
    db: Database, team_policy: Policy, notifier: FakeNotifier, clock: FrozenDateTimeFactory
) -> None:
    """Nobody acknowledged; someone moved it to Monitoring, which stops escalating (it is being
    worked on). The errors come back and it goes to Investigating: still nobody owns it, so
    the escalation resumes at the next tick instead of never."""
    incident_id = declare(db, team_policy, severity="SEV1", channel="C0INC1")
    worker = make_worker(db, team_policy, notifier)
    at(clock, timedelta(minutes=2))
    with db.transaction() as session:
        core.change_status(session, team_policy, incident_id, "monitoring", actor="U0DEV")
    at(clock, timedelta(minutes=6))
    worker.tick()
    assert notifier.containing(SIREN) == []
    at(clock, timedelta(minutes=7))
    with db.transaction() as session:
        core.change_status(session, team_policy, incident_id, "investigating", actor="U0DEV")
    worker.tick()
    assert [p.channel for p in notifier.containing(SIREN)] == ["C0INC1", "C0ESCALATE"]
