"""``/incident``: parse the text people type, then run the subcommand.

The parser is a pure function (``parse_command``) so it can be tested and fuzzed on its own.
Anything it cannot make sense of becomes a usage message, never an exception.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

from rapidfuzz.distance import OSA

from bot.db import whole_number
from bot.errors import InvalidInput
from bot.incidents import parse_incident_ref
from bot.incidents.queries import REF_DIGITS

SUBCOMMANDS = {
    "help": "help",
    "declare": "declare",
    "new": "declare",
    "status": "status",
    "sev": "sev",
    "severity": "sev",
    "ack": "ack",
    "acknowledge": "ack",
    "ic": "ic",
    "commander": "ic",
    "role": "role",
    "update": "update",
    "note": "note",
    "mitigate": "mitigate",
    "mitigated": "mitigate",
    "resolve": "resolve",
    "resolved": "resolve",
    "reopen": "reopen",
    "close": "close",
    "list": "list",
    "timeline": "timeline",
    "runbook": "runbook",
    "runbooks": "runbook",
    "action": "action",
    "actions": "actions",
    "done": "done",
    "postmortem": "postmortem",
    "retry": "retry",
    "classify": "classify",
    "notified": "notified",
}

# Subcommands that take no free text, so a trailing incident number is unambiguous. Every
# subcommand that acts on an incident also takes the incident right after its word
# ("resolve INC-42 rolled back"): the words after it are the text.
_TRAILING_REF = {
    "status",
    "ack",
    "mitigate",
    "close",
    "timeline",
    "actions",
    "postmortem",
    "retry",
    "sev",
    "ic",
    "done",
}
_NO_INCIDENT = {"help", "declare", "list"}
"""Subcommands that never act on a named incident: an incident number after them is text."""

USAGE = {
    "sev": "`/incident sev &lt;level&gt;`, e.g. `/incident sev 2`",
    "ic": "`/incident ic @person` (or `/incident ic me`)",
    "role": "`/incident role &lt;role&gt; @person`, e.g. `/incident role comms @dana`",
    "update": "`/incident update &lt;what changed, what is next&gt;`",
    "note": "`/incident note &lt;text&gt;`",
    "action": "`/incident action &lt;text&gt; [@owner] [YYYY-MM-DD]`",
    "done": "`/incident done &lt;action item number&gt;`",
    "declare": "`/incident declare &lt;title&gt;`",
    "classify": "`/incident classify &lt;classification&gt;`, e.g. `/incident classify major`",
    "notified": "`/incident notified &lt;clock&gt; [note]`, e.g. `/incident notified initial`",
}

_HELP = {"?": "help", "-h": "help", "--help": "help", "-help": "help", "/help": "help"}
"""How people ask a command line for help; "status?" and "help?" are the commands too."""
_SEV_JOINED = re.compile(r"^(?:sev|severity)-?(\d)$")

_REF_TOKEN = re.compile(rf"^(?:inc-?|#){REF_DIGITS}$", re.IGNORECASE)
_CHANNEL_REF = re.compile(r"^<#([CG][A-Z0-9]{2,})(?:\|[^>]*)?>$")
"""A channel picked from Slack's # list, as Slack sends it: ``<#C123|inc-42-checkout>`` (the
name may be empty: ``<#C123|>``) or ``<#C123>``."""
_MENTION = re.compile(r"^<@([UW][A-Z0-9]{2,})(?:\|[^>]*)?>$")
_USER_ID = re.compile(r"^[UW][A-Z0-9]{6,}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class ParsedCommand:
    """``name`` is a canonical subcommand, ``declare_title`` for bare text, or ``open_form``.
    The incident is named by its number (``incident_ref``) or by its channel
    (``incident_channel``, a channel id), or by neither (the channel the command was typed in)."""

    name: str
    incident_ref: int | None = None
    incident_channel: str | None = None
    text: str = ""
    users: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    error: str | None = None
    due: date | None = None
    extra: dict[str, str] = field(default_factory=dict)


def user_from_token(token: str) -> str | None:
    """``<@U123|bob>``, ``<@U123>`` or a raw user id -> ``U123``."""
    match = _MENTION.match(token)
    if match:
        return match.group(1)
    return token if _USER_ID.match(token) else None


def parse_due(token: str, today: date) -> date | None:
    lowered = token.lower()
    if _DATE.match(token):
        try:
            return date.fromisoformat(token)
        except ValueError:
            return None
    if lowered == "today":
        return today
    if lowered == "tomorrow":
        return today + timedelta(days=1)
    if lowered in _WEEKDAYS:
        ahead = (_WEEKDAYS.index(lowered) - today.weekday()) % 7 or 7
        return today + timedelta(days=ahead)
    return None


def named_incident(token: str) -> tuple[int | None, str | None] | None:
    """The incident ``token`` names, as (number, channel id): ``INC-42`` or ``#42`` by its
    number, ``<#C123|inc-42-checkout>`` by its channel; None for any other word."""
    # NFKC: ``ＩＮＣ-１`` as a Japanese or Chinese input method types it is INC-1.
    if _REF_TOKEN.match(unicodedata.normalize("NFKC", token)):
        return parse_incident_ref(token), None
    match = _CHANNEL_REF.match(token)
    return (None, match.group(1)) if match else None


STALE_VALUE = (
    "That button is out of date or not valid: nothing was changed. Use the buttons of the "
    "newest message, or type the command (`/incident help` lists them)."
)


def id_from_value(value: object, problem: str = STALE_VALUE) -> int:
    """The id a button's or a form's value carries, or ``InvalidInput(problem)``: a value
    Firebreak did not write (an old message, a tampered request) is an answer, not a crash."""
    number = whole_number(value if isinstance(value, str) else str(value or ""))
    if number is None:
        raise InvalidInput(problem)
    return number


# What may surround a command word that was meant as the command: quotes of every kind (and
# backticks) around it, punctuation after it. Invisible characters (zero-width spaces, joiners,
# direction marks: Unicode's "format" category) are dropped, and compatibility forms (full-width
# letters) read as plain letters (NFKC).
_QUOTES = (
    "\"'`\u00b4"  # straight quotes, backtick, acute accent
    "\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f\u2032\u2033"  # curly, low, primes
    "\u00ab\u00bb\u2039\u203a\u300c\u300d\u300e\u300f"  # guillemets, corner brackets
)
_TRAILING = ".,;:!?\u2026"


def command_word(token: str) -> str:
    """``token`` as a command word: ``“status”``, ``'status'``, `` `status` ``, ``status.`` and
    ``status`` followed by a zero-width space all read ``status``."""
    word = unicodedata.normalize("NFKC", unquoted(token)).lower()
    return word.strip(_QUOTES).rstrip(_QUOTES + _TRAILING)


def unquoted(token: str) -> str:
    """A one-word argument as meant: ``“SEV2”`` (a phone's smart quotes), `` `2` `` and ``2``
    followed by a zero-width space all read as typed without them (``SEV2``, ``2``), and
    ``ＳＥＶ２`` or ``１`` as a Japanese or Chinese input method types them read ``SEV2``, ``1``."""
    visible = "".join(c for c in token if unicodedata.category(c) != "Cf")
    return visible.translate(_FULL_WIDTH).strip(_QUOTES)


# Full-width forms of ASCII (U+FF01..U+FF5E) as plain ASCII. Not all of NFKC: ``²`` is not 2.
_FULL_WIDTH = {0xFF01 + n: 0x21 + n for n in range(0x5E)}


def _subcommand(word: str) -> str | None:
    return SUBCOMMANDS.get(word) or _HELP.get(word) or SUBCOMMANDS.get(word.rstrip("?"))


def parse_command(text: str, *, today: date) -> ParsedCommand:
    raw = (text or "").strip()
    if not raw:
        return ParsedCommand("open_form")
    tokens = raw.split()
    ref: int | None = None
    channel: str | None = None
    rest = raw
    first = named_incident(tokens[0])
    if first is not None:
        ref, channel = first
        rest = raw[len(tokens[0]) :].strip()
        tokens = tokens[1:]
        if not tokens:
            return ParsedCommand("status", incident_ref=ref, incident_channel=channel)
    # The command word as typed, or, when nothing but what a command takes follows it (a lone
    # word, a mention, a number...), as meant: a quoted or punctuated lone word is the command
    # ("/incident “status”"), while a title that starts with one ("'status' page is down") is
    # still a title. The typo guard reads the same word.
    arguments_only = len(rest) <= _GUARDED_LENGTH and all(_argument_like(t) for t in tokens[1:])
    word = command_word(tokens[0]) if arguments_only else tokens[0].lower()
    name = _subcommand(tokens[0].lower()) or _subcommand(word)
    joined = _SEV_JOINED.match(word)
    if name is None and joined and all(named_incident(t) for t in tokens[1:]):
        # "/incident sev1" (or "sev1 INC-4"): the level written against the command. With a
        # title after it, it stays a title ("sev1 checkout down" declares).
        name, tokens = "sev", ["sev", joined.group(1), *tokens[1:]]
        rest = " ".join(tokens)
    if name is None:
        suggestion = close_command(word)
        if suggestion is not None and first is None and arguments_only:
            # "/incident stauts" or "/incident sevv 2": a mistyped command, not a title.
            return ParsedCommand("did_you_mean", text=rest, args=(suggestion,))
        extra = {"suggestion": suggestion} if suggestion else {}
        return ParsedCommand(
            "declare_title", incident_ref=ref, incident_channel=channel, text=rest, extra=extra
        )
    body = rest[len(tokens[0]) :].strip()
    args = tuple(tokens[1:])
    named = None
    if args and name not in _NO_INCIDENT and not (name == "done" and len(args) == 1):
        named = named_incident(args[0])
        if named is not None:
            # "resolve INC-42 rolled back": the incident, then the text.
            body = body[len(args[0]) :].strip()
            args = args[1:]
        elif name in _TRAILING_REF:
            # "sev 2 INC-42": these take no free text, so the incident may come last.
            named = named_incident(args[-1])
            if named is not None:
                args = args[:-1]
                body = " ".join(args)
    if named is not None:
        if first is not None and named != first:
            # A person must never change another incident than the one they meant.
            return ParsedCommand(
                name,
                incident_ref=ref,
                incident_channel=channel,
                error="That names two incidents. Name one, e.g. `/incident INC-42 resolve`.",
            )
        ref, channel = named
    return replace(_shape(name, ref, body, args, today, channel), incident_channel=channel)


# The typo guard. A single word close to a command (or such a word followed only by what a
# command takes: a mention, "me", a number, an incident number, a date) is a mistyped command,
# never a title: Firebreak asks "did you mean ...?" instead of declaring.
_GUARDED_LENGTH = 200
_ARGUMENT = re.compile(
    r"^(?:<@[UW][A-Z0-9]{2,}(?:\|[^>]*)?>|<#[CG][A-Z0-9]{2,}(?:\|[^>]*)?>|me|#?\d{1,18}"
    r"|inc-?\d{1,18}|sev\d|\d{4}-\d{2}-\d{2})$",
    re.IGNORECASE,
)


def _argument_like(token: str) -> bool:
    return bool(_ARGUMENT.match(token))


def close_command(word: str) -> str | None:
    """The command ``word`` is probably a typo of, or None.

    Close means one edit for words of up to four letters, two for longer words, or a prefix of
    a command of at least three letters (``stat``). Exact commands are not typos. An edit is an
    insertion, a deletion, a substitution or a swap of two neighbouring letters (optimal string
    alignment: ``stauts`` is one edit from ``status``)."""
    word = word.lower()
    if len(word) < 2 or not word.isalpha() or word in SUBCOMMANDS:
        return None
    allowed = 1 if len(word) <= 4 else 2
    best: tuple[int, str] | None = None
    for command in SUBCOMMANDS:
        distance = 0 if len(word) >= 3 and command.startswith(word) else OSA.distance(word, command)
        if distance <= allowed and (best is None or distance < best[0]):
            best = (distance, command)
    return best[1] if best else None


def _shape(
    name: str,
    ref: int | None,
    body: str,
    args: tuple[str, ...],
    today: date,
    channel: str | None = None,
) -> ParsedCommand:
    def bad(message: str) -> ParsedCommand:
        return ParsedCommand(name, incident_ref=ref, error=message)

    if name == "declare":
        if ref is not None or channel is not None:
            # "/incident INC-1 declare ..." (or "#inc-1-db declare ..."): a new incident was
            # asked of an existing one.
            that = f"INC-{ref}" if ref is not None else f"<#{channel}>"
            return bad(
                f"`declare` opens a new incident, so it takes no incident: "
                f"{USAGE['declare']}. To add to {that}: `/incident {that} update "
                "&lt;text&gt;` or `note &lt;text&gt;`."
            )
        if not body:
            return bad(f"Give the incident a title: {USAGE['declare']}")
        return ParsedCommand("declare", incident_ref=ref, text=body)
    if name == "status" and args:
        # "/incident status identified": a status people choose on the summary, typed.
        return ParsedCommand("set_status", incident_ref=ref, args=(unquoted(" ".join(args)),))
    if name == "sev":
        if not args:
            return bad(f"Say which severity: {USAGE['sev']}")
        # A severity's name may be words ("P2 - High"), typed with or without quotes.
        return ParsedCommand("sev", incident_ref=ref, args=(unquoted(" ".join(args)),))
    if name == "ic":
        if len(args) != 1:
            return bad(f"Say who is the commander: {USAGE['ic']}")
        if args[0].lower() == "me":
            return ParsedCommand("ic", incident_ref=ref, users=("me",))
        user = user_from_token(args[0])
        if user is None:
            return bad(f"{_not_a_person(args[0])} {USAGE['ic']}")
        return ParsedCommand("ic", incident_ref=ref, users=(user,))
    if name == "role":
        if len(args) < 2:
            return bad(f"Say which role and who: {USAGE['role']}")
        user = "me" if args[-1].lower() == "me" else user_from_token(args[-1])
        if user is None:
            return bad(f"{_not_a_person(args[-1])} {USAGE['role']}")
        return ParsedCommand("role", incident_ref=ref, text=" ".join(args[:-1]), users=(user,))
    if name in ("classify", "notified"):
        if not body:
            return bad(f"Say which: {USAGE[name]}")
        return ParsedCommand(name, incident_ref=ref, text=body, args=args)
    if name in ("update", "note"):
        if not body:
            return bad(f"Add the text: {USAGE[name]}")
        return ParsedCommand(name, incident_ref=ref, text=body)
    if name == "action":
        return _shape_action(ref, list(args), today)
    if name == "done":
        number = whole_number(unquoted(args[0]).lstrip("#")) if len(args) == 1 else None
        if number is None or number > 99_999:
            return bad(f"Say which action item: {USAGE['done']}")
        return ParsedCommand("done", incident_ref=ref, args=(str(number),))
    if (
        name
        in (
            "ack",
            "mitigate",
            "close",
            "list",
            "timeline",
            "actions",
            "postmortem",
            "retry",
            "help",
        )
        and args
    ):
        return bad(f"`{name}` takes no words after it. Type `/incident help` for the commands.")
    return ParsedCommand(name, incident_ref=ref, text=body, args=args)


def _not_a_person(token: str) -> str:
    if token.startswith("@"):
        return (
            f"Slack did not turn {token[:40]!r} into a mention: pick the person from the @ "
            "list as you type, so Slack sends who they are."
        )
    return f"{token[:40]!r} is not a person: mention them with @."


_PLAIN_HANDLE = re.compile(r"^@[\w.\-]+$")
"""``@dana`` typed without picking the person: Slack sends it as text, not a mention."""


def _shape_action(ref: int | None, words: list[str], today: date) -> ParsedCommand:
    due = None
    owner = None
    while words:
        tail = words[-1]
        parsed_due = parse_due(tail, today) if due is None else None
        if parsed_due is not None:
            due = parsed_due
            words.pop()
            continue
        if due is None and _DATE.match(tail):
            return ParsedCommand(
                "action",
                incident_ref=ref,
                error=f"{tail} is not a date. Write the due date as YYYY-MM-DD, e.g. "
                f"{(today + timedelta(days=7)).isoformat()}.",
            )
        user = user_from_token(tail) if owner is None else None
        if user is not None:
            owner = user
            words.pop()
            continue
        if owner is None and _PLAIN_HANDLE.match(tail):
            # Meant as the owner, as ``ic`` and ``role`` read it: never dropped into the text.
            return ParsedCommand("action", incident_ref=ref, error=_not_a_person(tail))
        break
    text = " ".join(words).strip()
    if not text:
        return ParsedCommand(
            "action", incident_ref=ref, error=f"Describe the action item: {USAGE['action']}"
        )
    if due is not None and due < today:
        return ParsedCommand(
            "action", incident_ref=ref, error=f"The due date {due.isoformat()} is in the past."
        )
    return ParsedCommand(
        "action", incident_ref=ref, text=text, users=(owner,) if owner else (), due=due
    )
