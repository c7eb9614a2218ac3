"""Runbooks in Slack: list and search, start a run, and walk it with Done / Skip / Assign.

Progress lives in the database (``bot.runbooks.progress``); the run's message is rendered from it
and edited in place after every click, so a restart or a second replica shows the same state,
and two people clicking the same step produce one result.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from typing import Any

from slack_bolt import App

from bot import incidents as core
from bot.db import whole_number
from bot.effects.triggers import queue_runbook_message
from bot.errors import InvalidInput, NotFound
from bot.models import Incident
from bot.runbooks import progress
from bot.runbooks.catalog import RunbookCatalog, typed_name
from bot.runbooks.parser import Runbook
from bot.slack import blocks
from bot.slack.flows import IncidentFlows
from bot.slack.listeners import Ctx, Listeners, reply
from bot.slack.runbook_messages import (
    ACTION_PATTERN,
    ACTION_PREFIX,
    parse_runbook_action,
    seen_version,
    title_mrkdwn,
)

log = logging.getLogger(__name__)

SEARCH_RESULTS = 8


class RunbookSlack:
    def __init__(self, listeners: Listeners) -> None:
        self.listeners = listeners
        self.flows: IncidentFlows = listeners.flows
        self.fb = listeners.fb
        self.policy = listeners.policy
        self.gateway = listeners.gateway

    @property
    def catalog(self) -> RunbookCatalog:
        if self.fb.catalog is None:
            raise InvalidInput("No runbooks are loaded: set [runbooks] paths in firebreak.toml.")
        return self.fb.catalog

    # -- /incident runbook [words] -----------------------------------------------------------

    def command(self, ctx: Ctx, words: str, incident: Incident) -> None:
        words = words.strip()
        if words:
            exact = self.catalog.get(words)
            if exact is not None:
                self.start(ctx, incident, exact)
                return
            running = self._run_named(incident, words)
            if running is not None:  # its file was renamed or removed since: the run goes on
                self._point_at(ctx, incident, running)
                return
            matches = self.catalog.search(words, limit=SEARCH_RESULTS)
            heading = f"Runbooks matching “{words[:80]}”"
        else:
            matches = self.catalog.match(
                title=incident.title,
                summary=incident.summary,
                service=incident.service,
                severity=incident.severity,
                limit=SEARCH_RESULTS,
            )
            heading = f"Runbooks for {incident.ref}"
        if not matches:
            reply(
                ctx,
                f"No runbook matches. {len(self.catalog)} runbooks are loaded; try other "
                "words, or `firebreak runbooks list` on the server.",
            )
            return
        text, payload = blocks.suggestions_blocks(
            incident, [(m.runbook.id, m.runbook.title, _why(m.runbook, m.reasons)) for m in matches]
        )
        payload[0] = blocks.section(f"*{heading}*")
        reply(ctx, text, payload)

    # -- starting ----------------------------------------------------------------------------

    def start(
        self, ctx: Ctx, incident: Incident, runbook: Runbook, alerts: Sequence[str] = ()
    ) -> None:
        """Start the run (its message is queued in the same transaction); a second start of the same
        runbook (a double click, two people) points at the run already going. ``alerts``: the
        alert it is started for, whose section of the runbook it opens at."""
        assert incident.id is not None
        with self.fb.db.transaction() as session:
            change = progress.start_run(
                session,
                self.policy,
                incident.id,
                runbook,
                actor=ctx.user,
                key=f"runbook-start:{ctx.key}",
                alerts=alerts,
            )
            run = change.run  # its message is queued with the run's timeline event
        if not change.changed:
            self._point_at(ctx, incident, run)
            return
        if ctx.channel != incident.slack_channel_id:
            where = f"<#{incident.slack_channel_id}>" if incident.slack_channel_id else incident.ref
            reply(ctx, f"Started *{title_mrkdwn(runbook.title)}* in {where}.")

    def _point_at(self, ctx: Ctx, incident: Incident, run: progress.RunView) -> None:
        """The runbook is running (or ran) in the incident already: where, under the title it
        was started with (its file may have changed since)."""
        link = None
        if run.slack_message_ts and run.slack_channel_id:
            link = self.gateway.permalink(run.slack_channel_id, run.slack_message_ts)
        where = f": <{link}|open it>" if link else "."
        title = title_mrkdwn(run.title)
        if run.status == progress.RUN_COMPLETED:
            said = (
                f"*{title}* was completed in {incident.ref} ({run.progress}); reopen a step "
                f"there to work it again{where}"
            )
        else:
            said = f"*{title}* is already running in {incident.ref}{where}"
        reply(ctx, said)

    def _run_named(self, incident: Incident, words: str) -> progress.RunView | None:
        """The incident's run whose runbook id or title is ``words`` (case, quotes and ``.md``
        aside): found by the run, not the catalog, which may no longer hold its file."""
        assert incident.id is not None
        wanted = typed_name(words).casefold()
        with self.fb.db.read() as session:
            runs = progress.incident_runs(session, incident.id)
        for run in runs:
            names = {run.runbook_id.casefold(), run.runbook_id.rsplit("/", 1)[-1].casefold()}
            if wanted in names or wanted == run.title.casefold():
                return run
        return None

    def start_suggested(self, ctx: Ctx, action: dict[str, Any]) -> None:
        """A recorded click on a suggestion's Start button."""
        try:
            value = json.loads(action.get("value") or "{}")
            incident_id, runbook_id = whole_number(str(value["incident"])), str(value["runbook"])
        except (ValueError, KeyError, TypeError):
            incident_id = None
        if incident_id is None:
            raise InvalidInput("That button is out of date; use `/incident runbook`.")
        with self.fb.db.read() as session:
            incident = core.get_incident(session, incident_id)
        self.listeners.check_visible(ctx, incident)
        runbook = self.catalog.get(runbook_id)
        if runbook is None:
            running = self._run_named(incident, runbook_id)
            if running is not None:
                self._point_at(ctx, incident, running)
                return
            raise NotFound(f"The runbook {runbook_id!r} is no longer in the catalog.")
        alert = value.get("alert") if isinstance(value, dict) else None
        self.start(ctx, incident, runbook, alerts=[alert] if isinstance(alert, str) else [])

    # -- walking -----------------------------------------------------------------------------

    def click(self, ctx: Ctx, action: dict[str, Any]) -> None:
        """A recorded click on a step's Done / Skip / Assign or a page button."""
        decoded = parse_runbook_action(str(action.get("action_id", "")))
        if decoded is None:
            return
        per_page = self.policy.runbooks.steps_per_page
        assignee = action.get("selected_user")
        if decoded.verb == "assign":
            if not assignee:
                return
            self.listeners.known_user(str(assignee))  # asks Slack: before the transaction
        with self.fb.db.transaction() as session:
            if decoded.verb == "page":
                # A page turn is no timeline event: its message is queued here. A step's change
                # queues it with its event (``bot.effects.triggers``).
                run = progress.set_page(
                    session, decoded.run_id, decoded.page or 0, per_page=per_page
                )
                queue_runbook_message(session, run.id, run.incident_id)
            else:
                progress.update_step(
                    session,
                    self.policy,
                    decoded.run_id,
                    decoded.step or 0,
                    decoded.verb,
                    actor=ctx.user,
                    assignee=assignee,
                    key=ctx.key,
                    seen=seen_version(action),
                )


def _why(runbook: Runbook, reasons: tuple[str, ...]) -> str:
    steps = f"{len(runbook.steps)} step{'s' if len(runbook.steps) != 1 else ''}"
    why = "; ".join(r for r in reasons if r != "name")
    return f"{steps}" + (f" · {why}" if why else "")


def register(app: App, listeners: Listeners) -> RunbookSlack:
    """Clicks on runbook messages and suggestions are recorded, then processed."""
    handler = RunbookSlack(listeners)
    app.action(re.compile(ACTION_PATTERN))(listeners.record_click)
    app.action(re.compile(rf"^{re.escape(blocks.START_SUGGESTED)}:"))(listeners.record_click)
    listeners.clicks.append((ACTION_PREFIX, handler.click))
    listeners.clicks.append((blocks.START_SUGGESTED, handler.start_suggested))
    listeners.runbooks = handler
    return handler
