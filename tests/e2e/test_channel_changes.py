"""Someone archives, unarchives or renames an incident channel in Slack: Firebreak records it
on the incident's timeline, keeps what it knows of the channel true, and its answers say where
things really went."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select

from bot import incidents as core
from bot.config import Policy
from bot.db import Database
from bot.effects.models import Effect
from bot.models import Incident, TimelineEvent
from bot.sandbox import FakeSlack, SlackSimulator
from bot.slack import blocks as B
from tests.e2e.conftest import RunningBot, texts
from tests.e2e.helpers import ask, declare, kinds
from tests.e2e.test_unprocessable_requests import summary_ts


def rename(fake: FakeSlack, channel: str, name: str) -> dict[str, Any]:
    """Someone renamed the channel; the ``channel_rename`` event Slack sends for it."""
    fake.rename(channel, name)
    place = fake.channel_json(channel)
    return {
        "type": "channel_rename",
        "channel": {"id": channel, "name": name, "created": place["created"]},
        "event_ts": "1700000000.000100",
    }


def events_of(db: Database, incident: Incident, kind: str) -> list[TimelineEvent]:
    with db.read() as session:
        return [e for e in core.timeline(session, incident.id or 0) if e.kind == kind]


def stored(db: Database, incident: Incident) -> Incident:
    with db.read() as session:
        return core.get_incident(session, incident.id or 0)


def test_an_update_while_the_channel_is_archived_is_answered_truly_and_posted_once_unarchived(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    ben = fake.user_id("ben.okafor")

    fake.archive(channel)
    assert slack.event({"type": "channel_archive", "channel": channel, "user": ben}).status == 200
    bot.settle()
    said = ask(fake, bot, slack, "INC-1 update rolled back", "general")

    assert "Update posted" not in said
    assert "Update saved to INC-1's timeline." in said
    assert f"Its channel #{incident.slack_channel_name} is archived" in said
    assert "unarchive it and Firebreak posts what follows" in said
    archived = events_of(db, incident, "channel_archived")
    assert [(e.actor_id, e.text) for e in archived] == [
        (ben, f"Channel #{incident.slack_channel_name} archived")
    ]
    assert "status_update" in kinds(db, incident)
    with db.read() as session:  # the post failed for good: nothing is left to retry
        unfinished = session.exec(
            select(Effect).where(
                Effect.incident_id == incident.id,
                Effect.state.in_(("pending", "claimed")),  # type: ignore[attr-defined]
            )
        ).all()
    assert unfinished == []

    fake.unarchive(channel)
    slack.event({"type": "channel_unarchive", "channel": channel, "user": ben})
    bot.settle()
    said = ask(fake, bot, slack, "INC-1 update traffic is back", "general")

    assert said == f"Update saved to INC-1; posting it in <#{channel}>."
    assert any("traffic is back" in texts(m) for m in fake.messages(channel))
    assert [e.actor_id for e in events_of(db, incident, "channel_unarchived")] == [ben]


def test_a_change_said_in_an_archived_channel_is_answered_to_its_author(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    fake.archive(channel)
    slack.event({"type": "channel_archive", "channel": channel, "user": fake.user_id("ben.okafor")})
    bot.settle()

    said = ask(fake, bot, slack, "INC-1 sev 1", "general")

    assert "INC-1 is now SEV1" in said
    assert "is archived, so it was not posted there" in said
    pinned = summary_ts(fake, channel)
    assert "SEV1" not in texts(fake.message(channel, pinned))  # the edit was refused

    fake.unarchive(channel)
    slack.event(
        {"type": "channel_unarchive", "channel": channel, "user": fake.user_id("ben.okafor")}
    )
    bot.settle()
    assert "SEV1" in texts(fake.message(channel, pinned))  # brought up to date at once


def test_a_renamed_incident_channel_is_stored_and_on_the_timeline(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""

    reply = slack.event(rename(fake, channel, "inc-1-checkout-500s"))
    bot.settle()
    slack.retry(reply)  # Slack delivers it again: recorded once
    bot.settle()

    assert stored(db, incident).slack_channel_name == "inc-1-checkout-500s"
    renamed = events_of(db, incident, "channel_renamed")
    assert [e.text for e in renamed] == ["Channel renamed to #inc-1-checkout-500s"]


def test_a_redelivered_archive_event_is_recorded_once_and_other_channels_are_ignored(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    ben = fake.user_id("ben.okafor")
    fake.archive(channel)

    reply = slack.event({"type": "channel_archive", "channel": channel, "user": ben})
    bot.settle()
    slack.retry(reply)
    slack.retry(reply, reason="http_error")
    slack.event({"type": "channel_archive", "channel": fake.channel_id("incidents"), "user": ben})
    bot.settle()

    assert kinds(db, incident).count("channel_archived") == 1
    assert core.channel_archived(stored(db, incident))
    with db.read() as session:
        archived = session.exec(
            select(TimelineEvent).where(TimelineEvent.kind == "channel_archived")
        ).all()
    assert len(archived) == 1


def test_a_bot_already_known_is_refused_inside_the_role_form(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    monitor = fake.user_id("uptime-monitor")
    said = ask(fake, bot, slack, f"ic <@{monitor}|uptime-monitor>", channel)
    assert "is a bot" in said  # Firebreak asked Slack about it once

    slack.click(channel, summary_ts(fake, channel), B.ASSIGN_ROLE, user="ana.garcia")
    bot.settle()
    view = fake.open_views("ana.garcia")[-1]
    reply = slack.submit_view(
        view.id, {"role": "commander", "user": "uptime-monitor"}, user="ana.garcia"
    )
    bot.settle()

    assert list(reply.validation_errors) == ["user"]
    assert "Uptime Monitor is a bot" in reply.validation_errors["user"]
    assert [v.id for v in fake.open_views("ana.garcia")] == [view.id]  # the form stays open
    with db.read() as session:
        assert monitor not in core.current_roles(session, incident.id or 0).values()


def test_channel_news_delivered_late_never_overrides_newer_news(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    """Slack redelivers an event whose first delivery failed minutes later, after newer ones:
    the newest state of the channel wins, whatever order the events arrive in."""
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    ben = fake.user_id("ben.okafor")
    # Archived at :01 and unarchived at :02; the archive's first delivery failed.
    # (Each is handled before the next arrives, as when the late one comes minutes later.)
    slack.event(
        {"type": "channel_unarchive", "channel": channel, "user": ben, "event_ts": "1700000002.0"}
    )
    bot.settle()
    slack.event(
        {"type": "channel_archive", "channel": channel, "user": ben, "event_ts": "1700000001.0"}
    )
    bot.settle()
    # Renamed at :03, then again at :04; the first rename arrives last.
    final = rename(fake, channel, "inc-1-final")
    slack.event({**final, "event_ts": "1700000004.0"})
    bot.settle()
    slack.event(
        {
            **final,
            "channel": {**final["channel"], "name": "inc-1-interim"},
            "event_ts": "1700000003.0",
        }
    )
    bot.settle()

    now = stored(db, incident)
    assert not core.channel_archived(now) and now.slack_channel_name == "inc-1-final"
    assert kinds(db, incident).count("channel_archived") == 0
    renamed = events_of(db, incident, "channel_renamed")
    assert [e.text for e in renamed] == ["Channel renamed to #inc-1-final"]


@pytest.mark.parametrize("event", ["channel_left", "member_left_channel"])
def test_firebreak_removed_from_the_channel_tells_the_commander_once(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database, event: str
) -> None:
    """Slack sends an app removed from a channel ``channel_left`` (``group_left`` if private;
    ``actor_id``: who removed it); ``member_left_channel`` naming the bot says the same."""
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    ben = fake.user_id("ben.okafor")
    slack.event({"type": "member_left_channel", "user": ben, "channel": channel})  # a person
    fake.remove_bot_from_channel(channel)
    left: dict[str, Any] = (
        {"type": "channel_left", "channel": channel, "actor_id": ben, "event_ts": "1700000009.1"}
        if event == "channel_left"
        else {"type": "member_left_channel", "user": fake.bot_user_id, "channel": channel}
    )
    reply = slack.event(left)
    bot.settle()
    slack.retry(reply)
    bot.settle()

    lost = events_of(db, incident, "channel_lost")
    assert [e.text for e in lost] == [f"Firebreak was removed from #{incident.slack_channel_name}"]
    told = [texts(m) for m in fake.messages(fake.im_channel(incident.reporter_id))]
    assert sum("Firebreak was removed from" in t for t in told) == 1, told


def test_a_deleted_incident_channel_is_on_the_timeline_and_the_commander_told(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    slack.event({"type": "channel_deleted", "channel": channel})
    slack.event({"type": "channel_deleted", "channel": fake.channel_id("incidents")})
    bot.settle()

    assert [e.text for e in events_of(db, incident, "channel_lost")] == [
        f"Channel #{incident.slack_channel_name} deleted"
    ]
    told = [texts(m) for m in fake.messages(fake.im_channel(incident.reporter_id))]
    assert sum("was deleted" in t and "/incident INC-1 status" in t for t in told) == 1, told


def test_after_its_channel_is_deleted_changes_are_recorded_without_calling_slack_there(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    """A deleted channel never comes back: changes made afterwards are on the timeline and in
    the announcement, and Firebreak neither posts nor edits in the channel nor tells the
    reporter, once per change, to invite it back and retry."""
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    fake.delete_channel(channel)
    slack.event({"type": "channel_deleted", "channel": channel})
    bot.settle()
    deleted_at = len(fake.calls)
    told_before = len(fake.messages(fake.im_channel(incident.reporter_id)))

    for command in ("INC-1 sev 1", "INC-1 update rolled back the deploy", "INC-1 resolve fixed"):
        assert "the timeline has it" in ask(fake, bot, slack, command, "general")

    later = fake.calls[deleted_at:]
    assert [c.method for c in later if c.args.get("channel") == channel] == []
    with db.read() as session:
        failed = session.exec(
            select(Effect).where(Effect.incident_id == incident.id, Effect.state == "failed")
        ).all()
    assert [(e.kind, e.last_error) for e in failed] == []
    assert len(fake.messages(fake.im_channel(incident.reporter_id))) == told_before
    announcement = stored(db, incident)
    edited = fake.message(fake.channel_id("incidents"), announcement.announcement_ts or "")
    assert "SEV1" in texts(edited) and "Resolved" in texts(edited)
    assert {"severity_changed", "status_update", "status_changed"} <= set(kinds(db, incident))


def test_an_archive_slack_reports_by_refusing_a_post_is_remembered(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    """The channel was archived and Firebreak never heard the event (an app created from an
    older manifest, a delivery lost): Slack's ``is_archived`` refusal says so, and the next
    answer tells the truth instead of "posting it"."""
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    fake.archive(channel)

    first = ask(fake, bot, slack, "INC-1 update rolled back", "general")
    assert first == f"Update saved to INC-1; posting it in <#{channel}>."  # not known yet
    assert core.channel_archived(stored(db, incident))
    assert [e.text for e in events_of(db, incident, "channel_archived")] == [
        f"Channel #{incident.slack_channel_name} archived"
    ]
    second = ask(fake, bot, slack, "INC-1 update still rolled back", "general")
    assert f"Its channel #{incident.slack_channel_name} is archived" in second


def test_a_closed_incidents_channel_deleted_is_recorded_and_nobody_woken(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    with db.transaction() as session:
        core.close_incident(session, Policy(), incident.id or 0, actor="U1")
    bot.settle()
    before = len(fake.messages(fake.im_channel(incident.reporter_id)))
    slack.event({"type": "channel_deleted", "channel": channel})
    bot.settle()

    assert [e.text for e in events_of(db, incident, "channel_lost")] == [
        f"Channel #{incident.slack_channel_name} deleted"
    ]
    assert len(fake.messages(fake.im_channel(incident.reporter_id))) == before


@pytest.mark.parametrize("share_first", [False, True], ids=["id-change-first", "share-first"])
def test_a_channel_shared_with_another_organisation_stays_the_incidents(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database, share_first: bool
) -> None:
    """Sharing a private channel through Slack Connect gives it a new id for good
    (``channel_id_changed``). Before, the incident kept the old id: its commands answered "not
    an incident channel", a title typed there declared another incident, and a timeline note
    reached the other organisation in the postmortem draft uploaded on close. Slack does not
    order its events: ``channel_shared`` for the new id may come first, and is not lost."""
    incident = declare(fake, bot, slack, db)
    old = incident.slack_channel_id or ""
    ask(fake, bot, slack, "note Globex affected, contract penalties possible", old)
    new = fake.share_externally(old)
    moved = {"type": "channel_id_changed", "old_channel_id": old, "new_channel_id": new}
    shared = {"type": "channel_shared", "channel": new, "connected_team_id": "E0VENDOR001"}
    for event in [shared, moved] if share_first else [moved, shared]:
        slack.event(event)
        bot.settle()

    assert stored(db, incident).slack_channel_id == new
    assert [e.text for e in events_of(db, incident, "channel_id_changed")] == [
        f"Slack gave #{incident.slack_channel_name} a new channel id"
    ]
    assert [e.text for e in events_of(db, incident, "channel_shared")] == [
        f"#{incident.slack_channel_name} was shared with another organisation (E0VENDOR001)"
    ]
    told = [texts(m) for m in fake.messages(fake.im_channel(incident.reporter_id))]
    assert sum("was shared with another organisation" in t for t in told) == 1, told

    for command in ("update failing over to the standby", "resolve rolled back", "close"):
        slack.slash_command(command, user="ana.garcia", channel=new)
        bot.settle()
    assert any("failing over to the standby" in texts(m) for m in fake.messages(new))
    with db.read() as session:
        assert core.get_incident(session, incident.id or 0).status == "closed"
        assert len(session.exec(select(Incident)).all()) == 1
    assert fake.files() == []  # the draft quotes the timeline's notes: not uploaded there


def test_removed_then_invited_back_is_recorded_once_answered_truly_and_catches_up(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    """Slack tells an app removed from a channel twice (``channel_left``, then
    ``member_left_channel`` of its own user): one timeline entry, one message to the commander.
    While out, answers say the update was saved, not "posting it", and a retry says what to do
    instead of failing again. Invited back, what could not be posted is posted, once."""
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    name = f"#{incident.slack_channel_name}"
    fake.remove_bot_from_channel(channel)
    slack.event({"type": "channel_left", "channel": channel, "actor_id": "U0ADMIN"})
    slack.event({"type": "member_left_channel", "user": fake.bot_user_id, "channel": channel})
    bot.settle()

    assert [e.text for e in events_of(db, incident, "channel_lost")] == [
        f"Firebreak was removed from {name}"
    ]
    told = [texts(m) for m in fake.messages(fake.im_channel(incident.reporter_id))]
    assert sum("Firebreak was removed from" in t for t in told) == 1, told

    said = ask(fake, bot, slack, "INC-1 update failing over to the standby", "general")
    assert said == (
        f"Update saved to INC-1's timeline. Firebreak was removed from {name}, so it was not "
        f"posted there: `/invite @Firebreak` in {name} and Firebreak posts it."
    )
    retry = ask(fake, bot, slack, "INC-1 retry", "general")
    assert retry.startswith(f":warning: Firebreak was removed from {name}, so trying again")
    summary = stored(db, incident).summary_message_ts

    def updates_posted() -> int:
        said = [m for m in fake.messages(channel) if m.ts != summary]
        return sum("failing over to the standby" in texts(m) for m in said)

    assert updates_posted() == 0

    fake.invite_bot_back(channel)
    joined = {"type": "member_joined_channel", "user": fake.bot_user_id, "channel": channel}
    reply = slack.event(joined)
    bot.settle()
    slack.retry(reply)
    bot.settle()
    assert [e.text for e in events_of(db, incident, "channel_regained")] == [
        f"Firebreak is back in {name}"
    ]
    assert updates_posted() == 1
    again = ask(fake, bot, slack, "INC-1 update standby serving", "general")
    assert again == f"Update saved to INC-1; posting it in <#{channel}>."


def test_after_the_channel_is_deleted_answers_say_so_and_retry_does_not_pretend(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    name = f"#{incident.slack_channel_name}"
    slack.event({"type": "channel_deleted", "channel": channel})
    bot.settle()
    slack.event({"type": "channel_left", "channel": channel})  # nothing more to say
    bot.settle()
    assert [e.text for e in events_of(db, incident, "channel_lost")] == [f"Channel {name} deleted"]

    said = ask(fake, bot, slack, "INC-1 sev 1", "general")
    assert f"Its channel {name} was deleted, so it was not posted there" in said
    retry = ask(fake, bot, slack, "INC-1 retry", "general")
    assert retry.startswith(f":warning: INC-1's channel {name} was deleted")
    assert "Trying again" not in retry


def test_an_archived_channel_is_told_to_the_commander_once_and_the_draft_waits_for_retry(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    """The channel is archived without Firebreak hearing of it (an app without the event):
    every change then fails in it alike. The commander hears of it once, not once per kind of
    message, and the postmortem draft written on close is not uploaded where Slack would take
    the file and refuse to share it; once the channel is unarchived, retry uploads it."""
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    dm = fake.im_channel("ana.garcia")
    told_before = len(fake.messages(dm))
    fake.archive(channel)

    for command in ("INC-1 sev 2", "INC-1 sev 1", "INC-1 resolve", "INC-1 close"):
        assert slack.slash_command(command, user="ana.garcia", channel="general").status == 200
        bot.settle()

    told = [texts(m) for m in fake.messages(dm)[told_before:]]
    assert len(told) == 1, told
    assert "is archived" in told[0]
    assert fake.calls_to("files.getUploadURLExternal") == []
    assert fake.calls_to("files.completeUploadExternal") == []
    [upload] = [
        e
        for e in events_of(db, incident, "slack_failed")
        if e.data.get("effect_kind") == "postmortem.upload"
    ]
    assert "archived" in upload.text and "/incident INC-1 retry" in upload.text
    assert kinds(db, incident).count("channel_archived") == 1

    fake.unarchive(channel)
    slack.event({"type": "channel_unarchive", "channel": channel, "user": incident.reporter_id})
    bot.settle()
    ask(fake, bot, slack, "INC-1 retry", "general")
    [shared] = [c for c in fake.calls_to("files.completeUploadExternal") if c.status == 200]
    assert shared.args["channel_id"] == channel
    assert len(fake.calls_to("files.getUploadURLExternal")) == 1


def test_removed_without_the_event_then_invited_back_posts_what_failed_meanwhile(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    """Firebreak is removed from the incident channel and Slack's ``channel_left`` never
    arrives (an app without the event, a delivery lost). Slack's refusal of the next post says
    so: it is on the timeline, and once someone invites Firebreak back, the update that could
    not be posted is posted, once."""
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    pinned = summary_ts(fake, channel)

    def updates() -> list[str]:
        return [
            texts(m)
            for m in fake.messages(channel)
            if m.ts != pinned and "rolled back v42" in texts(m)
        ]

    fake.remove_bot_from_channel(channel)
    ask(fake, bot, slack, "INC-1 update rolled back v42", "general")
    assert updates() == []
    assert kinds(db, incident).count("channel_lost") == 1
    with db.read() as session:
        assert core.channel_lost(core.get_incident(session, incident.id or 0)) == "removed"
    dm = fake.im_channel("ana.garcia")
    told = [texts(m) for m in fake.messages(dm) if "not a member" in texts(m)]
    assert len(told) == 1  # the failure, told once (not a second notice for the same news)

    fake.invite_bot_back(channel)
    joined = {"type": "member_joined_channel", "user": fake.bot_user_id, "channel": channel}
    assert slack.event(joined).status == 200
    bot.settle()
    assert len(updates()) == 1
    assert kinds(db, incident).count("channel_regained") == 1


def test_an_organisation_removed_from_a_channel_still_shared_keeps_the_channel_shared(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    """``channel_unshared`` names the organisation removed (``previously_connected_team_id``)
    and says whether others still share the channel (``is_ext_shared``). Before, any unshare
    marked the channel no longer shared, without the organisation's name, and the postmortem
    draft, which quotes the timeline's notes, was uploaded into a channel another company
    still reads."""
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    name = f"#{incident.slack_channel_name}"
    ask(fake, bot, slack, "note Globex affected, contract penalties possible", channel)
    for team, at in (("T0OTHERA01", "1700000100.0"), ("E0OTHERB01", "1700000200.0")):
        slack.event(
            {
                "type": "channel_shared",
                "channel": channel,
                "connected_team_id": team,
                "event_ts": at,
            }
        )
        bot.settle()
    unshared = {
        "type": "channel_unshared",
        "channel": channel,
        "previously_connected_team_id": "E0OTHERB01",
        "is_ext_shared": True,
        "event_ts": "1700000300.0",
    }
    slack.event(unshared)
    bot.settle()

    assert [e.text for e in events_of(db, incident, "channel_shared")][2:] == [
        f"{name}: an organisation (E0OTHERB01) was removed from it; it is still shared with "
        "another organisation"
    ]
    assert core.channel_shared(stored(db, incident))
    told = [texts(m) for m in fake.messages(fake.im_channel(incident.reporter_id))]
    assert sum("was shared with another organisation" in t for t in told) == 2, told
    for command in ("resolve rolled back", "close"):
        slack.slash_command(command, user="ana.garcia", channel=channel)
        bot.settle()
    with db.read() as session:
        assert core.get_incident(session, incident.id or 0).status == "closed"
    assert fake.files() == []  # still read by another company: the draft is not uploaded there

    slack.event({**unshared, "is_ext_shared": False, "event_ts": "1700000400.0"})
    bot.settle()
    assert [e.text for e in events_of(db, incident, "channel_shared")][3:] == [
        f"{name} is no longer shared with another organisation (E0OTHERB01)"
    ]
    assert not core.channel_shared(stored(db, incident))


def test_a_late_redelivered_unshare_does_not_undo_a_newer_share(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    """Slack redelivers an event whose first delivery failed minutes later, after newer ones:
    an unshare older than the share after it changes nothing, as with archives and renames."""
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    for at in ("1700000100.0", "1700000300.0"):
        slack.event(
            {
                "type": "channel_shared",
                "channel": channel,
                "connected_team_id": "E0VENDOR001",
                "event_ts": at,
            }
        )
        bot.settle()
    late = {
        "type": "channel_unshared",
        "channel": channel,
        "previously_connected_team_id": "E0VENDOR001",
        "is_ext_shared": False,
        "event_ts": "1700000200.0",
    }
    slack.event(late, retry_num=2, retry_reason="http_timeout")
    bot.settle()

    assert core.channel_shared(stored(db, incident))
    assert not any("no longer shared" in e.text for e in events_of(db, incident, "channel_shared"))


def test_an_archived_announcements_channel_is_named_with_its_setting(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    """The announcement fails, not the incident: the reporter is told which channel refused
    and which setting names it, never to "open a new incident" (which would fail alike)."""
    announcements = fake.channel_id("incidents")
    fake.archive(announcements)
    incident = declare(fake, bot, slack, db)
    bot.settle()
    told = [texts(m) for m in fake.messages(fake.im_channel(incident.reporter_id))]
    [failure] = [t for t in told if "announce" in t]
    assert f"announcements channel {announcements}" in failure
    assert "announcements_channel" in failure and "open a new incident" not in failure
    assert incident.slack_channel_id in {c.id for c in fake.channels()}
