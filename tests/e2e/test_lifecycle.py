"""The whole life of an incident driven from Slack, and the promises around it: the summary is
edited in place, retries and double clicks change nothing twice, captures are kept once."""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from freezegun import freeze_time
from sqlmodel import col, select

from bot import incidents as core
from bot.clock import utcnow
from bot.db import Database
from bot.effects import kinds as kinds_of_effects
from bot.effects.models import Effect
from bot.effects.store import prune
from bot.models import EventKind, Incident, Postmortem, TimelineEvent
from bot.sandbox import FakeSlack, SlackSimulator
from bot.slack import blocks
from tests.e2e.conftest import RunningBot, texts
from tests.e2e.helpers import answer, ask, declare, declare_private, kinds


def summary_text(fake: FakeSlack, incident: Incident) -> str:
    return texts(fake.message(incident.slack_channel_id or "", incident.summary_message_ts or ""))


def test_an_incident_from_declaration_to_postmortem(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel, ts = incident.slack_channel_id or "", incident.summary_message_ts or ""
    ana, ben = fake.user_id("ana.garcia"), fake.user_id("ben.okafor")
    fake.join(channel, ben)

    slack.click(channel, ts, blocks.ACK_IC, user="ana.garcia")
    bot.settle()
    assert f"*Commander*\n<@{ana}>" in summary_text(fake, incident)

    slack.slash_command("sev 1", user="ben.okafor", channel=channel)
    slack.slash_command(f"role comms <@{ben}|ben.okafor>", user="ana.garcia", channel=channel)
    slack.slash_command(
        "update Rolled back deploy 4512; error rate falling", user="ana.garcia", channel=channel
    )
    slack.slash_command(
        "note payments-db CPU at 95% since 02:41", user="ben.okafor", channel=channel
    )
    bot.settle()
    text = summary_text(fake, incident)
    assert "SEV1" in text and f"Comms: <@{ben}>" in text and "Rolled back deploy 4512" in text

    said, _ = slack.say(
        channel,
        "ben.okafor",
        f"Found it: <https://grafana/d/1|pool exhausted> after <@{ana}>'s deploy",
    )
    slack.react(channel, said, user="ana.garcia", reaction="pushpin")
    bot.settle()

    slack.click(channel, ts, blocks.STATUS, user="ana.garcia", value="monitoring")
    bot.settle()
    slack.click(channel, ts, blocks.RESOLVE, user="ana.garcia")
    bot.settle()
    slack.click(channel, ts, blocks.CLOSE, user="ana.garcia")
    bot.settle()

    with db.transaction() as session:
        stored = core.get_incident(session, incident.id or 0)
        drafts = session.exec(select(Postmortem)).all()
        events = core.timeline(session, incident.id or 0)
    assert stored.status == "closed"
    assert stored.resolved_at and stored.mitigated_at and stored.acknowledged_at
    [draft] = drafts
    assert draft.slack_file_id is not None
    [uploaded] = fake.files()
    assert uploaded.channels == [channel]
    assert b"Checkout returns 500s" in (uploaded.content or b"")
    assert b"pool exhausted" in (uploaded.content or b"")
    # Responders are people: Firebreak, which made the channel, is not one of them.
    responders = draft.markdown.split("## Responders and roles", 1)[1].split("\n## ", 1)[0]
    assert "| @Ana" in responders and "Firebreak" not in responders
    with db.read() as session:
        [created] = [
            e for e in core.timeline(session, incident.id or 0) if e.kind == "channel_created"
        ]
    assert created.actor_id is None  # Firebreak's own entry, as all of them
    captured = [e for e in events if e.kind == EventKind.MESSAGE]
    assert len(captured) == 1 and captured[0].actor_id == ben and captured[0].source_url
    assert [e.kind for e in events].count(EventKind.STATUS_CHANGED) == 3

    # the summary was posted once and edited in place ever since
    posts = [
        c
        for c in fake.calls_to("chat.postMessage")
        if c.args.get("channel") == channel
        and "blocks" in c.args
        and "INC-1: Checkout" in str(c.args["blocks"])
    ]
    assert len(posts) == 1
    assert len([c for c in fake.calls_to("chat.update") if c.args.get("ts") == ts]) >= 6
    assert "Closed" in summary_text(fake, incident)
    announcement = fake.message(fake.channel_id("incidents"), stored.announcement_ts or "")
    assert "Closed" in texts(announcement)
    assert "Reopen" in str(fake.message(channel, ts).blocks)


def test_retried_and_duplicated_events_capture_once(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    said, _ = slack.say(channel, "ana.garcia", "restarting the consumers now")
    first = slack.react(channel, said, user="ana.garcia", reaction="pushpin")
    slack.retry(first, reason="http_timeout")
    slack.retry(first, reason="http_timeout")
    fake.join(channel, fake.user_id("ben.okafor"))
    slack.react(channel, said, user="ben.okafor", reaction="pushpin")
    bot.settle()
    assert kinds(db, incident).count(EventKind.MESSAGE) == 1

    # one of two reactions removed: still captured; both removed: withdrawn
    slack.unreact(channel, said, user="ben.okafor", reaction="pushpin")
    bot.settle()
    assert kinds(db, incident).count(EventKind.MESSAGE) == 1
    slack.unreact(channel, said, user="ana.garcia", reaction="pushpin")
    bot.settle()
    assert kinds(db, incident).count(EventKind.MESSAGE) == 0


def test_removing_a_pin_leaves_a_capture_made_with_the_shortcut(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    said, _ = slack.say(channel, "ana.garcia", "root cause: the pool size was halved")
    slack.message_shortcut("add_to_timeline", channel, said, user="ana.garcia")
    fake.join(channel, fake.user_id("ben.okafor"))
    slack.react(channel, said, user="ben.okafor", reaction="pushpin")
    slack.unreact(channel, said, user="ben.okafor", reaction="pushpin")
    bot.settle()
    assert kinds(db, incident).count(EventKind.MESSAGE) == 1
    assert EventKind.RETRACTION not in kinds(db, incident)


def test_firebreaks_own_messages_are_not_captured_twice_by_pin_or_shortcut(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    """People pin the bot's status updates and its summary. What they say is on the timeline
    already, under who said it: captured, it would be there twice, with Firebreak counted a
    responder in the postmortem. Refused, and said to the person."""
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    slack.slash_command("update rolled back deploy 4512", user="ana.garcia", channel=channel)
    bot.settle()
    [update] = [
        m
        for m in fake.messages(channel)
        if "rolled back deploy 4512" in texts(m) and m.ts != incident.summary_message_ts
    ]
    before = kinds(db, incident)
    slack.react(channel, update.ts, user="ana.garcia", reaction="pushpin")
    slack.react(channel, incident.summary_message_ts or "", user="ana.garcia", reaction="pushpin")
    bot.settle()
    slack.message_shortcut("add_to_timeline", channel, update.ts, user="ana.garcia")
    bot.settle()
    assert kinds(db, incident) == before  # nothing captured
    warned = [
        texts(e) for e in fake.ephemerals(user=fake.user_id("ana.garcia")) if "own" in texts(e)
    ]
    own = "That message is Firebreak's own: what it says is on the timeline already."
    pinned = f":warning: Firebreak could not add that message to the incident timeline: {own}"
    assert warned[:2] == [pinned, pinned]
    assert len(warned) == 3 and warned[2].endswith(own)  # the shortcut's answer


def test_the_shortcut_on_a_pinned_message_says_the_pin_can_take_it_off(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    said, _ = slack.say(channel, "ana.garcia", "rolled back the pool change")
    slack.react(channel, said, user="ana.garcia", reaction="pushpin")
    bot.settle()
    reply = slack.message_shortcut("add_to_timeline", channel, said, user="ben.okafor")
    bot.settle()
    assert answer(fake, reply) == (
        f"That message is already on {incident.ref}'s timeline, put there with :pushpin:: "
        "it comes off if the last :pushpin: on it is removed."
    )


def test_a_pin_redelivered_after_its_removal_captures_nothing(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    # The pin's first delivery failed; Slack redelivers it after the removal was processed.
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    said = fake.user_says(channel, "ana.garcia", "wrong message, pinned by mistake")
    fake.user_reacts(channel, said, "ana.garcia", "pushpin")
    added = slack.reaction_added_event(channel, said, user="ana.garcia", reaction="pushpin")
    fake.user_unreacts(channel, said, "ana.garcia", "pushpin")
    removed = slack.reaction_removed_event(channel, said, user="ana.garcia", reaction="pushpin")

    assert slack.event(removed, event_id="Ev0REMOVED01").status == 200
    bot.settle()
    redelivered = slack.event(
        added, event_id="Ev0ADDED0001", retry_num=1, retry_reason="http_timeout"
    )
    bot.settle()

    assert redelivered.status == 200
    assert kinds(db, incident).count(EventKind.MESSAGE) == 0

    # Pinned again, for real this time: captured.
    slack.react(channel, said, user="ana.garcia", reaction="pushpin")
    bot.settle()
    assert kinds(db, incident).count(EventKind.MESSAGE) == 1


def test_other_reactions_and_other_channels_are_ignored(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    said, _ = slack.say(incident.slack_channel_id or "", "ana.garcia", "lunch?")
    slack.react(incident.slack_channel_id or "", said, user="ana.garcia", reaction="eyes")
    elsewhere, _ = slack.say("incidents", "ana.garcia", "unrelated")
    slack.react("incidents", elsewhere, user="ana.garcia", reaction="pushpin")
    bot.settle()
    assert EventKind.MESSAGE not in kinds(db, incident)


def test_double_clicks_and_concurrent_clicks_resolve_once(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel, ts = incident.slack_channel_id or "", incident.summary_message_ts or ""
    fake.join(channel, fake.user_id("ben.okafor"))
    with ThreadPoolExecutor(4) as pool:
        replies = list(
            pool.map(
                lambda user: slack.click(channel, ts, blocks.RESOLVE, user=user),
                ["ana.garcia", "ben.okafor", "ana.garcia", "ben.okafor"],
            )
        )
    bot.settle()
    assert all(r.status == 200 for r in replies)
    assert kinds(db, incident).count(EventKind.STATUS_CHANGED) == 1
    # Each click was recorded before it was acknowledged, without the rendered message it was
    # clicked on (the pinned summary's blocks: most of the payload, never read back).
    with db.read() as session:
        recorded = session.exec(
            select(Effect).where(col(Effect.kind) == kinds_of_effects.SLACK_REQUEST)
        ).all()
    clicks = [e.data["body"] for e in recorded if e.data["kind"] == "action"]
    assert len(clicks) == 4
    assert all(c["message"]["ts"] == ts and "blocks" not in c["message"] for c in clicks)


def test_message_shortcut_from_another_channel_asks_which_incident(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    said, _ = slack.say("incidents", "ana.garcia", "Customer reports from EU: card declined")
    slack.message_shortcut("add_to_timeline", "incidents", said, user="ana.garcia")
    bot.settle()
    [view] = fake.open_views("ana.garcia")
    slack.submit_view(view.id, {"incident": str(incident.id)}, user="ana.garcia")
    bot.settle()
    with db.transaction() as session:
        [event] = [
            e for e in core.timeline(session, incident.id or 0) if e.kind == EventKind.MESSAGE
        ]
    assert event.text == "Customer reports from EU: card declined"
    # and from inside the incident channel it is captured at once
    said, _ = slack.say(incident.slack_channel_id or "", "ana.garcia", "DNS TTL is 300s")
    slack.message_shortcut(
        "add_to_timeline", incident.slack_channel_id or "", said, user="ana.garcia"
    )
    bot.settle()
    assert kinds(db, incident).count(EventKind.MESSAGE) == 2


def test_timeline_rows_are_never_duplicated_by_a_busy_channel(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    stamps = [slack.say(channel, "ana.garcia", f"observation {i}")[0] for i in range(10)]
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda ts: slack.react(channel, ts, user="ana.garcia", reaction="pushpin"), stamps
            )
        )
    bot.settle()
    with db.transaction() as session:
        rows = session.exec(
            select(TimelineEvent).where(TimelineEvent.kind == EventKind.MESSAGE)
        ).all()
    assert sorted(r.text for r in rows) == sorted(f"observation {i}" for i in range(10))


def test_finished_effects_are_forgotten_after_a_week(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    """Recorded requests and Slack calls are the work queue, not the record: once done they
    are kept a week (Slack redelivers within minutes), then pruned; the timeline stays."""
    incident = declare(fake, bot, slack, db)
    said, _ = slack.say(incident.slack_channel_id or "", "ana.garcia", "note this")
    slack.react(incident.slack_channel_id or "", said, user="ana.garcia", reaction="pushpin")
    bot.settle()
    with db.read() as session:
        rows = session.exec(select(Effect)).all()
        events = len(session.exec(select(TimelineEvent)).all())
    assert rows and {r.state for r in rows} == {"done"}
    assert any(r.key.startswith("in:event:") for r in rows)  # the reaction was recorded
    with db.transaction() as session:
        assert prune(session, now=utcnow() + timedelta(days=6)) == 0
    with db.transaction() as session:
        assert prune(session, now=utcnow() + timedelta(days=8)) == len(rows)
    with db.read() as session:
        assert session.exec(select(Effect)).all() == []
        assert len(session.exec(select(TimelineEvent)).all()) == events


def test_open_for_on_the_summary_is_kept_current(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    resolved = declare(fake, bot, slack, db, title="Another one")
    slack.slash_command("resolve", user="ana.garcia", channel=resolved.slack_channel_id or "")
    bot.settle()
    # From the declaration itself, not from now: the second declare and its resolve take a
    # few seconds, and a shown duration is rounded to the nearest minute.
    with freeze_time(
        incident.declared_at + timedelta(minutes=95),
        tick=True,
        ignore=["asyncio", "uvicorn", "anyio", "starlette"],
    ):
        assert bot.flows.refresh_open_summaries() == 1  # only the active incident
        bot.settle()  # the refresh is an effect, executed at the frozen time
    assert "*Open for*\n1h 35m" in summary_text(fake, incident)


def test_an_incident_that_is_over_cannot_be_acknowledged_or_taken_over(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    ask(fake, bot, slack, "status", channel)  # a copy of the summary, with its buttons
    [copy] = [
        e for e in fake.ephemerals(user="ana.garcia") if blocks.ACK_IC in json.dumps(e.blocks or [])
    ]
    slack.slash_command("resolve", user="ana.garcia", channel=channel)
    slack.slash_command("close", user="ana.garcia", channel=channel)
    bot.settle()
    before, calls = kinds(db, incident), len(fake.calls)

    clicked = slack.click_ephemeral(copy.ts, blocks.ACK_IC, user="ana.garcia")
    bot.settle()
    typed = ask(fake, bot, slack, "ack", channel)

    assert f"{incident.ref} is closed: there is nothing to take command of" in answer(fake, clicked)
    assert f"{incident.ref} is closed: there is nothing to acknowledge" in typed
    with db.read() as session:
        stored = core.get_incident(session, incident.id or 0)
        roles = core.current_roles(session, incident.id or 0)
    assert stored.acknowledged_at is None  # time to acknowledge stays unknown, not "after"
    assert roles == {}
    assert kinds(db, incident) == before
    assert [c.method for c in fake.calls[calls:] if c.method != "chat.postEphemeral"] == []


def test_acknowledging_again_says_who_holds_the_incident(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    """A second "Acknowledge / I'm IC" (a double click, or a second responder) changes nothing
    and says who the commander is, and how to take over; a second `ack` says when it was."""
    incident = declare(fake, bot, slack, db)
    channel, ts = incident.slack_channel_id or "", incident.summary_message_ts or ""
    ana, ben = fake.user_id("ana.garcia"), fake.user_id("ben.okafor")
    fake.join(channel, ben)
    copies = {}  # each person's copy of the summary from before anyone acknowledged
    for person in ("ana.garcia", "ben.okafor"):
        ask(fake, bot, slack, "status", channel, user=person)
        [copies[person]] = [
            e
            for e in fake.ephemerals(user=fake.user_id(person))
            if blocks.ACK_IC in json.dumps(e.blocks or [])
        ]
    slack.click(channel, ts, blocks.ACK_IC, user="ana.garcia")
    bot.settle()
    again = slack.click_ephemeral(copies["ana.garcia"].ts, blocks.ACK_IC, user="ana.garcia")
    other = slack.click_ephemeral(copies["ben.okafor"].ts, blocks.ACK_IC, user="ben.okafor")
    bot.settle()
    ref = incident.ref
    assert answer(fake, again) == f"You are already the Incident Commander of {ref}."
    assert answer(fake, other) == (
        f"{ref} already has a commander: <@{ana}>. To take over, `/incident {ref} ic me`."
    )
    with db.read() as session:
        acknowledged = core.get_incident(session, incident.id or 0).acknowledged_at
    assert acknowledged is not None
    typed = ask(fake, bot, slack, "ack", channel, user="ben.okafor")
    assert f"{ref} was already acknowledged at {acknowledged:%H:%M} UTC." in typed


def bens_copy_of_the_summary(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database, element: str
) -> tuple[Incident, str, Any]:
    """An incident Ana declared, Ana's user id, and the copy of its summary Ben asked for
    (``/incident status``), which holds ``element``: it shows the incident as it is now."""
    incident = declare(fake, bot, slack, db)
    ben = fake.user_id("ben.okafor")
    fake.join(incident.slack_channel_id or "", ben)
    ask(fake, bot, slack, "status", incident.slack_channel_id or "", user="ben.okafor")
    [copy] = [e for e in fake.ephemerals(user=ben) if element in json.dumps(e.blocks or [])]
    return incident, fake.user_id("ana.garcia"), copy


def test_a_severity_chosen_on_an_out_of_date_summary_changes_nothing(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    """Ben's copy still shows SEV3 when he picks SEV2 (meaning to raise it), but Ana has just
    raised it to SEV1: lowering it to SEV2 unseen would slow every timer. Refused, saying who
    changed it; a choice on a summary that shows the current severity is applied."""
    incident, ana, copy = bens_copy_of_the_summary(fake, bot, slack, db, blocks.SEVERITY)
    channel, ts = incident.slack_channel_id or "", incident.summary_message_ts or ""
    slack.click(channel, ts, blocks.SEVERITY, user="ana.garcia", value="SEV1")
    bot.settle()
    stale = slack.click_ephemeral(copy.ts, blocks.SEVERITY, user="ben.okafor", value="SEV2")
    bot.settle()
    with db.read() as session:
        assert core.get_incident(session, incident.id or 0).severity == "SEV1"
    refused = answer(fake, stale)
    assert refused.startswith(f":no_entry: {incident.ref} is SEV1 now, not SEV3 as your copy")
    assert f"(changed by <@{ana}> at " in refused
    # The same copy would be refused again: the answer says how to apply it all the same.
    assert refused.endswith(
        f"nothing changed. If you still mean SEV2: `/incident {incident.ref} sev SEV2`."
    )
    slack.click(channel, ts, blocks.SEVERITY, user="ben.okafor", value="SEV2")  # current copy
    bot.settle()
    with db.read() as session:
        assert core.get_incident(session, incident.id or 0).severity == "SEV2"
    # Ben corrects his own choice at once, before his copy shows it: he knows of his change.
    slack.click_ephemeral(copy.ts, blocks.SEVERITY, user="ben.okafor", value="SEV1")
    bot.settle()
    with db.read() as session:
        assert core.get_incident(session, incident.id or 0).severity == "SEV1"


def test_a_status_chosen_on_an_out_of_date_summary_never_reopens_a_resolved_incident(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    """Ben's copy still shows Triage when he picks Investigating, but Ana has just resolved
    the incident: applied, it would reopen it unseen and erase its resolved time. Refused,
    saying who changed it; his own change he may correct from his copy."""
    incident, ana, copy = bens_copy_of_the_summary(fake, bot, slack, db, blocks.STATUS)
    channel, ts = incident.slack_channel_id or "", incident.summary_message_ts or ""
    slack.slash_command("resolve rolled back", user="ana.garcia", channel=channel)
    bot.settle()
    with db.read() as session:
        resolved_at = core.get_incident(session, incident.id or 0).resolved_at
    assert resolved_at is not None
    stale = slack.click_ephemeral(copy.ts, blocks.STATUS, user="ben.okafor", value="investigating")
    bot.settle()
    with db.read() as session:
        now = core.get_incident(session, incident.id or 0)
        changes = session.exec(
            select(TimelineEvent).where(
                TimelineEvent.incident_id == incident.id,
                TimelineEvent.kind == EventKind.STATUS_CHANGED,
            )
        ).all()
    assert (now.status, now.resolved_at) == ("resolved", resolved_at)
    assert [e.data["to"] for e in changes] == ["resolved"]  # no reopen on the record
    refused = answer(fake, stale)
    assert refused.startswith(
        f":no_entry: {incident.ref} is Resolved now, not Triage as your copy showed "
        f"(changed by <@{ana}> at "
    )
    assert refused.endswith(
        "nothing changed. If you still mean Investigating, pick it again "
        "from the summary as it is now."
    )
    # Ben's own change he knows of: correcting it from the same copy goes through.
    slack.click(channel, ts, blocks.STATUS, user="ben.okafor", value="investigating")
    bot.settle()
    slack.click_ephemeral(copy.ts, blocks.STATUS, user="ben.okafor", value="monitoring")
    bot.settle()
    with db.read() as session:
        assert core.get_incident(session, incident.id or 0).status == "monitoring"


def test_a_status_chosen_on_ones_own_out_of_date_copy_never_reopens_a_closed_incident(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    """Ben resolved and closed the incident himself, then picks Investigating on a copy of the
    summary drawn while it was in Triage (an old message scrolled back to). His own changes he
    may correct from his copy, but a reopen of a closed incident from it would be unseen by
    everyone: refused, and said to him."""
    incident, _, copy = bens_copy_of_the_summary(fake, bot, slack, db, blocks.STATUS)
    channel = incident.slack_channel_id or ""
    for command in ("resolve rolled back", "close"):
        slack.slash_command(command, user="ben.okafor", channel=channel)
        bot.settle()
    stale = slack.click_ephemeral(copy.ts, blocks.STATUS, user="ben.okafor", value="investigating")
    bot.settle()
    with db.read() as session:
        now = core.get_incident(session, incident.id or 0)
        reopened = [e for e in core.timeline(session, now.id or 0) if e.data.get("reopened")]
    assert (now.status, reopened) == ("closed", [])
    refused = answer(fake, stale)
    assert refused.startswith(
        f":no_entry: {incident.ref} is Closed now, not Triage as your copy showed"
    )
    assert refused.endswith(
        "nothing changed. If you still mean Investigating, pick it again "
        "from the summary as it is now."
    )


def test_a_reopen_is_said_in_the_announcements_channel_not_only_edited_in(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    """Stakeholders follow the announcements channel; the announcement is edited as the
    incident changes, and Slack notifies nobody of an edit. A reopen is news: said there once
    (a private incident is never announced)."""
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    announcements = fake.channel_id("incidents")
    ana = fake.user_id("ana.garcia")
    for command in ("resolve rolled back", "close", "reopen errors are back <!channel>"):
        slack.slash_command(command, user="ana.garcia", channel=channel)
        bot.settle()
    said = [texts(m) for m in fake.messages(announcements) if "was reopened" in texts(m)]
    assert len(said) == 1  # one message, its broadcast silent
    assert (
        f":repeat: *{incident.ref}* was reopened by <@{ana}>: errors are back "
        f"@\u2060channel · <#{channel}>"
    ) in said[0]


def test_a_capture_form_whose_hidden_message_is_not_firebreaks_is_refused_cleanly(
    fake: FakeSlack,
    bot: RunningBot,
    slack: SlackSimulator,
    db: Database,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The form carries the message it was opened on, for when Firebreak cannot read the
    channel. A form whose hidden data says something else (not what Firebreak wrote) is an
    out-of-date button: said so, nothing captured, no traceback."""
    incident = declare(fake, bot, slack, db)
    said, _ = slack.say("incidents", "ana.garcia", "Customer reports from EU: card declined")
    slack.message_shortcut("add_to_timeline", "incidents", said, user="ana.garcia")
    bot.settle()
    [view] = fake.open_views("ana.garcia")
    tampered = {
        k: v
        for k, v in fake.view_json(view.id).items()
        if k in ("type", "callback_id", "title", "submit", "close", "blocks")
    }
    metadata = json.loads(fake.view_json(view.id)["private_metadata"])
    tampered["private_metadata"] = json.dumps({**metadata, "message": "not a message"})
    assert fake.replace_view(view.id, tampered) == []
    fake.fail("conversations.history", error="channel_not_found")
    with caplog.at_level(logging.ERROR):
        slack.submit_view(view.id, {"incident": str(incident.id)}, user="ana.garcia")
        bot.settle()
    assert kinds(db, incident).count(EventKind.MESSAGE) == 0
    told = [e.text for e in fake.ephemerals(user="ana.garcia")]
    assert any("That button is out of date" in t for t in told), told
    assert not [r for r in caplog.records if r.exc_info]


def test_the_shortcut_opens_its_form_before_asking_slack_who_sees_private_incidents(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    """Who may see a private incident is its channel's member list, a Slack call per incident,
    and a shortcut's trigger expires 3 s after the click: the form opens first (with the public
    incidents), then lists the private incidents this person is in, and only those."""
    private = declare_private(fake, bot, slack, db)
    public = declare(fake, bot, slack, db, title="EU card payments declined")
    said, _ = slack.say("incidents", "ana.garcia", "Customer reports from EU: card declined")
    for person in ("ana.garcia", "farid.haddad"):
        before = len(fake.calls)
        slack.message_shortcut("add_to_timeline", "incidents", said, user=person)
        bot.settle()
        methods = [c.method for c in fake.calls[before:]]
        # The form opened before Slack was asked anything (the channel's members, then
        # whether the person is an admin), then it was updated.
        assert methods[0] == "views.open" and methods[-1] == "views.update", methods
        assert "conversations.members" in methods or person != "ana.garcia"
        [view] = fake.open_views(person)
        shown = json.dumps(view.payload["blocks"], ensure_ascii=False)
        assert public.title in shown and "Checking" not in shown
        assert (private.title in shown) == (person == "ana.garcia"), person
        slack.close_view(view.id, user=person)


def test_close_or_reopen_on_an_out_of_date_summary_changes_nothing(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    """Ben's copy of the summary was drawn while the incident was resolved, so it offers
    Close; Ana has since reopened it ("still failing"). His Close would close a live incident
    unseen: refused, saying who changed it, as the status menu is. A Reopen on a copy drawn
    while it was closed, since reopened and resolved again, is refused the same way."""
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    ben = fake.user_id("ben.okafor")
    fake.join(channel, ben)
    slack.slash_command("resolve rolled back", user="ana.garcia", channel=channel)
    bot.settle()
    ask(fake, bot, slack, "status", channel, user="ben.okafor")
    [resolved_copy] = [e for e in fake.ephemerals(user=ben) if blocks.CLOSE in json.dumps(e.blocks)]
    slack.slash_command("reopen still failing", user="ana.garcia", channel=channel)
    bot.settle()
    stale = slack.click_ephemeral(resolved_copy.ts, blocks.CLOSE, user="ben.okafor")
    bot.settle()
    with db.read() as session:
        now = core.get_incident(session, incident.id or 0)
    assert (now.status, now.closed_at) == ("investigating", None)
    refused = answer(fake, stale)
    assert refused.startswith(
        f":no_entry: {incident.ref} is Investigating now, not Resolved as your copy showed "
        f"(changed by <@{fake.user_id('ana.garcia')}> at "
    )
    for command in ("resolve fixed", "close"):
        slack.slash_command(command, user="ana.garcia", channel=channel)
        bot.settle()
    ask(fake, bot, slack, "status", channel, user="ben.okafor")
    [closed_copy] = [
        e
        for e in fake.ephemerals(user=ben)
        if blocks.REOPEN in json.dumps(e.blocks) and blocks.CLOSE not in json.dumps(e.blocks)
    ]
    for command in ("reopen", "resolve fixed again"):
        slack.slash_command(command, user="ana.garcia", channel=channel)
        bot.settle()
    stale = slack.click_ephemeral(closed_copy.ts, blocks.REOPEN, user="ben.okafor")
    bot.settle()
    with db.read() as session:
        assert core.get_incident(session, incident.id or 0).status == "resolved"
    assert answer(fake, stale).startswith(
        f":no_entry: {incident.ref} is Resolved now, not Closed as your copy showed"
    )
