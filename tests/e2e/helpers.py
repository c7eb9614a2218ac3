"""Steps the end-to-end tests share: declare an incident from Slack, read its timeline, ask the
bot a command and read its answer."""

from __future__ import annotations

from sqlmodel import select

from bot import incidents as core
from bot.db import Database
from bot.models import Incident
from bot.sandbox import FakeSlack, SlackSimulator
from tests.e2e.conftest import RunningBot, texts


def declare(
    fake: FakeSlack,
    bot: RunningBot,
    slack: SlackSimulator,
    db: Database,
    title: str = "Checkout returns 500s",
) -> Incident:
    slack.slash_command(title, user="ana.garcia", channel="general")
    bot.settle()
    with db.transaction() as session:
        incident = session.exec(select(Incident).order_by(Incident.number.desc())).first()  # type: ignore[attr-defined]
    assert incident is not None and incident.slack_channel_id
    return incident


def declare_private(
    fake: FakeSlack, bot: RunningBot, slack: SlackSimulator, db: Database
) -> Incident:
    slack.slash_command("", user="ana.garcia", channel="general")
    bot.settle()
    [view] = fake.open_views("ana.garcia")
    slack.submit_view(
        view.id,
        {"title": "Payroll DB credentials leaked", "severity": "SEV1", "private": ["private"]},
        user="ana.garcia",
    )
    bot.settle()
    with db.transaction() as session:
        incident = session.exec(select(Incident)).one()
    assert incident.private and incident.slack_channel_id
    return incident


def kinds(db: Database, incident: Incident) -> list[str]:
    with db.transaction() as session:
        return [e.kind for e in core.timeline(session, incident.id or 0)]


def answer(fake: FakeSlack, reply: object) -> str:
    posts = fake.response_posts(reply.request.response_url)  # type: ignore[attr-defined]
    assert posts, "the bot did not answer"
    return "\n".join(texts(p.payload) for p in posts)


def ask(
    fake: FakeSlack,
    bot: RunningBot,
    slack: SlackSimulator,
    text: str,
    channel: str,
    user: str = "ana.garcia",
) -> str:
    reply = slack.slash_command(text, user=user, channel=channel)
    assert reply.status == 200
    bot.settle()
    return answer(fake, reply)
