"""What every listener shares: who asked and how to answer them, and small helpers."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot import observability
from bot.db_errors import database_unavailable
from bot.errors import FirebreakError
from bot.incidents import TITLE_MAX
from bot.leases import LeaseExpired
from bot.markup import slack_to_plain
from bot.slack import blocks
from bot.slack.gateway import SlackCallError
from bot.slack.limits import grapheme_start

log = logging.getLogger(__name__)

Respond = Callable[..., Any]

log = logging.getLogger(__name__)


UNEXPECTED = (
    "Something went wrong inside Firebreak (request {rid}) while reading; nothing was "
    "changed. Try again, and if it keeps failing, tell whoever runs Firebreak."
)
UNAVAILABLE = (
    "Firebreak cannot read its database just now (it is unavailable); nothing was changed. "
    "Try again in a minute."
)
READ_ONLY = frozenset(
    {"help", "list", "status", "timeline", "actions", "did_you_mean", "open_form"}
)
"""Commands that change nothing: answered straight away, not recorded."""


@dataclass
class Ctx:
    """Who asked, where, and how to answer them."""

    user: str
    channel: str | None
    respond: Respond
    key: str
    trigger_id: str | None = None


def reply(ctx: Ctx, text: str, blocks_: list[dict[str, Any]] | None = None) -> None:
    ctx.respond(text=text, blocks=blocks_, response_type="ephemeral", replace_original=False)


def guarded(ctx: Ctx, work: Callable[[], None]) -> None:
    """Run ``work``; turn every failure into an answer the person can act on."""
    try:
        work()
    except FirebreakError as exc:
        reply(ctx, f":no_entry: {exc}")
    except SlackCallError as exc:
        if exc.transient:  # nothing retries an answer on the spot: the person does
            reply(
                ctx,
                f":warning: Slack could not do that just now ({exc.error}). Try again in a minute.",
            )
        else:
            reply(ctx, f":warning: {exc}")
    except LeaseExpired:
        raise  # processing a recorded request: the replica holding it now answers
    except Exception as exc:
        if database_unavailable(exc):  # an outage to wait out, not a bug
            log.warning("listener: the database is unavailable (%s)", type(exc).__name__)
            reply(ctx, ":warning: " + UNAVAILABLE)
            return
        observability.ERRORS.labels(where="listener").inc()
        log.exception("listener failed")
        reply(ctx, ":warning: " + UNEXPECTED.format(rid=observability.request_id.get()))


def split_title(text: str) -> tuple[str, str]:
    """A long ``/incident <text>`` keeps its first words as the title and all of it as the
    summary, so nothing typed is lost. The title is plain text (mentions become ``@name``,
    links their label); the summary keeps Slack's markup."""
    single = " ".join(slack_to_plain(text).split())
    if len(single) <= TITLE_MAX:
        return single, ""
    whole = single[: grapheme_start(single, TITLE_MAX - 1)]  # never half an emoji or a flag
    cut = whole.rsplit(" ", 1)[0] or whole
    return cut + "…", text.strip()


# Text kept as written (notes, updates, action items, captured messages) is quietened where it
# is shown (``quiet``, ``blocks``); titles and the resolve and reopen texts are quietened as they
# are stored, because the announcements of status changes repeat them as stored.
_QUIET_WHEN_STORED = {"declare", "declare_title", "did_you_mean", "resolve", "reopen"}

_OPENS_A_FORM = {blocks.HOME_DECLARE, blocks.ASSIGN_ROLE, blocks.ADD_NOTE, blocks.POST_UPDATE}


def _logged(job: Callable[[], None]) -> None:
    try:
        job()
    except Exception:
        observability.ERRORS.labels(where="event").inc()
        log.exception("event handling failed")


def _metadata(view: dict[str, Any]) -> dict[str, Any]:
    try:
        data = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _values(view: dict[str, Any]) -> dict[str, Any]:
    """``state.values`` flattened to ``{block_id: value}`` whatever the element type."""
    result: dict[str, Any] = {}
    for block_id, actions in ((view.get("state") or {}).get("values") or {}).items():
        for element in actions.values():
            kind = element.get("type")
            if kind == "static_select":
                result[block_id] = (element.get("selected_option") or {}).get("value")
            elif kind == "users_select":
                result[block_id] = element.get("selected_user")
            elif kind == "multi_users_select":
                result[block_id] = element.get("selected_users") or []
            elif kind == "checkboxes":
                result[block_id] = [o.get("value") for o in element.get("selected_options") or []]
            elif kind == "datetimepicker":
                result[block_id] = element.get("selected_date_time")
            else:
                result[block_id] = element.get("value")
    return result
