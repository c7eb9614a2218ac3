"""The errors Slack's Web API really answers with, met during real flows: each ends the way an
on-call engineer expects (retried and done once, or told to the commander and retryable), and
what Firebreak says about it is true."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlmodel import col, select

from bot import incidents as core
from bot.clock import utcnow
from bot.config import Policy, Settings
from bot.db import Database
from bot.effects import kinds as effect_kinds
from bot.effects import store
from bot.effects.models import Effect
from bot.models import EventKind, Incident
from bot.runtime import Firebreak
from bot.sandbox import FakeSlack, SlackSimulator
from bot.slack.gateway import SlackCallError
from bot.slack.readiness import SlackReadiness
from tests.e2e.conftest import SECRET, RunningBot, texts
from tests.e2e.helpers import answer, ask, declare


def failures(db: Database, incident: Incident) -> list[str]:
    with db.read() as session:
        return [
            e.text
            for e in core.timeline(session, incident.id or 0)
            if e.kind == EventKind.SLACK_FAILED
        ]


def posted(fake: FakeSlack, channel: str, text: str) -> int:
    """Messages posted (not edits) in ``channel`` that say ``text``."""
    return sum(
        1
        for call in fake.calls_to("chat.postMessage", applied=True)
        if call.args.get("channel") == channel and text in str(call.args.get("text"))
    )


def test_chat_post_messages_own_rate_limit_is_retried_and_posted_once(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    fake.fail("chat.postMessage", error="rate_limited", times=1)  # HTTP 200, ok: false
    slack.slash_command("update failover done", user="ana.garcia", channel=channel)
    bot.settle()
    assert posted(fake, channel, "failover done") == 1
    assert failures(db, incident) == []


def test_a_person_slack_will_not_invite_is_reported_and_can_be_retried(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    ben = fake.user_id("ben.okafor")
    fake.fail("conversations.invite", error="user_is_restricted", times=1)
    slack.slash_command(f"role comms <@{ben}|ben.okafor>", user="ana.garcia", channel=channel)
    bot.settle()

    assert ben not in fake.members(channel)
    [failure] = failures(db, incident)
    assert "invite people to the incident channel" in failure and "user_is_restricted" in failure
    told = texts(fake.messages(fake.im_channel("ana.garcia"))[-1])
    assert "user_is_restricted" in told
    with db.read() as session:
        unfinished = store.unfinished(session)
    assert [e.kind for e in unfinished] == [effect_kinds.INVITE]

    slack.slash_command("retry", user="ana.garcia", channel=channel)
    bot.settle()
    assert ben in fake.members(channel)
    with db.read() as session:
        assert store.unfinished(session) == []


def test_retry_on_an_incident_fully_set_up_says_so(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    said = ask(fake, bot, slack, "retry", channel)
    assert said == f":white_check_mark: {incident.ref} is set up: <#{channel}>. Nothing failed."


def test_a_refusal_for_the_whole_channel_fails_the_invitation_not_one_person(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    ben, chloe = fake.user_id("ben.okafor"), fake.user_id("chloe.martin")
    fake.fail(
        "conversations.invite",
        error="missing_scope",
        fields={"needed": "groups:write", "provided": "channels:manage"},
    )
    slack.slash_command(f"role comms <@{ben}|ben.okafor>", user="ana.garcia", channel=channel)
    slack.slash_command(f"role scribe <@{chloe}|chloe.martin>", user="ana.garcia", channel=channel)
    bot.settle()
    [missing, *_] = failures(db, incident)
    assert "missing_scope" in missing and "`groups:write`" in missing


def test_a_channel_whose_first_invitations_are_refused_is_still_the_incidents(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    fake.fail(
        "conversations.invite",
        error="missing_scope",
        fields={"needed": "groups:write", "provided": "channels:manage"},
        times=None,
    )
    slack.slash_command("Checkout returns 500s", user="ana.garcia", channel="general")
    bot.settle()
    with db.read() as session:
        [incident] = session.exec(select(Incident)).all()
        unfinished = store.unfinished(session)
    assert incident.slack_channel_id is not None and incident.summary_message_ts is not None
    assert len(fake.calls_to("conversations.create", applied=True)) == 1
    [failure] = failures(db, incident)
    assert "invite people to the incident channel" in failure and "`groups:write`" in failure
    assert [e.kind for e in unfinished] == [effect_kinds.INVITE]

    fake.clear_failures()  # the scope was added and the app reinstalled
    slack.slash_command(f"{incident.ref} retry", user="ana.garcia", channel="general")
    bot.settle()
    assert fake.user_id("ana.garcia") in fake.members(incident.slack_channel_id)


def test_a_summary_slack_will_not_let_firebreak_edit_is_replaced(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel, old = incident.slack_channel_id or "", incident.summary_message_ts or ""
    fake.fail("chat.update", error="cant_update_message", times=1)
    slack.slash_command("sev 1", user="ana.garcia", channel=channel)
    bot.settle()

    with db.read() as session:
        new = core.get_incident(session, incident.id or 0).summary_message_ts or ""
    assert new not in ("", old)
    assert "SEV1" in texts(fake.message(channel, new))
    assert fake.pins(channel) == [new]  # the stale one is unpinned
    assert failures(db, incident) == []

    before = len(fake.calls_to("chat.postMessage"))
    slack.slash_command("sev 2", user="ana.garcia", channel=channel)
    bot.settle()
    assert "SEV2" in texts(fake.message(channel, new))  # edited in place from now on
    assert len(fake.calls_to("chat.postMessage")) == before + 1  # the severity notice only


def test_a_form_slack_rate_limits_says_to_try_again_not_that_it_will_retry(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    fake.fail("views.open", error="ratelimited")
    reply = slack.slash_command("", user="ana.garcia", channel="general")
    bot.settle()
    said = answer(fake, reply)
    assert "Try again in a minute" in said
    assert "retry" not in said.replace("Try again", "")


def test_a_retry_after_on_a_server_error_is_honoured(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    before = len(fake.calls_to("chat.postMessage"))
    fake.fail("chat.postMessage", status=503, error="service_unavailable", retry_after=120)
    slack.slash_command("update failover done", user="ana.garcia", channel=channel)
    bot.settle()
    assert len(fake.calls_to("chat.postMessage")) == before + 1  # not tried again yet
    with db.read() as session:
        [waiting] = session.exec(
            select(Effect).where(col(Effect.state) == "pending", col(Effect.attempts) == 1)
        ).all()
    assert utcnow() + timedelta(seconds=100) < waiting.due_at <= utcnow() + timedelta(seconds=121)


def running_against(fake: FakeSlack, db: Database, policy: Policy, database_url: str) -> Firebreak:
    """Firebreak as ``serve`` builds it, talking to the fake Slack."""
    settings = Settings(
        DATABASE_URL=database_url,
        SLACK_BOT_TOKEN=fake.token,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=fake.api_url,
    )
    return Firebreak.create(settings, policy, database=db)


def test_a_token_slack_refuses_while_running_makes_the_service_unready(
    fake: FakeSlack, db: Database, e2e_policy: Policy, database_url: str
) -> None:
    firebreak = running_against(fake, db, e2e_policy, database_url)
    readiness = SlackReadiness(firebreak)
    assert readiness.check() and readiness.current() is None
    token = fake.token
    fake.token = "xoxb-revoked"  # the app was uninstalled, or its token revoked
    try:
        firebreak.gateway.post_message(fake.channel_id("incidents"), "hello")
    except SlackCallError as exc:
        assert exc.error == "invalid_auth"
    assert readiness.current() == (
        "slack refuses the bot token (invalid_auth): check SLACK_BOT_TOKEN"
    )
    fake.token = token
    firebreak.gateway.post_message(fake.channel_id("incidents"), "hello again")
    assert readiness.current() is None


def settled(readiness: SlackReadiness, expected: str | None) -> str | None:
    """What ``/readyz`` reports once the check it started in the background has answered."""
    deadline = time.monotonic() + 10
    while (found := readiness.current()) != expected and time.monotonic() < deadline:
        time.sleep(0.01)
    return found


def test_readiness_notices_a_revoked_token_and_its_return_without_other_slack_calls(
    fake: FakeSlack, db: Database, e2e_policy: Policy, database_url: str
) -> None:
    """Nothing else calls Slack (a quiet night): /readyz asks Slack itself from time to time,
    in the background, so a revoked token makes the pod unready, and the reinstalled app's
    token ready again; a Slack outage changes neither."""
    firebreak = running_against(fake, db, e2e_policy, database_url)
    readiness = SlackReadiness(firebreak, recheck_every=0, recheck_refused_every=0)
    assert readiness.check() and readiness.current() is None
    refused = "slack refuses the bot token (invalid_auth): check SLACK_BOT_TOKEN"
    token = fake.token
    fake.token = "xoxb-revoked"
    try:
        assert settled(readiness, refused) == refused
        fake.fail("auth.test", status=500, times=None)  # an outage: still refused
        time.sleep(0.2)
        assert readiness.current() == refused
        fake.clear_failures()
    finally:
        fake.token = token
    assert settled(readiness, None) is None
    fake.fail("auth.test", status=500, times=None)
    time.sleep(0.2)
    assert readiness.current() is None
