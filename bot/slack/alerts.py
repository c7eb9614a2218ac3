"""The Slack side of alerts: Block Kit for the notices alerts queue (triage, links, "all alerts
resolved: mitigate?") and their buttons.

``render`` is pure. ``RENDERERS`` plugs it into the effects runner (``SlackEffects.renderers``),
which posts the ``message.post`` effects ``bot.alerts.notices.queue_notice`` wrote.
``AlertButtons`` processes the clicks on their buttons once they are recorded
(``bot.slack.app``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from bot import access
from bot import incidents as core
from bot.alerts import notices, triage
from bot.alerts.notices import (
    ALL_RESOLVED,
    ANSWERED,
    FIRING_AGAIN,
    LINKS,
    TRIAGE,
    TYPE_PREFIX,
    AlertLinks,
    AllResolved,
    Answered,
    FiringAgain,
    Notice,
    TriageRequest,
    notice_from,
)
from bot.config import Policy
from bot.db import Database, whole_number
from bot.errors import FirebreakError
from bot.markup import link_host, spoofs
from bot.runbooks.catalog import RunbookCatalog
from bot.slack import limits
from bot.slack.blocks import START_SUGGESTED, button, context, mention, section
from bot.slack.commands import id_from_value
from bot.slack.limits import escape_mrkdwn, truncate

log = logging.getLogger(__name__)

DECLARE = "alerts:declare"
ATTACH = "alerts:attach"
IGNORE = "alerts:ignore"
MITIGATE = "alerts:mitigate"

Block = dict[str, Any]


def _link_line(links: list[dict[str, str]]) -> str:
    parts = []
    for link in links[:8]:
        url = link.get("url", "")
        if not url.startswith(("http://", "https://")) or any(c in url for c in "<>| "):
            continue  # stored links are already http(s) only; never trust twice-removed data
        kind = link.get("kind", "link")
        # A label that shows another address than the target (a sender's "https://bank.example"
        # for https://evil.example/x) is replaced by the target's host.
        label = escape_mrkdwn(link_host(url) if spoofs(kind, url) else kind).replace("|", "/")
        parts.append(f"<{url}|{label}>")
    return " · ".join(parts)


def render(notice: Notice) -> tuple[str, list[Block]]:
    """Fallback text and blocks for one notice. Alert text was neutralised on the way in and
    is escaped here, in the blocks and in the fallback text alike (Slack shows that text in
    notifications, links included), so nothing in an alert can ping, format or link."""
    if isinstance(notice, TriageRequest):
        return _triage(notice)
    if isinstance(notice, AlertLinks):
        return _links(notice)
    if isinstance(notice, FiringAgain):
        return _firing_again(notice)
    if isinstance(notice, Answered):
        return _answered(notice)
    return _all_resolved(notice)


def _title(notice: TriageRequest | AlertLinks | AllResolved | Answered) -> str:
    return escape_mrkdwn(truncate(notice.title, 200, plain=True))


def _triage_line(source: str, title: str) -> str:
    return f"*Alert from {escape_mrkdwn(source)}:* {title}"


def _triage(notice: TriageRequest) -> tuple[str, list[Block]]:
    actions: list[dict[str, Any]] = [
        button("Declare incident", DECLARE, str(notice.group_id), style="primary")
    ]
    for ref in notice.open_incidents[:3]:
        actions.append(button(f"Attach to {ref}", f"{ATTACH}:{ref}", f"{notice.group_id}|{ref}"))
    # With the count this copy shows: an Ignore is refused once more alerts fire than it said.
    actions.append(button("Ignore", IGNORE, f"{notice.group_id}|{notice.firing}"))
    # Edited while it waits: alerts that all resolved are said so, the decision still open.
    firing = (
        f"{notice.firing} firing"
        if notice.firing
        else "0 firing: every alert resolved while it waited. Declare to investigate anyway, "
        "or Ignore"
    )
    blocks = [
        section(
            _triage_line(notice.source, _title(notice)) + "\n"
            f"Severity {escape_mrkdwn(notice.severity)} · {firing}"
        ),
        {"type": "actions", "elements": actions[: limits.ACTIONS_ELEMENTS]},
    ]
    heading = "Alert needs triage" if notice.firing else "Alert resolved while waiting for triage"
    return f"{heading}: {_title(notice)}", blocks


def _links(notice: AlertLinks) -> tuple[str, list[Block]]:
    firing = bool(notice.firing or not notice.resolved)
    count = (
        f"{notice.firing} alert(s) firing"
        if firing
        else f"{notice.resolved} alert(s) resolved"  # declared from triage after they resolved
    )
    lines = [f"*{count} from {escape_mrkdwn(notice.source)}:* {_title(notice)}"]
    links = _link_line(notice.links)
    if links:
        lines.append(links)
    blocks = [section("\n".join(lines))]
    if notice.runbook_id and notice.runbook_title:
        runbook = escape_mrkdwn(truncate(notice.runbook_title, 150, plain=True))
        # A runbook covering many alerts (Mimir's): the section the run opens at is named,
        # so nobody follows another alert's steps.
        section_name = truncate(notice.runbook_alert or "", 150, plain=True)
        at = f", at the section for *{escape_mrkdwn(section_name)}*" if section_name else ""
        if notice.runbook_started:
            blocks.append(context(f"Runbook started: *{runbook}*{at}"))
        else:
            # The same Start button as the declare-time suggestions (handled by the
            # runbooks' Slack listener).
            named = {"incident": notice.incident_id, "runbook": notice.runbook_id}
            if notice.runbook_alert:  # opens at that alert's section
                named["alert"] = notice.runbook_alert
            value = json.dumps(named)
            blocks.append(
                section(
                    f"Runbook named by the alert: *{runbook}*{at}",
                    accessory=button("Start", f"{START_SUGGESTED}:0", value),
                )
            )
    # The notification's words (the top-level text) say what the message says.
    return f"Alerts {'firing' if firing else 'resolved'}: {_title(notice)}", blocks


def _all_resolved_line(resolved: str, source: str, title: str) -> str:
    return f"*All alerts resolved* ({resolved}{escape_mrkdwn(source)}: {title})."


def _all_resolved(notice: AllResolved) -> tuple[str, list[Block]]:
    line = _all_resolved_line(f"{notice.resolved} from ", notice.source, _title(notice))
    if notice.unlisted:
        line += (
            f" The sender left {notice.unlisted} more out of its message: any that still"
            " fires is in its next one."
        )
    blocks = [
        section(f"{line} Mitigate the incident?"),
        {
            "type": "actions",
            "elements": [
                button("Mark mitigated", MITIGATE, str(notice.incident_id), style="primary")
            ],
        },
    ]
    return "All alerts resolved: mitigate?", blocks


def _firing_again(notice: FiringAgain) -> tuple[str, list[Block]]:
    names = escape_mrkdwn(truncate(notice.names, 300, plain=True))
    counts = f"{notice.firing} of {notice.alerts} firing"
    status = escape_mrkdwn(notice.status)
    text = f"Alerts firing again: {names} ({counts})"
    blocks = [
        section(
            f":rotating_light: *Alerts firing again* from {escape_mrkdwn(notice.source)}: "
            f"{names} ({counts}). The incident is still {status}."
        )
    ]
    return text, blocks


def _answered(notice: Answered) -> tuple[str, list[Block]]:
    """A question once answered: what it asked, what was decided, no buttons."""
    who = f" by {mention(notice.actor)}" if notice.actor else ""
    outcome = f"{escape_mrkdwn(notice.outcome)}{who}"
    if notice.question == TRIAGE:
        line = _triage_line(notice.source, _title(notice))
    else:
        line = _all_resolved_line("", notice.source, _title(notice))
    return f"{_title(notice)}: {escape_mrkdwn(notice.outcome)}", [section(line), context(outcome)]


def render_effect_notice(data: dict[str, Any]) -> tuple[str, list[Block]] | None:
    """Render the notice a ``message.post`` effect carries (``{"type": "alerts.…", ...}``)."""
    notice = notice_from(data)
    return render(notice) if notice is not None else None


RENDERERS: dict[str, Callable[[dict[str, Any]], tuple[str, list[Block]] | None]] = {
    TYPE_PREFIX + kind: render_effect_notice
    for kind in (TRIAGE, LINKS, ALL_RESOLVED, FIRING_AGAIN, ANSWERED)
}
"""For ``SlackEffects.renderers``: ``effects.renderers.update(RENDERERS)``."""


# --------------------------------------------------------------------------------------------
# Buttons


class AlertButtons:
    def __init__(
        self,
        db: Database,
        policy: Policy,
        directory: access.Directory,
        catalog: Callable[[], RunbookCatalog | None] = lambda: None,
    ) -> None:
        self.db = db
        self.policy = policy
        self.directory = directory
        self.catalog = catalog
        """The runbooks as they are now (reloaded when their files change)."""

    def _run(self, respond: Callable[..., Any], work: Callable[[], str]) -> None:
        """Answer the person who clicked (only them). The message clicked is edited by the
        effect the decision wrote (``message.update``): a response cannot replace it once the
        click is recorded and processed later, and everyone must see the buttons gone."""
        try:
            message = work()
        except FirebreakError as exc:
            message = str(exc)
        respond(text=message, response_type="ephemeral", replace_original=False)

    def declare(
        self, ack: Callable[[], None], body: dict[str, Any], respond: Callable[..., Any]
    ) -> None:
        ack()
        user = str(body["user"]["id"])
        value = body["actions"][0].get("value")

        def work() -> str:
            group_id = id_from_value(value)
            access.require(
                self.policy, "declare", user, incident=None, roles={}, directory=self.directory
            )
            with self.db.transaction() as session:
                incident = triage.triage_declare(
                    session, self.policy, group_id, actor=user, catalog=self.catalog()
                )
            return f"Declared {incident.ref} for these alerts."

        self._run(respond, work)

    def attach(
        self, ack: Callable[[], None], body: dict[str, Any], respond: Callable[..., Any]
    ) -> None:
        ack()
        user = str(body["user"]["id"])
        group, _, ref = str(body["actions"][0]["value"]).partition("|")

        def work() -> str:
            group_id = id_from_value(group)
            with self.db.read() as session:
                incident = core.find_incident(session, ref)
            # Seeing a private incident may ask Slack who is in its channel: not while holding
            # a transaction.
            if not access.can_see(self.policy, user, incident, self.directory):
                raise FirebreakError(f"There is no incident {ref}.")
            with self.db.transaction() as session:
                attached = triage.triage_attach(session, self.policy, group_id, ref, actor=user)
            if self.policy.phase_of(attached.status) == "resolved":  # said in its channel too
                return (
                    f"Attached these alerts to {ref}, which is {attached.status}: its channel is "
                    f"told they fire again; reopen it if the impact is back (`/incident {ref} "
                    "reopen`)."
                )
            return f"Attached these alerts to {ref}."

        self._run(respond, work)

    def ignore(
        self, ack: Callable[[], None], body: dict[str, Any], respond: Callable[..., Any]
    ) -> None:
        ack()
        user = str(body["user"]["id"])
        value = body["actions"][0].get("value")

        def work() -> str:
            group, _, shown = str(value or "").partition("|")
            group_id = id_from_value(group)
            seen = 0 if shown == "0" else whole_number(shown)  # None: a copy that says none
            with self.db.transaction() as session:
                triage.triage_ignore(session, group_id, actor=user, seen_firing=seen)
            return "Ignored: these alerts open nothing until they fire again later."

        self._run(respond, work)

    def mitigate(
        self, ack: Callable[[], None], body: dict[str, Any], respond: Callable[..., Any]
    ) -> None:
        ack()
        user = str(body["user"]["id"])
        action = body["actions"][0]

        def work() -> str:
            incident_id = id_from_value(action.get("value"))
            key = f"alerts:mitigate-click:{action.get('action_ts', '')}:{incident_id}"
            with self.db.transaction() as session:
                change = core.mitigate_incident(
                    session, self.policy, incident_id, actor=user, key=key
                )
                notices.answer_all_resolved(
                    session, incident_id, outcome="Marked mitigated", actor=user
                )
            if not change.changed:  # mitigated (or further) already: nothing changed
                status = self.policy.find_status(change.incident.status)
                shown = status.label if status else change.incident.status
                return f"{change.incident.ref} is already {escape_mrkdwn(shown)}."
            return f"{change.incident.ref} marked mitigated."

        self._run(respond, work)
