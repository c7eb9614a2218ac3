"""``firebreak demo``: a realistic incident, end to end, with no Slack workspace needed.

The real bot runs over HTTP against the built-in fake Slack, on the database Firebreak is
configured with (``DATABASE_URL`` or ``--database-url``; SQLite's ``firebreak.db`` by default)
and with the team's policy (``./firebreak.toml`` or ``--policy``). Simulated people type
commands, click the buttons the bot posted, fill in its forms and react to messages, exactly as
Slack would send them; the demo prints what the responders see in Slack, step by step.

The incident stays in the database, so ``firebreak postmortem``, ``export`` and ``incidents``
work on it afterwards, and the demo can run again on the same database (the next run plays the
next incident number). Its files (the postmortem draft) go to ``./firebreak-demo/`` unless
``--output-dir`` says otherwise. Time is real, except where the demo moves the clock forward to
show what Firebreak does when nobody acknowledges an incident: the whole process, the bot and
the fake Slack, then runs that much later (freezegun), so every timestamp stays consistent.
"""

from __future__ import annotations

import logging
import re
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO

from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory, StepTickTimeFactory, TickingDateTimeFactory
from sqlalchemy import func, make_url
from sqlmodel import col, select

from bot import migrations
from bot.clock import utcnow
from bot.config import Policy, Settings, SeverityPolicy, format_duration
from bot.console import DemoUser
from bot.console.demo import serve_console_demo
from bot.db import Database
from bot.db_errors import describe_database
from bot.errors import ConfigError
from bot.incidents import find_incident, timeline
from bot.models import Counter, Incident
from bot.reminders import PENDING, UPDATE, incident_reminders
from bot.reminders.worker import ReminderWorker
from bot.runbooks import progress
from bot.runbooks.catalog import load_catalog
from bot.runtime import Firebreak
from bot.sandbox import FakeSlack, SlackSimulator
from bot.slack import blocks as kit
from bot.slack.flows import SlackDirectory, SlackNames
from bot.testing.harness import LocalBot

STARTER_RUNBOOKS = Path(__file__).resolve().parent / "starter_runbooks"
"""The repository's starter runbooks, shipped inside the package (a wheel has no runbooks/)."""
DEFAULT_OUTPUT_DIR = Path("firebreak-demo")
DEMO_RUNBOOK = "database-connection-exhaustion"


class Screen:
    """Prints what people see, with Slack ids turned back into names."""

    def __init__(self, fake: FakeSlack, out: TextIO) -> None:
        self.fake = fake
        self.out = out

    def person(self, user_id: str) -> str:
        """One name per person, the one Slack shows: the display name, else the real name."""
        try:
            user = self.fake.user_json(user_id)
        except Exception:
            return "@" + user_id
        profile = user.get("profile") or {}
        return "@" + str(profile.get("display_name") or user.get("real_name") or user["name"])

    def names(self, text: str) -> str:
        def user(match: re.Match[str]) -> str:
            return self.person(match.group(1))

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


def relative(delta: timedelta) -> str:
    """``+12m05s``: a time on the incident's clock, from its declaration."""
    seconds = int(delta.total_seconds())
    sign = "-" if seconds < 0 else "+"
    minutes, seconds = divmod(abs(seconds), 60)
    return f"{sign}{minutes}m{seconds:02d}s"


def demo_policy(policy: Policy, fake: FakeSlack, output_dir: Path) -> Policy:
    """The team's policy, pointed at the fake workspace: announcements in its #incidents,
    escalations to its @oncall group, the postmortem draft into the demo's directory."""
    slack = policy.slack.model_copy(update={"announcements_channel": fake.channel_id("incidents")})
    reminders = policy.reminders.model_copy(
        update={
            "escalate_to": ["@oncall"],
            "escalate_again_to": ["@incident-commanders"],
            "escalation_channel": None,
            "digest_channel": None,
        }
    )
    postmortem = policy.postmortem.model_copy(update={"output_dir": output_dir.resolve()})
    return policy.model_copy(
        update={"slack": slack, "reminders": reminders, "postmortem": postmortem}
    )


def declared_severity(policy: Policy) -> SeverityPolicy:
    """The demo declares at the second severity and raises it to the first."""
    return policy.severities[1] if len(policy.severities) > 1 else policy.severities[0]


def escalation_wait(policy: Policy) -> timedelta:
    """How far the demo moves the clock: just past the declared severity's ack deadline."""
    ack_within = declared_severity(policy).ack_within
    return ack_within + timedelta(seconds=5) if ack_within is not None else timedelta(0)


def runbook_directories(policy: Policy) -> tuple[list[Path], str]:
    """The policy's runbook directories, or the starter runbooks when none of them exists
    (an installed Firebreak run in an empty directory)."""
    configured = [policy.resolve_path(p) for p in policy.runbooks.paths]
    present = [path for path in configured if path.is_dir()]
    if present:
        return present, ", ".join(str(p) for p in present)
    return [STARTER_RUNBOOKS], "the starter runbooks shipped with Firebreak"


@dataclass
class Stage:
    """What the demo plays on: the fake workspace, the bot, the screen and the clock."""

    fake: FakeSlack
    slack: SlackSimulator
    bot: LocalBot
    screen: Screen
    clock: TickingDateTimeFactory | StepTickTimeFactory | FrozenDateTimeFactory
    seen: dict[str, int]

    def person(self, handle: str) -> str:
        return self.screen.person(self.fake.user_id(handle))

    def mention(self, handle: str) -> str:
        return f"<@{self.fake.user_id(handle)}|{handle}>"

    def show_new(self, channel: str, label: str) -> None:
        messages = self.fake.messages(channel)
        for message in messages[self.seen.get(channel, 0) :]:
            self.screen.message(
                f"{label} · {self.screen.person(message.user)}", message.text, message.blocks
            )
        self.seen[channel] = len(messages)

    def show_answers(self) -> None:
        """What the bot answered only to the person who acted (response URLs)."""
        posts = self.fake.response_posts()
        for post in posts[self.seen.get("responses", 0) :]:
            if post.payload.get("text") or post.payload.get("blocks"):
                self.screen.message(
                    "only visible to the person who asked",
                    str(post.payload.get("text", "")),
                    list(post.payload.get("blocks") or []),
                )
        self.seen["responses"] = len(posts)


class Demo:
    def __init__(
        self,
        out: TextIO,
        database_url: str,
        policy: Policy,
        output_dir: Path,
        hint_url: bool,
        serve_port: int | None = None,
    ) -> None:
        self.out = out
        self.database_url = database_url
        self.policy = policy
        self.output_dir = output_dir
        self.hint_url = hint_url
        self.serve_port = serve_port

    def run(self) -> int:
        logging.basicConfig(level=logging.ERROR, format="  (firebreak log) %(message)s")
        secret = secrets.token_hex(16)
        migrations.upgrade(self.database_url)
        # The clock starts in the past by as much as the demo moves it forward, so the
        # incident ends now and no time it shows lies in the future.
        with (
            freeze_time(utcnow() - escalation_wait(self.policy), tick=True) as clock,
            FakeSlack(team_name="Acme Corp", team_domain="acme") as fake,
        ):
            policy = demo_policy(self.policy, fake, self.output_dir)
            settings = Settings(
                DATABASE_URL=self.database_url,
                SLACK_BOT_TOKEN=fake.token,
                SLACK_SIGNING_SECRET=secret,
                SLACK_API_URL=fake.api_url,
            )
            directories, runbooks_from = runbook_directories(policy)
            catalog = load_catalog(policy, extra=directories)
            firebreak = Firebreak.create(settings, policy, catalog=catalog)
            try:
                played = demo_incidents(firebreak.db)
            except BaseException:
                firebreak.close()
                raise
            bot = LocalBot(firebreak, signing_secret=secret).start()
            screen = Screen(fake, self.out)
            try:
                stage = Stage(
                    fake, SlackSimulator(fake, bot.events_url, secret), bot, screen, clock, {}
                )
                self.play(stage, runbooks_from)
                if self.serve_port is not None:
                    self.serve_console(fake, firebreak, policy, screen, self.serve_port)
            finally:
                bot.stop()
                count_demo_incidents(firebreak.db, played)
                firebreak.close()
        return 0

    def serve_console(
        self, fake: FakeSlack, firebreak: Firebreak, policy: Policy, screen: Screen, port: int
    ) -> None:
        """Keep the fake Slack and the bot running and serve the web console over the demo's
        data, with a demo sign-in as one of the demo's people, until Ctrl-C."""
        users = [
            DemoUser(fake.user_id("ana.garcia"), "Ana García", "workspace admin: sees everything"),
            DemoUser(fake.user_id("chloe.martin"), "Chloé Martin", "responder"),
        ]
        screen.say()
        serve_console_demo(
            firebreak.db,
            policy,
            directory=SlackDirectory(firebreak.gateway),
            names=SlackNames(firebreak.gateway),
            users=users,
            port=port,
            announce=screen.say,
        )

    # ----------------------------------------------------------------------------------------

    def play(self, stage: Stage, runbooks_from: str) -> None:
        fake, slack, bot, screen = stage.fake, stage.slack, stage.bot, stage.screen
        policy = bot.firebreak.policy
        db = bot.firebreak.db
        backend = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}.get(db.backend, db.backend)
        where = describe_database(self.database_url)
        screen.say(f"Firebreak demo: the real bot, on {backend}, against a fake Slack workspace.")
        screen.say(f"Database: {where} (the incident is kept there)")
        screen.say(f"Runbooks: {len(bot.firebreak.catalog or [])} from {runbooks_from}")
        screen.say(f"Files: {self.output_dir.resolve()}")

        ana, ben, chloe = "ana.garcia", "ben.okafor", "chloe.martin"
        severities = policy.severities
        declared_as = declared_severity(policy)
        started = utcnow()
        with db.read() as session:
            before = session.exec(select(Incident.id).order_by(col(Incident.id).desc())).first()

        def act(who: str, what: str, action: Callable[[], object], channel: str = "") -> None:
            screen.step(stage.person(who), what)
            action()
            bot.settle()
            stage.show_answers()
            if channel:
                stage.show_new(channel, label)
            stage.show_new(fake.channel_id("incidents"), "#incidents")

        # -- declare
        label = ""
        screen.step(stage.person(ana), "types /incident in #general and fills in the form")
        slack.slash_command("", user=ana, channel="general")
        bot.settle()
        [form] = fake.open_views(ana)
        screen.say("   (the Declare form opens: title, severity, impact, service, responders …)")
        impact_started = started - timedelta(minutes=35)
        slack.submit_view(
            form.id,
            {
                "title": "Checkout returns 500s for EU customers",
                "severity": declared_as.key,
                "summary": "Card payments from the EU fail with HTTP 500 since about "
                f"{impact_started:%H:%M} UTC.",
                "service": "payments-api",
                "impact_started": int(impact_started.timestamp()),
                "responders": [fake.user_id(ben), fake.user_id(chloe)],
            },
            user=ana,
        )
        bot.settle()
        with db.read() as session:
            incident = session.exec(
                select(Incident).where(col(Incident.id) > (before or 0)).order_by(col(Incident.id))
            ).first()
        if incident is None:
            stage.show_answers()
            screen.say("   The incident was not declared; see the messages above.")
            return
        ref = incident.ref
        channel = incident.slack_channel_id or ""
        summary_ts = incident.summary_message_ts or ""
        label = f"#{incident.slack_channel_name}"
        stage.show_answers()
        stage.show_new(channel, label)
        stage.show_new(fake.channel_id("incidents"), "#incidents")

        # -- nobody acknowledges: the clock moves on and Firebreak escalates
        if declared_as.ack_within is not None:
            wait = escalation_wait(policy)
            screen.step(
                f"{format_duration(declared_as.ack_within)} pass",
                f"and nobody has acknowledged {ref} (the demo moves the clock forward)",
            )
            stage.clock.tick(wait)
            ReminderWorker(db, policy, worker_id="firebreak-demo").tick()
            bot.settle()
            stage.show_new(channel, label)

        act(
            ben,
            "clicks [Acknowledge / I'm IC] on the pinned summary",
            lambda: slack.click(channel, summary_ts, kit.ACK_IC, user=ben),
            channel,
        )
        if severities[0].key != declared_as.key:
            act(
                ana,
                f"types /incident sev {severities[0].key}  (all EU card payments are failing)",
                lambda: slack.slash_command(f"sev {severities[0].key}", user=ana, channel=channel),
                channel,
            )
        if policy.find_role("scribe") is not None:
            act(
                ben,
                f"types /incident role scribe {stage.person(chloe)}",
                lambda: slack.slash_command(
                    f"role scribe {stage.mention(chloe)}", user=ben, channel=channel
                ),
                channel,
            )
        act(
            ben,
            "types /incident update Investigating 500s from payments-api; rollback of deploy "
            "4512 under consideration",
            lambda: slack.slash_command(
                "update Investigating 500s from payments-api; rollback of deploy 4512 under "
                "consideration.",
                user=ben,
                channel=channel,
            ),
            channel,
        )
        self.next_update(stage, incident.id or 0)

        screen.step(
            stage.person(chloe),
            f"posts a finding, and {stage.person(ana)} pins it to the timeline with :pushpin:",
        )
        said, _ = slack.say(
            channel,
            chloe,
            "payments-db: connections at 100% of max_connections for 30 minutes, "
            "pool wait p99 4.8s",
        )
        slack.react(channel, said, user=ana, reaction="pushpin")
        bot.settle()
        stage.show_new(channel, label)

        catalog = bot.firebreak.catalog
        if catalog is not None and catalog.get(DEMO_RUNBOOK) is not None:
            act(
                ben,
                "types /incident runbook database connection",
                lambda: slack.slash_command(
                    "runbook database connection", user=ben, channel=channel
                ),
                channel,
            )
            self.walk_runbook(stage, incident.id or 0, channel, label, ben)

        if policy.find_status("identified") is not None:
            act(
                ben,
                "sets the status to Identified from the summary",
                lambda: slack.click(channel, summary_ts, kit.STATUS, user=ben, value="identified"),
                channel,
            )
        screen.step(stage.person(ben), "says what he is doing, and Chloé pins it")
        said, _ = slack.say(
            channel,
            ben,
            "Rolling back deploy 4512 (connection pool size regression). ETA 5 minutes.",
        )
        slack.react(channel, said, user=chloe, reaction="pushpin")
        bot.settle()
        stage.show_new(channel, label)
        act(
            ben,
            "marks it mitigated: /incident mitigate",
            lambda: slack.slash_command("mitigate", user=ben, channel=channel),
            channel,
        )
        act(
            chloe,
            f"adds an action item for {stage.person(chloe)}",
            lambda: slack.slash_command(
                f"action Alert on connection pool saturation {stage.mention(chloe)} friday",
                user=chloe,
                channel=channel,
            ),
            channel,
        )
        act(
            ben,
            "types /incident update Rolled back deploy 4512; error rate back to baseline",
            lambda: slack.slash_command(
                "update Rolled back deploy 4512; error rate back to baseline for 30 minutes. "
                "Resolving; the postmortem follows.",
                user=ben,
                channel=channel,
            ),
            channel,
        )
        act(
            ben,
            "resolves: /incident resolve error rate back to baseline for 30 min",
            lambda: slack.slash_command(
                "resolve error rate back to baseline for 30 min", user=ben, channel=channel
            ),
            channel,
        )
        act(
            ben,
            "closes: /incident close",
            lambda: slack.slash_command("close", user=ben, channel=channel),
            channel,
        )
        self.epilogue(stage, ref, channel, summary_ts, label)

    def next_update(self, stage: Stage, incident_id: int) -> None:
        with stage.bot.firebreak.db.read() as session:
            due = [
                r.due_at
                for r in incident_reminders(session, incident_id)
                if r.kind == UPDATE and r.state == PENDING
            ]
        if due:
            minutes = round(max(due[0] - utcnow(), timedelta(0)).total_seconds() / 60)
            stage.screen.say(
                f"   (next update due in {minutes} min, at {due[0]:%H:%M} UTC: if none is "
                "posted by then, Firebreak nudges the commander)"
            )

    def walk_runbook(
        self, stage: Stage, incident_id: int, channel: str, label: str, who: str
    ) -> None:
        fake, slack, bot, screen = stage.fake, stage.slack, stage.bot, stage.screen
        screen.step(stage.person(who), f"starts it: /incident runbook {DEMO_RUNBOOK}")
        slack.slash_command(f"runbook {DEMO_RUNBOOK}", user=who, channel=channel)
        bot.settle()
        with bot.firebreak.db.read() as session:
            runs = progress.list_runs(session, incident_id)
        stage.show_answers()
        if not runs:
            return
        run = runs[-1]
        stage.show_new(channel, label)
        chloe = fake.user_id("chloe.martin")
        for step, person, verb, value in (
            (0, who, "done", None),
            (1, "chloe.martin", "done", None),
            (2, who, "assign", chloe),
        ):
            screen.step(stage.person(person), f"clicks {verb.title()} on step {step + 1}")
            slack.click(
                channel,
                run.slack_message_ts or "",
                f"runbook:{verb}:{run.id}:{step}",
                user=person,
                value=value,
            )
            bot.settle()
            stage.show_answers()
            screen.say("   (the runbook message is edited in place; its progress now reads:)")
            message = fake.message(channel, run.slack_message_ts or "")
            screen.blocks(message.blocks[:2])
        stage.seen[channel] = len(fake.messages(channel))

    def epilogue(self, stage: Stage, ref: str, channel: str, summary_ts: str, label: str) -> None:
        fake, bot, screen = stage.fake, stage.bot, stage.screen
        screen.step("everyone", "sees the pinned summary, edited in place all along:")
        screen.blocks(fake.message(channel, summary_ts).blocks)
        with bot.firebreak.db.read() as session:
            incident = find_incident(session, ref)
            events = timeline(session, incident.id or 0)
        screen.step("#incidents", "shows one announcement, kept up to date:")
        announcement = fake.message(fake.channel_id("incidents"), incident.announcement_ts or "")
        screen.blocks(announcement.blocks)

        screen.step(
            "the timeline",
            f"of {ref} ({len(events)} events; times from the declaration, which was at "
            f"{incident.declared_at:%H:%M} UTC):",
        )
        for event in events:
            who = f"{screen.person(event.actor_id)} " if event.actor_id else ""
            text = screen.names(event.text).replace("\n", " ")
            offset = relative(event.occurred_at - incident.declared_at)
            screen.say(f"   {offset:>9} {event.kind:<20} {who}{text[:80]}")

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
        written = sorted(self.output_dir.glob(f"{ref}-v*.md"))
        if written:
            screen.say(f"The draft is also in {written[-1].resolve()}.")
        prefix = f"DATABASE_URL='{shown_url(self.database_url)}' " if self.hint_url else ""
        screen.say(
            f"Done. {ref} is kept in {describe_database(self.database_url)}; try "
            f"`{prefix}firebreak postmortem {ref}`, `{prefix}firebreak export {ref}` or "
            f"`{prefix}firebreak incidents --all`. Running the demo again plays the next incident."
        )
        screen.say(
            "Run it for real: create the Slack app from slack-manifest.yaml, set "
            "SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET, and `firebreak serve`."
        )


def shown_url(url: str) -> str:
    """The database URL to print: its password never (``***`` in its place)."""
    return make_url(url).render_as_string(hide_password=True)


DEMO_COUNTER = "demo_incidents"
"""How many of the database's incidents the demo made (``counters``)."""


def demo_incidents(db: Database) -> int:
    """The demo's incidents so far, if every incident of the database is the demo's. The demo's
    bot works through all of the database's pending Slack work and reminders against a fake
    Slack: run on a database holding incidents it did not make, it would give them channels
    that do not exist and remind their people in a workspace nobody reads."""
    with db.read() as session:
        incidents = session.exec(select(func.count()).select_from(Incident)).one()
        counter = session.get(Counter, DEMO_COUNTER)
    played = counter.value if counter is not None else 0
    if incidents != played:
        raise ConfigError(
            f"{describe_database(db.url)} holds {incidents - played} incident(s) not recorded "
            "as the demo's; the demo plays against a fake Slack and would act on them. Run it "
            "on a database of its own: firebreak demo --database-url sqlite:///firebreak-demo.db"
        )
    return played


def count_demo_incidents(db: Database, played: int) -> None:
    """Every incident the database holds is now the demo's: it held only the demo's before,
    and only the demo's bot ran on it since."""
    with db.transaction() as session:
        incidents = session.exec(select(func.count()).select_from(Incident)).one()
        counter = session.get(Counter, DEMO_COUNTER) or Counter(name=DEMO_COUNTER)
        counter.value = max(incidents, played)
        session.add(counter)


def run_demo(
    database_url: str,
    out: TextIO | None = None,
    *,
    policy: Policy | None = None,
    output_dir: Path = DEFAULT_OUTPUT_DIR,
    hint_url: bool = False,
    serve_port: int | None = None,
) -> int:
    """Play the demo on ``database_url`` with ``policy`` (the defaults when ``None``); with
    ``serve_port``, then serve the web console over it on that port until Ctrl-C."""
    return Demo(
        out or sys.stdout, database_url, policy or Policy(), output_dir, hint_url, serve_port
    ).run()
