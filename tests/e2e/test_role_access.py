"""With ``close = ["role:commander", "admins"]``, a person refused a close cannot take the
commander role from its holder and then close: the role change is governed and recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot import incidents as core
from bot.config import AccessPolicy, Policy, PostmortemPolicy, SlackPolicy
from bot.db import Database
from bot.models import EventKind, Incident
from tests.e2e.conftest import RunningBot
from tests.e2e.helpers import ask, declare


@pytest.fixture
def e2e_policy(fake: Any, tmp_path: Path) -> Policy:
    return Policy(
        slack=SlackPolicy(announcements_channel=fake.channel_id("incidents")),
        postmortem=PostmortemPolicy(output_dir=tmp_path / "postmortems"),
        access=AccessPolicy(close=["role:commander", "admins"]),
    )


def state(db: Database, incident: Incident) -> tuple[str, dict[str, str], list[str]]:
    with db.transaction() as session:
        stored = core.get_incident(session, incident.id or 0)
        roles = core.current_roles(session, incident.id or 0)
        denied = [
            str(e.actor_id)
            for e in core.timeline(session, incident.id or 0)
            if e.kind == EventKind.PERMISSION_DENIED
        ]
    return stored.status, roles, denied


def test_taking_the_commander_role_to_close_is_refused_and_recorded(
    fake: Any, bot: RunningBot, slack: Any, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    ana, dev = fake.user_id("ana.garcia"), fake.user_id("dev.patel")
    fake.join(channel, dev)
    slack.slash_command("ic me", user="ana.garcia", channel=channel)  # vacant: free to take
    bot.settle()

    assert "You may not close incidents" in ask(fake, bot, slack, "close", channel, "dev.patel")
    refused = ask(fake, bot, slack, "ic me", channel, "dev.patel")
    assert "lets its holder close incidents" in refused
    assert "You may not close incidents" in refused
    refused_too = ask(fake, bot, slack, f"ic <@{dev}|dev.patel>", channel, "dev.patel")
    assert "lets its holder close incidents" in refused_too
    assert "You may not close incidents" in ask(fake, bot, slack, "close", channel, "dev.patel")

    status, roles, denied = state(db, incident)
    assert status == "triage"
    assert roles["commander"] == ana
    assert denied == [dev, dev, dev, dev]
    shown = ask(fake, bot, slack, "timeline", channel)
    assert f"<@{dev}> was not allowed to close" in shown  # a mention, not escaped markup
    assert "&lt;@" not in shown

    # a role that grants nothing is still free to take while vacant
    slack.slash_command("role scribe me", user="dev.patel", channel=channel)
    bot.settle()
    # the holder may hand the commander role over, and then the new commander may close
    slack.slash_command(f"ic <@{dev}|dev.patel>", user="ana.garcia", channel=channel)
    bot.settle()
    slack.slash_command("close", user="dev.patel", channel=channel)
    bot.settle()
    status, roles, denied = state(db, incident)
    assert roles == {"commander": dev, "scribe": dev}
    assert status == "closed"
    assert len(denied) == 4
