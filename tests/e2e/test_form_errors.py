"""A form whose choice is not in the current policy (a severity, status or role removed since
the form opened) is refused inside the form, under that input: the form stays open with what
was typed, and nothing is declared or changed."""

from __future__ import annotations

import copy
from typing import Any

from bot.db import Database
from bot.models import Incident
from bot.sandbox import FakeSlack, SlackSimulator
from bot.slack import blocks as B
from tests.e2e.conftest import RunningBot, texts
from tests.e2e.helpers import declare, kinds
from tests.e2e.test_unprocessable_requests import summary_ts


def drawn_with_an_old_option(fake: FakeSlack, view_id: str, block_id: str, value: str) -> None:
    """The open form as an earlier policy drew it: its select also offers ``value``."""
    view: dict[str, Any] = copy.deepcopy(fake.view_json(view_id))
    view = {
        k: v
        for k, v in view.items()
        if k in ("type", "callback_id", "title", "submit", "close", "private_metadata", "blocks")
    }
    for block in view["blocks"]:
        if block.get("block_id") == block_id:
            block["element"].setdefault("options", []).append(
                {"text": {"type": "plain_text", "text": value}, "value": value}
            )
    assert fake.replace_view(view_id, view) == []


def test_a_severity_no_longer_in_the_policy_is_refused_in_the_declare_form(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    slack.global_shortcut("declare_incident", user="ana.garcia")
    bot.settle()
    view = fake.open_views("ana.garcia")[-1]
    drawn_with_an_old_option(fake, view.id, "severity", "SEV9")

    reply = slack.submit_view(
        view.id,
        {"title": "Payments down", "summary": "EU cards fail", "severity": "SEV9"},
        user="ana.garcia",
    )
    bot.settle()

    assert reply.problems == ()
    errors = reply.validation_errors
    assert list(errors) == ["severity"]
    assert "'SEV9' is not a severity in the current policy" in errors["severity"]
    assert "SEV1, SEV2, SEV3, SEV4" in errors["severity"]
    assert [v.id for v in fake.open_views("ana.garcia")] == [view.id]  # typed text kept
    assert fake.messages(fake.im_channel("ana.garcia")) == []
    assert slack.submit_view(view.id, {"severity": "SEV2"}, user="ana.garcia").problems == ()
    bot.settle()
    dm = [texts(m) for m in fake.messages(fake.im_channel("ana.garcia"))]
    assert any("Declared *INC-1* (SEV2)" in t for t in dm), dm


def test_a_role_no_longer_in_the_policy_is_refused_in_the_role_form(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    slack.click(channel, summary_ts(fake, channel), B.ASSIGN_ROLE, user="ana.garcia")
    bot.settle()
    view = fake.open_views("ana.garcia")[-1]
    drawn_with_an_old_option(fake, view.id, "role", "liaison")

    reply = slack.submit_view(view.id, {"role": "liaison", "user": "ana.garcia"}, user="ana.garcia")
    bot.settle()

    assert list(reply.validation_errors) == ["role"]
    assert "'liaison' is not a role in the current policy" in reply.validation_errors["role"]
    assert [v.id for v in fake.open_views("ana.garcia")] == [view.id]
    assert "role_assigned" not in kinds(db, incident)


def test_a_status_no_longer_in_the_policy_is_refused_in_the_update_form(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    slack.click(channel, summary_ts(fake, channel), B.POST_UPDATE, user="ana.garcia")
    bot.settle()
    view = fake.open_views("ana.garcia")[-1]
    drawn_with_an_old_option(fake, view.id, "status", "archived")

    reply = slack.submit_view(
        view.id, {"update": "Failover done", "status": "archived"}, user="ana.garcia"
    )
    bot.settle()

    assert list(reply.validation_errors) == ["status"]
    assert "'archived' is not a status in the current policy" in reply.validation_errors["status"]
    assert [v.id for v in fake.open_views("ana.garcia")] == [view.id]
    assert "status_update" not in kinds(db, incident)  # the update waits for the form


def test_a_form_slack_will_not_open_from_the_global_shortcut_is_said_in_a_direct_message(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    """A global shortcut has no channel and no response_url: when Slack refuses to open the
    form (its trigger expired after 3 s), the person hears why in Firebreak's direct messages
    instead of nothing happening."""
    fake.fail("views.open", error="expired_trigger_id")
    slack.global_shortcut("declare_incident", user="ana.garcia")
    bot.settle()
    assert fake.open_views("ana.garcia") == []
    dm = [texts(m) for m in fake.messages(fake.im_channel("ana.garcia"))]
    assert dm == [
        ":warning: Slack refused views.open (expired_trigger_id). That took too long; "
        "run the command again."
    ]


def test_a_click_that_opens_a_form_delivered_twice_opens_it_once_and_says_nothing_false(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    """The second delivery of the same click carries the same trigger, which Slack refuses
    (``exchanged_trigger_id``): the form is open already, so nothing is said of it."""
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    first = slack.click(channel, summary_ts(fake, channel), B.ADD_NOTE, user="ana.garcia")
    bot.settle()
    assert slack.deliver_again(first).status == 200
    bot.settle()
    assert len(fake.open_views("ana.garcia")) == 1
    said = [e.text for e in fake.ephemerals(channel)] + [
        texts(p.payload) for p in fake.response_posts()
    ]
    assert not any("exchanged_trigger_id" in t or "refused" in t for t in said), said


def update_form_open_for_ben(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> tuple[Incident, str, Any]:
    """An incident, its channel, and the Post update form Ben opened from its summary."""
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    fake.join(channel, fake.user_id("ben.okafor"))
    slack.click(channel, summary_ts(fake, channel), B.POST_UPDATE, user="ben.okafor")
    bot.settle()
    return incident, channel, fake.open_views("ben.okafor")[-1]


def test_an_update_for_an_incident_closed_while_the_form_was_open_stays_in_the_form(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    """Ben types an update while Ana closes the incident. Closing the form would lose what he
    typed; it stays open with his text and says why, and nothing lands on the timeline."""
    incident, channel, view = update_form_open_for_ben(fake, bot, slack, db)
    for command in ("resolve rolled back", "close"):
        slack.slash_command(command, user="ana.garcia", channel=channel)
        bot.settle()

    reply = slack.submit_view(view.id, {"update": "EU cards recovered"}, user="ben.okafor")
    bot.settle()

    assert list(reply.validation_errors) == ["update"]
    assert reply.validation_errors["update"] == (
        f"{incident.ref} is closed: reopen it (`/incident {incident.ref} reopen`) before you "
        "post an update."
    )
    assert [v.id for v in fake.open_views("ben.okafor")] == [view.id]  # his text is kept
    assert "status_update" not in kinds(db, incident)


def test_a_status_chosen_in_the_update_form_after_a_resolve_is_refused_the_update_kept(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    """The form offered statuses from Triage; Ana resolved the incident before Ben sent it.
    His update is posted; the status he chose against Triage is not applied (it would reopen
    the incident unseen), and he is told who changed it."""
    incident, channel, view = update_form_open_for_ben(fake, bot, slack, db)
    slack.slash_command("resolve rolled back", user="ana.garcia", channel=channel)
    bot.settle()

    reply = slack.submit_view(
        view.id, {"update": "cards recovered", "status": "investigating"}, user="ben.okafor"
    )
    bot.settle()

    assert reply.validation_errors == {}
    changes = kinds(db, incident)
    assert changes.count("status_update") == 1
    assert changes.count("status_changed") == 1  # Ana's resolve only
    [told] = [e.text for e in fake.ephemerals(user=fake.user_id("ben.okafor")) if "copy" in e.text]
    assert told.startswith(
        f":no_entry: {incident.ref} is Resolved now, not Triage as your copy showed (changed by "
    )


def test_a_summary_too_long_once_written_out_for_slack_is_refused_in_the_form(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    """2,989 characters fit the field (3,000), but written out for Slack (``&amp;``, ``&lt;``)
    they are over the 10,000 a summary holds: refused under the input, the form and the text
    kept. Before, the form closed, nothing was declared, and a DM said the summary was 12,911
    characters long, which the person had not typed."""
    slack.global_shortcut("declare_incident", user="ana.garcia")
    bot.settle()
    view = fake.open_views("ana.garcia")[-1]
    summary = "<!here> & <b>x</b> " + "&<>" * 990
    reply = slack.submit_view(
        view.id, {"title": "Payments down", "summary": summary}, user="ana.garcia"
    )
    bot.settle()
    assert reply.problems == ()
    errors = reply.validation_errors
    assert list(errors) == ["summary"]
    assert "the limit is 10,000: shorten it" in errors["summary"]
    assert [v.id for v in fake.open_views("ana.garcia")] == [view.id]  # typed text kept
    assert fake.calls_to("conversations.create") == []
    assert fake.messages(fake.im_channel("ana.garcia")) == []


def test_a_title_over_the_limit_once_its_broadcasts_are_silenced_is_refused_in_the_form(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    """300 characters fit the field, but each @here is kept with an invisible mark that keeps it
    silent: 301 stored. Before, the form closed, nothing was declared, and a DM said the title
    was 301 characters long, which the person had not typed."""
    slack.global_shortcut("declare_incident", user="ana.garcia")
    bot.settle()
    view = fake.open_views("ana.garcia")[-1]
    title = "@here checkout down " + "x" * 280
    reply = slack.submit_view(view.id, {"title": title}, user="ana.garcia")
    bot.settle()
    assert reply.problems == ()
    assert reply.validation_errors == {
        "title": "With @here, @channel and @everyone kept silent (a mark each) this title is 301 "
        "characters; the limit is 300: shorten it."
    }
    assert [v.id for v in fake.open_views("ana.garcia")] == [view.id]  # typed text kept
    assert fake.calls_to("conversations.create") == []
    assert fake.messages(fake.im_channel("ana.garcia")) == []

    reply = slack.submit_view(view.id, {"title": title[:-1]}, user="ana.garcia")
    bot.settle()
    assert reply.validation_errors == {}
    assert len(fake.calls_to("conversations.create")) == 1
