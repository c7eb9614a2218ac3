"""Walking runbooks from Slack: suggestions on declare, Done / Skip / Assign, pages, restarts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from bot import incidents as core
from bot.config import Policy, Settings
from bot.db import Database
from bot.models import EventKind, RunbookRun, RunbookStepState
from bot.runbooks import progress
from bot.runbooks.catalog import RunbookCatalog, load_catalog
from bot.runtime import Firebreak
from bot.sandbox import FakeSlack, SlackSimulator
from bot.slack import blocks
from bot.testing.harness import LocalBot
from tests.e2e.conftest import ROOT, SECRET, texts
from tests.e2e.helpers import ask, declare


def run_of(db: Database) -> RunbookRun:
    with db.transaction() as session:
        run = session.exec(select(RunbookRun)).first()
    assert run is not None
    return run


def test_suggested_runbook_starts_and_walks_step_by_step(
    fake: FakeSlack, bot: LocalBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db, title="Disk full on db-3, writes failing")
    channel = incident.slack_channel_id or ""
    [suggestions] = [m for m in fake.messages(channel) if "may help" in texts(m)]
    assert "Disk full" in texts(suggestions)
    start = next(
        e["action_id"]
        for b in suggestions.blocks
        if b.get("accessory")
        for e in [b["accessory"]]
        if "Disk full" in b["text"]["text"]
    )
    slack.click(channel, suggestions.ts, start, user="ana.garcia")
    bot.settle()
    run = run_of(db)
    assert run.runbook_id == "disk-full" and run.slack_message_ts
    message = fake.message(channel, run.slack_message_ts)
    assert f"0/{run.step_count} done" in texts(message)

    ben = fake.user_id("ben.okafor")
    fake.join(channel, ben)
    slack.click(channel, run.slack_message_ts, f"runbook:done:{run.id}:0", user="ana.garcia")
    slack.click(channel, run.slack_message_ts, f"runbook:skip:{run.id}:1", user="ana.garcia")
    slack.click(
        channel, run.slack_message_ts, f"runbook:assign:{run.id}:2", user="ana.garcia", value=ben
    )
    bot.settle()
    message = fake.message(channel, run.slack_message_ts)
    assert f"1/{run.step_count} done, 1 skipped, 1 in progress" in texts(message)
    assert f"<@{ben}>" in texts(message)
    with db.transaction() as session:
        steps = [
            e for e in core.timeline(session, incident.id or 0) if e.kind == EventKind.RUNBOOK_STEP
        ]
    assert [e.data["state"] for e in steps] == ["done", "skipped", "in_progress"]
    # Slack notifies nobody of a mention added by an edit: Ben is told in the channel, once.
    ana = fake.user_id("ana.garcia")
    told = [
        texts(m)
        for m in fake.messages(channel)
        if f"<@{ben}>, step 3 of *Disk full* is yours (assigned by <@{ana}>): " in texts(m)
    ]
    assert len(told) == 1 and str(steps[2].data["step_title"])[:20] in told[0]
    # the pinned summary shows runbook progress too
    # ... said the same way as the runbook's own message
    summary = texts(fake.message(channel, incident.summary_message_ts or ""))
    assert f"Disk full: 1/{run.step_count} done, 1 skipped, 1 in progress" in summary


def test_two_people_clicking_the_same_step_make_one_result(
    fake: FakeSlack, bot: LocalBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    slack.slash_command("runbook high-error-rate", user="ana.garcia", channel=channel)
    bot.settle()
    run = run_of(db)
    fake.join(channel, fake.user_id("ben.okafor"))
    with ThreadPoolExecutor(6) as pool:
        list(
            pool.map(
                lambda user: slack.click(
                    channel, run.slack_message_ts or "", f"runbook:done:{run.id}:0", user=user
                ),
                ["ana.garcia", "ben.okafor"] * 3,
            )
        )
    bot.settle()
    with db.transaction() as session:
        steps = [
            e for e in core.timeline(session, incident.id or 0) if e.kind == EventKind.RUNBOOK_STEP
        ]
    assert len(steps) == 1


def test_starting_twice_keeps_one_run_and_progress_survives_a_restart(
    fake: FakeSlack, bot: LocalBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    channel = incident.slack_channel_id or ""
    slack.slash_command("runbook bad-deploy-rollback", user="ana.garcia", channel=channel)
    bot.settle()
    again = slack.slash_command("runbook bad-deploy-rollback", user="ana.garcia", channel=channel)
    bot.settle()
    assert "already running" in texts(fake.response_posts(again.request.response_url)[0].payload)
    run = run_of(db)
    slack.click(channel, run.slack_message_ts or "", f"runbook:done:{run.id}:0", user="ana.garcia")
    bot.settle()

    # a new process (a restart, or another replica) continues from the database
    bot.stop()
    replacement = LocalBot(bot.firebreak, signing_secret=SECRET).start()
    try:
        other = SlackSimulator(fake, replacement.events_url, SECRET)
        other.click(
            channel, run.slack_message_ts or "", f"runbook:done:{run.id}:1", user="ana.garcia"
        )
        replacement.settle()
    finally:
        replacement.stop()
    with db.transaction() as session:
        states = session.exec(
            select(RunbookStepState)
            .where(RunbookStepState.run_id == run.id)
            .order_by(col(RunbookStepState.step_index))
        ).all()
        runs = session.exec(select(RunbookRun)).all()
    assert [s.state for s in states[:3]] == ["done", "done", "pending"]
    assert len(runs) == 1
    assert f"2/{run.step_count} done" in texts(fake.message(channel, run.slack_message_ts or ""))


def test_runbook_search_lists_matches_with_start_buttons(
    fake: FakeSlack, bot: LocalBot, slack: SlackSimulator, db: Database
) -> None:
    incident = declare(fake, bot, slack, db)
    reply = slack.slash_command(
        "runbook kafka lag", user="ana.garcia", channel=incident.slack_channel_id or ""
    )
    bot.settle()
    [post] = fake.response_posts(reply.request.response_url)
    assert "Message-queue consumer lag" in texts(post.payload) or "Kafka" in texts(post.payload)
    assert any(
        str(e.get("action_id", "")).startswith(blocks.START_SUGGESTED)
        for b in post.payload["blocks"]
        for e in [b.get("accessory") or {}]
    )
    nothing = slack.slash_command(
        "runbook zzzz qqqq", user="ana.garcia", channel=incident.slack_channel_id or ""
    )
    bot.settle()
    assert "No runbook matches" in texts(
        fake.response_posts(nothing.request.response_url)[0].payload
    )


TRICKY_TITLE = "Purge *.gz logs in ~/cache_dir <!channel>"


@pytest.fixture
def tricky_bot(
    fake: FakeSlack, db: Database, e2e_policy: Policy, database_url: str, tmp_path: Path
) -> Iterator[LocalBot]:
    """The bot with one more runbook, whose title holds mrkdwn control characters and a
    broadcast mention."""
    extra = tmp_path / "runbooks"
    extra.mkdir()
    (extra / "purge-logs.md").write_text(
        f"---\ntitle: {TRICKY_TITLE}\n---\n\n## Steps\n\n- [ ] Find the biggest files\n"
        "- [ ] Delete the old ones\n"
    )
    settings = Settings(
        DATABASE_URL=database_url,
        SLACK_BOT_TOKEN=fake.token,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=fake.api_url,
    )
    catalog = load_catalog(e2e_policy, extra=[ROOT / "runbooks", extra])
    running = LocalBot(
        Firebreak.create(settings, e2e_policy, database=db, catalog=catalog),
        signing_secret=SECRET,
    ).start()
    yield running
    running.stop()


def test_started_and_already_running_replies_show_a_runbook_title_literally(
    fake: FakeSlack, tricky_bot: LocalBot, db: Database
) -> None:
    slack = SlackSimulator(fake, tricky_bot.events_url, SECRET)
    incident = declare(fake, tricky_bot, slack, db)
    command = f"INC-{incident.number} runbook purge-logs"
    first = slack.slash_command(command, user="ana.garcia", channel="general")
    tricky_bot.settle()
    again = slack.slash_command(command, user="ana.garcia", channel="general")
    tricky_bot.settle()
    started = texts(fake.response_posts(first.request.response_url)[0].payload)
    running = texts(fake.response_posts(again.request.response_url)[0].payload)
    shown = "Purge `*.gz` logs in `~/cache_dir` &lt;!channel&gt;"
    assert started == f"Started *{shown}* in <#{incident.slack_channel_id}>."
    assert running.startswith(f"*{shown}* is already running in {incident.ref}")
    assert "<!channel>" not in started + running  # nobody is pinged


def test_starting_a_runbook_already_completed_says_it_was_completed(
    fake: FakeSlack, tricky_bot: LocalBot, db: Database
) -> None:
    slack = SlackSimulator(fake, tricky_bot.events_url, SECRET)
    incident = declare(fake, tricky_bot, slack, db)
    command = f"INC-{incident.number} runbook purge-logs"
    slack.slash_command(command, user="ana.garcia", channel="general")
    tricky_bot.settle()
    with db.transaction() as session:
        run = session.exec(select(RunbookRun)).one()
        assert run.id is not None
        for step in range(run.step_count):
            progress.update_step(session, Policy(), run.id, step, "done", actor="U1")
    again = slack.slash_command(command, user="ana.garcia", channel="general")
    tricky_bot.settle()
    said = texts(fake.response_posts(again.request.response_url)[0].payload)
    assert f"was completed in {incident.ref} ({run.step_count}/{run.step_count} done)" in said
    assert "reopen a step there to work it again" in said and "already running" not in said


def test_an_older_copy_of_the_run_message_never_undoes_newer_work(
    fake: FakeSlack, bot: LocalBot, slack: SlackSimulator, db: Database
) -> None:
    """Reopen, Unassign and Assign clicked on a copy of the message drawn before someone
    else changed the step are refused, saying what the step is now; nothing changes. Unassign
    is recorded as such (it said "reopened"), and a click on an old copy never moves the page
    everyone is on."""
    incident = declare(fake, bot, slack, db, title="Disk full on db-3, writes failing")
    channel = incident.slack_channel_id or ""
    slack.slash_command(f"{incident.ref} runbook disk-full", user="ana.garcia", channel=channel)
    bot.settle()
    run = run_of(db)
    ts = run.slack_message_ts or ""
    ana, ben = fake.user_id("ana.garcia"), fake.user_id("ben.okafor")
    fake.join(channel, ben)

    def click(
        verb: str, step: int, user: str, shown: dict[str, Any] | None = None, value: Any = None
    ) -> str:
        reply = slack.click(
            channel, ts, f"runbook:{verb}:{run.id}:{step}", user=user, as_shown=shown, value=value
        )
        bot.settle()
        return " ".join(texts(p.payload) for p in fake.response_posts(reply.request.response_url))

    click("assign", 2, "ana.garcia", value=ben)
    old = fake.message_json(channel, ts)  # Ben's client: step 3 assigned to him
    click("unassign", 2, "ana.garcia")
    click("assign", 2, "ana.garcia", value=ana)
    refused = click("unassign", 2, "ben.okafor", old)
    assert "changed after the message you clicked was shown" in refused
    assert f"assigned to <@{ana}>" in refused
    refused = click("assign", 2, "ben.okafor", old, value=ben)
    assert "changed after the message you clicked was shown" in refused

    click("done", 0, "ana.garcia")
    done_copy = fake.message_json(channel, ts)
    click("reopen", 0, "ana.garcia")
    click("done", 0, "ben.okafor")
    refused = click("reopen", 0, "ana.garcia", done_copy)
    assert f"it is done by <@{ben}> now" in refused

    with db.read() as session:
        states = {s.step_index: s for s in progress.step_states(session, run.id or 0)}
        steps = [
            e.text for e in core.timeline(session, incident.id or 0) if e.kind == "runbook_step"
        ]
    assert (states[2].state, states[2].assignee_id) == ("in_progress", ana)
    assert states[0].state == "done"
    assert any("step 3 unassigned" in t for t in steps), steps
    assert sum("step 1 reopened" in t for t in steps) == 1, steps


def test_a_step_given_to_someone_outside_the_channel_invites_them_first(
    fake: FakeSlack, bot: LocalBot, slack: SlackSimulator, db: Database
) -> None:
    """Slack notifies nobody outside a channel of a mention there: Chloe, given a step, is
    invited before "step 1 is yours" is posted, as a person given a role is."""
    incident = declare(fake, bot, slack, db, title="Disk full on db-3, writes failing")
    channel = incident.slack_channel_id or ""
    slack.slash_command(f"{incident.ref} runbook disk-full", user="ana.garcia", channel=channel)
    bot.settle()
    run = run_of(db)
    chloe = fake.user_id("chloe.martin")
    assert chloe not in fake.members(channel)
    slack.click(
        channel,
        run.slack_message_ts or "",
        f"runbook:assign:{run.id}:0",
        user="ana.garcia",
        value=chloe,
    )
    bot.settle()
    assert chloe in fake.members(channel)
    invited = [i for i, c in enumerate(fake.calls) if c.method == "conversations.invite"]
    told = [
        i
        for i, c in enumerate(fake.calls)
        if c.method == "chat.postMessage" and f"<@{chloe}>, step 1" in str(c.args.get("text"))
    ]
    assert len(told) == 1 and invited and invited[-1] < told[0]


def test_a_deleted_run_message_is_posted_again_with_the_progress_kept(
    fake: FakeSlack, bot: LocalBot, slack: SlackSimulator, db: Database
) -> None:
    """Someone deleted the runbook's message: the next change posts it again, where things
    stand, instead of failing every edit of a message that is gone."""
    incident = declare(fake, bot, slack, db, title="Disk full on db-3, writes failing")
    channel = incident.slack_channel_id or ""
    slack.slash_command(f"{incident.ref} runbook disk-full", user="ana.garcia", channel=channel)
    bot.settle()
    run = run_of(db)
    first = run.slack_message_ts or ""
    slack.click(channel, first, f"runbook:done:{run.id}:0", user="ana.garcia")
    bot.settle()
    shown = fake.message_json(channel, first)  # still open on someone's screen
    fake.delete_message(channel, first)
    slack.click(channel, first, f"runbook:skip:{run.id}:1", user="ana.garcia", as_shown=shown)
    bot.settle()
    again = run_of(db).slack_message_ts or ""
    assert again and again != first
    assert f"1/{run.step_count} done, 1 skipped" in texts(fake.message(channel, again))
    with db.read() as session:
        failed = [e for e in core.timeline(session, incident.id or 0) if e.kind == "slack_failed"]
    assert failed == []


@pytest.mark.parametrize("typed", ["“Disk full”", '"disk-full"', "runbooks/disk-full.md"])
def test_a_runbook_named_in_quotes_or_by_its_path_is_started(
    fake: FakeSlack, bot: LocalBot, slack: SlackSimulator, db: Database, typed: str
) -> None:
    incident = declare(fake, bot, slack, db, title="Writes failing on db-3")
    said = ask(fake, bot, slack, f"{incident.ref} runbook {typed}", "general")
    assert said.startswith("Started *Disk full*"), said
    assert run_of(db).runbook_id == "disk-full"


def test_a_closed_incidents_run_message_offers_no_buttons_until_it_is_reopened(
    fake: FakeSlack, bot: LocalBot, slack: SlackSimulator, db: Database
) -> None:
    """Every step button of a closed incident would be refused: the message says the incident
    is closed and offers none; reopened, they are back."""
    incident = declare(fake, bot, slack, db, title="Disk full on db-3, writes failing")
    channel = incident.slack_channel_id or ""
    slack.slash_command(f"{incident.ref} runbook disk-full", user="ana.garcia", channel=channel)
    bot.settle()
    ts = run_of(db).slack_message_ts or ""

    def buttons() -> int:
        return sum(
            1
            for b in fake.message(channel, ts).blocks
            for e in [*b.get("elements", []), *([b["accessory"]] if "accessory" in b else [])]
            if str(e.get("action_id", "")).startswith("runbook:")
            and not str(e.get("action_id")).startswith("runbook:page:")
        )

    assert buttons() > 0
    for command in ("resolve fixed", "close"):
        slack.slash_command(command, user="ana.garcia", channel=channel)
        bot.settle()
    assert buttons() == 0
    assert "the incident is closed" in texts(fake.message(channel, ts))
    slack.slash_command(
        f"{incident.ref} reopen not fixed after all", user="ana.garcia", channel="general"
    )
    bot.settle()
    assert buttons() > 0


def test_a_run_whose_file_was_removed_is_still_found_by_its_name(
    fake: FakeSlack, bot: LocalBot, slack: SlackSimulator, db: Database
) -> None:
    """The runbook's file was removed or renamed after the run started (the catalog reloads
    it): the run goes on from its snapshot, and `/incident runbook <its name>` points at it
    under the title it was started with, instead of "No runbook matches"."""
    incident = declare(fake, bot, slack, db, title="Disk full on db-3, writes failing")
    channel = incident.slack_channel_id or ""
    slack.slash_command(f"{incident.ref} runbook disk-full", user="ana.garcia", channel=channel)
    bot.settle()
    catalog = bot.firebreak.catalog
    assert catalog is not None
    bot.firebreak.catalog = RunbookCatalog.of(
        [r for r in catalog.runbooks.values() if r.id != "disk-full"]
    )
    for typed in ("disk-full", "“Disk full”"):
        said = ask(fake, bot, slack, f"{incident.ref} runbook {typed}", "general")
        assert said.startswith("*Disk full* is already running in INC-1"), said


def test_while_slack_is_slow_to_name_an_assignee_other_requests_are_acknowledged(
    fake: FakeSlack, bot: LocalBot, slack: SlackSimulator, db: Database
) -> None:
    """Giving a step to someone Firebreak has not looked up yet asks Slack who they are. While
    Slack takes its time, everyone else's commands are still acknowledged: the look-up holds
    no transaction (on SQLite one would make every request wait for Slack's answer)."""
    incident = declare(fake, bot, slack, db, title="Disk full on db-3, writes failing")
    channel = incident.slack_channel_id or ""
    slack.slash_command(f"{incident.ref} runbook disk-full", user="ana.garcia", channel=channel)
    bot.settle()
    run = run_of(db)
    zoe = fake.add_user("zoe.new")
    fake.fail("users.info", mode="hang", hang_seconds=60, times=1)
    with ThreadPoolExecutor(1) as pool:
        click = pool.submit(
            slack.click,
            channel,
            run.slack_message_ts or "",
            f"runbook:assign:{run.id}:0",
            user="ana.garcia",
            value=zoe,
        )
        assert click.result(timeout=30).status == 200
        deadline = time.monotonic() + 30
        while not any(c.args.get("user") == zoe for c in fake.calls_to("users.info")):
            assert time.monotonic() < deadline, "the assignee was never looked up"
            time.sleep(0.05)
        # Slack holds the look-up for a minute (released just below); Slack's own deadline
        # for an acknowledgement is 3 s, which the simulator checks (``problems``).
        note = slack.slash_command("note disk at 97% on db-3", user="ana.garcia", channel=channel)
        assert note.status == 200 and not note.problems
        fake.clear_failures()
    bot.settle()
    with db.read() as session:
        notes = [e.text for e in core.timeline(session, incident.id or 0)]
    assert sum("disk at 97% on db-3" in text for text in notes) == 1
