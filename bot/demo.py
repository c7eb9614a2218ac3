"""``firebreak demo``: a realistic incident, end to end, with no Slack workspace needed.

The real bot runs over HTTP on SQLite against the built-in fake Slack. Simulated people type
commands, click the buttons the bot posted, fill in its forms and react to messages, exactly as
Slack would send them; the demo prints what the responders see in Slack as it happens.
"""

from __future__ import annotations

import re
import secrets
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from bot.config import Policy, Settings, SlackPolicy
from bot.incidents import timeline
from bot.runtime import Firebreak
from bot.slack import blocks as kit
from bot.local_slack import FakeSlack, SlackSimulator
from bot.testing.harness import LocalBot

WIDTH = 88


class Screen:
    """Prints what people see, with Slack ids turned back into names."""

    def __init__(self, fake: FakeSlack, out: TextIO) -> None:
        self.fake = fake
        self.out = out

    def names(self, text: str) -> str:
        def user(match: re.Match[str]) -> str:
            try:
                return "@" + str(self.fake.user_json(match.group(1))["name"])
            except Exception:
                return "@" + match.group(1)

        def channel(match: re.Match[str]) -> str:
            try:
                return "#" + str(self.fake.channel_json(match.group(1))["name"])
            except Exception:
                return "#" + match.group(1)

        text = re.sub(r"<!date\^\d+\^[^|>]*\|([^>]*)>", r"\1", text)
        text = re.sub(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>", user, text)
        text = re.sub(r"<#([CG][A-Z0-9]+)(?:\|[^>]*)?>", channel, text)
        text = re.sub(r"<!subteam\^[A-Z0-9]+\|?([^>]*)>", r"\1", text)
        text = re.sub(r"<(https?://[^|>]+)\|([^>]+)>", r"\2 (\1)", text)
        return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")

    def say(self, line: str = "") -> None:
        print(line, file=self.out)

    def step(self, who: str, what: str) -> None:
        self.say()
        self.say(f"── {who} {what}")

    def blocks(self, blocks: list[dict[str, Any]], indent: str = "   │ ") -> None:
        for block in blocks:
            kind = block.get("type")
            if kind == "header":
                self.say(indent + self.names(block["text"]["text"]).upper())
            elif kind == "section":
                if block.get("text"):
                    for line in self.names(block["text"]["text"]).splitlines():
                        self.say(indent + line)
                fields = [
                    self.names(f["text"]).replace("\n", ": ", 1).replace("\n", ", ")
                    for f in block.get("fields", [])
                ]
                for left, right in zip(fields[::2], [*fields[1::2], ""], strict=False):
                    self.say(indent + f"{left:<40} {right}")
            elif kind == "actions":
                labels = []
                for element in block.get("elements", []):
                    if element.get("type") == "button":
                        labels.append(f"[{element['text']['text']}]")
                    elif element.get("placeholder"):
                        labels.append(f"[{element['placeholder']['text']} ▾]")
                self.say(indent + " ".join(labels))
            elif kind == "context":
                self.say(
                    indent
                    + "  "
                    + " ".join(self.names(e.get("text", "")) for e in block.get("elements", []))
                )
            elif kind == "divider":
                self.say(indent + "─" * 40)

    def message(self, where: str, text: str, blocks: list[dict[str, Any]]) -> None:
        self.say(f"   {where}")
        shown = {"header", "section", "actions", "context", "divider"}
        if any(block.get("type") in shown for block in blocks):
            self.blocks(blocks)
        else:
            for line in self.names(text).splitlines():
                self.say(f"   │ {line}")


class Demo:
    def __init__(self, out: TextIO, database_url: str) -> None:
        self.out = out
        self.database_url = database_url

    def run(self) -> int:
        import logging

        logging.basicConfig(level=logging.ERROR, format="  (firebreak log) %(message)s")
        secret = secrets.token_hex(16)
        with FakeSlack(team_name="Acme Corp", team_domain="acme") as fake:
            policy = Policy(slack=SlackPolicy(announcements_channel=fake.channel_id("incidents")))
            settings = Settings(
                DATABASE_URL=self.database_url,
                SLACK_BOT_TOKEN=fake.token,
                SLACK_SIGNING_SECRET=secret,
                SLACK_API_URL=fake.api_url,
            )
            from bot import migrations
            from bot.slack.runbooks import load_catalog

            migrations.upgrade(settings.database_url)
            firebreak = Firebreak.create(
                settings,
                policy,
                catalog=load_catalog(
                    policy, extra=[Path(__file__).resolve().parent.parent / "runbooks"]
                ),
            )
            bot = LocalBot(firebreak, signing_secret=secret).start()
            try:
                self.play(
                    fake, SlackSimulator(fake, bot.events_url, secret), bot, Screen(fake, self.out)
                )
            finally:
                bot.stop()
                firebreak.close()
        return 0

    def play(self, fake: FakeSlack, slack: SlackSimulator, bot: LocalBot, screen: Screen) -> None:
        db = bot.firebreak.db
        seen: dict[str, int] = {}

        def new_messages(channel: str, label: str) -> None:
            messages = fake.messages(channel)
            for message in messages[seen.get(channel, 0) :]:
                screen.message(
                    f"{label} · @{fake.user_json(message.user)['name']}",
                    message.text,
                    message.blocks,
                )
            seen[channel] = len(messages)

        def answers(user: str) -> None:
            for post in fake.response_posts():
                key = f"response:{id(post)}"
                if key in seen:
                    continue
                seen[key] = 1
                if post.payload.get("text") or post.payload.get("blocks"):
                    screen.message(
                        f"only visible to @{user}",
                        str(post.payload.get("text", "")),
                        list(post.payload.get("blocks") or []),
                    )

        def act(who: str, what: str, action: Callable[[], object]) -> None:
            screen.step(who, what)
            action()
            bot.settle()

        ana, ben, chen = "ana.garcia", "ben.okafor", "chloe.martin"
        screen.say("Firebreak demo: the real bot, on SQLite, against a fake Slack workspace.")
        screen.say(f"Database: {self.database_url}")

        act(ana, "types /incident in #general and fills in the form", lambda: None)
        slack.slash_command("", user=ana, channel="general")
        bot.settle()
        [form] = fake.open_views(ana)
        screen.say("   (the Declare form opens: title, severity, impact, service, responders …)")
        slack.submit_view(
            form.id,
            {
                "title": "Checkout returns 500s for EU customers",
                "severity": "SEV2",
                "summary": "Card payments from the EU fail with HTTP 500 since about 02:40 UTC.",
                "service": "payments-api",
                "impact_started": int(fake.now().timestamp()) - 35 * 60,
                "responders": [fake.user_id(ben), fake.user_id(chen)],
            },
            user=ana,
        )
        bot.settle()
        with db.transaction() as session:
            from bot.incidents import find_incident

            incident = find_incident(session, "INC-1")
        channel = incident.slack_channel_id or ""
        summary_ts = incident.summary_message_ts or ""
        label = f"#{incident.slack_channel_name}"
        answers(ana)
        new_messages(channel, label)
        new_messages(fake.channel_id("incidents"), "#incidents")

        act(
            ben,
            "clicks [Acknowledge / I'm IC] on the pinned summary",
            lambda: slack.click(channel, summary_ts, kit.ACK_IC, user=ben),
        )
        new_messages(channel, label)

        act(
            ana,
            "types /incident sev 1  (all EU card payments are failing)",
            lambda: slack.slash_command("sev 1", user=ana, channel=channel),
        )
        act(
            ben,
            f"types /incident role scribe @{chen}",
            lambda: slack.slash_command(
                f"role scribe <@{fake.user_id(chen)}|{chen}>", user=ben, channel=channel
            ),
        )
        new_messages(channel, label)

        act(
            ben,
            "types /incident update Investigating 500s from payments-api; rollback "
            "of deploy 4512 under consideration",
            lambda: slack.slash_command(
                "update Investigating 500s from payments-api; rollback of deploy 4512 under "
                "consideration. Next update 03:15 UTC.",
                user=ben,
                channel=channel,
            ),
        )
        new_messages(channel, label)

        screen.step(chen, "posts a finding, and Ana pins it to the timeline with :pushpin:")
        said, _ = slack.say(
            channel,
            chen,
            "payments-db: connections at 100% of max_connections since 02:41, pool wait p99 4.8s",
        )
        slack.react(channel, said, user=ana, reaction="pushpin")
        bot.settle()
        new_messages(channel, label)

        if bot.firebreak.catalog is not None:
            act(
                ben,
                "types /incident runbook database connection",
                lambda: slack.slash_command(
                    "runbook database connection", user=ben, channel=channel
                ),
            )
            answers(ben)
            self.walk_runbook(fake, slack, bot, screen, channel, label, new_messages, ben)

        act(
            ben,
            "sets the status to Identified from the summary",
            lambda: slack.click(channel, summary_ts, kit.STATUS, user=ben, value="identified"),
        )
        said, _ = slack.say(
            channel,
            ben,
            "Rolling back deploy 4512 (connection pool size regression). ETA 5 minutes.",
        )
        slack.react(channel, said, user=chen, reaction="pushpin")
        act(
            ben,
            "marks it mitigated: /incident mitigate",
            lambda: slack.slash_command("mitigate", user=ben, channel=channel),
        )
        act(
            chen,
            f"adds an action item for @{chen}",
            lambda: slack.slash_command(
                f"action Alert on connection pool saturation <@{fake.user_id(chen)}|{chen}> friday",
                user=chen,
                channel=channel,
            ),
        )
        answers(chen)
        new_messages(channel, label)

        act(
            ben,
            "resolves, then closes the incident",
            lambda: slack.slash_command(
                "resolve error rate back to baseline for 30 min", user=ben, channel=channel
            ),
        )
        slack.slash_command("close", user=ben, channel=channel)
        bot.settle()
        new_messages(channel, label)

        screen.step("everyone", "sees the pinned summary, edited in place all along:")
        summary = fake.message(channel, summary_ts)
        screen.blocks(summary.blocks)
        screen.step("#incidents", "shows one announcement, kept up to date:")
        with db.transaction() as session:
            incident = find_incident(session, "INC-1")
            events = timeline(session, incident.id or 0)
        announcement = fake.message(fake.channel_id("incidents"), incident.announcement_ts or "")
        screen.blocks(announcement.blocks)

        screen.step("the timeline", f"of {incident.ref} ({len(events)} events, UTC):")
        for event in events:
            who = ""
            if event.actor_id:
                try:
                    who = "@" + str(fake.user_json(event.actor_id)["name"]) + " "
                except Exception:
                    who = ""
            text = screen.names(event.text).replace("\n", " ")
            screen.say(f"   {event.occurred_at:%H:%M:%S} {event.kind:<18} {who}{text[:90]}")

        files = fake.files()
        if files:
            draft = (files[-1].content or b"").decode("utf-8")
            screen.step(
                "the postmortem draft",
                f"uploaded to {label} ({len(draft.splitlines())} lines); its opening:",
            )
            for line in draft.splitlines()[:24]:
                screen.say(f"   │ {line}")
        screen.say()
        screen.say(
            "Done. Run it for real: create the Slack app from slack-manifest.yaml, set "
            "SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET, and `firebreak serve --migrate`."
        )

    def walk_runbook(
        self,
        fake: FakeSlack,
        slack: SlackSimulator,
        bot: LocalBot,
        screen: Screen,
        channel: str,
        label: str,
        new_messages: Callable[[str, str], None],
        who: str,
    ) -> None:
        from bot.runbooks import progress

        runbook = "database-connection-exhaustion"
        screen.step(who, f"starts it: /incident runbook {runbook}")
        slack.slash_command(f"runbook {runbook}", user=who, channel=channel)
        bot.settle()
        with bot.firebreak.db.transaction() as session:
            runs = progress.list_runs(session, 1)
        if not runs:
            return
        run = runs[0]
        new_messages(channel, label)
        chloe = fake.user_id("chloe.martin")
        for step, person, verb, value in (
            (0, who, "done", None),
            (1, "chloe.martin", "done", None),
            (2, who, "assign", chloe),
            (3, who, "skip", None),
        ):
            screen.step(person, f"clicks {verb.title()} on step {step + 1}")
            slack.click(
                channel,
                run.slack_message_ts or "",
                f"runbook:{verb}:{run.id}:{step}",
                user=person,
                value=value,
            )
            bot.settle()
        screen.say("   (the runbook message is edited in place; it now reads:)")
        screen.blocks(fake.message(channel, run.slack_message_ts or "").blocks[:8])
        screen.say("   │ …")


def run_demo(database_url: str | None = None, out: TextIO | None = None) -> int:
    stream = out or sys.stdout
    if database_url is not None:
        return Demo(stream, database_url).run()
    with tempfile.TemporaryDirectory(prefix="firebreak-demo-") as tmp:
        return Demo(stream, f"sqlite:///{Path(tmp) / 'firebreak-demo.db'}").run()
