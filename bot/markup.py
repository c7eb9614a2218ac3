"""Slack markup to readable text, and the Markdown escaping that keeps a document's structure.

Slack sends message text in its own markup: ``<@U123>`` for a person, ``<#C123|general>`` for a
channel, ``<https://x|label>`` for a link, ``<!here>`` for a broadcast, and ``&amp;``, ``&lt;``,
``&gt;`` for the three characters it reserves. A postmortem is read outside Slack, by people who
never saw those codes, so :func:`slack_to_markdown` turns them into what a reader expects:
``@Name``, ``#general``, ``[label](https://x)``.

Order matters. The angle-bracket tokens and the entities are recognised in one left-to-right
pass: a token is converted first, and an entity is unescaped exactly once. So ``&lt;@U1&gt;``
(someone typing those characters) stays the literal text ``<@U1>`` instead of becoming a mention,
and ``&amp;lt;`` becomes ``&lt;``, never ``<``.

The ``escape_*`` functions place arbitrary text into Markdown without letting it change the
structure around it: a ``|`` or a line break inside a table cell would split the row, and a stray
``<div>`` or ``<!--`` would be taken as HTML by renderers and swallow what follows.

Everything here is pure: names come from a :class:`NameResolver` the caller passes in.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import urlsplit


class NameResolver(Protocol):
    """Turns Slack ids into names people recognise.

    The Slack layer implements it with ``users.info`` / ``conversations.info``; the command line
    has no Slack connection and passes nothing. ``None`` means "unknown": the raw id is shown."""

    def user(self, user_id: str) -> str | None: ...

    def channel(self, channel_id: str) -> str | None: ...


# A Slack token (<...> without nested brackets or line breaks) or one of Slack's three entities.
_TOKEN = re.compile(r"<([^<>\n]*)>|&(amp|lt|gt);")
_ENTITY = re.compile(r"&(amp|lt|gt);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">"}
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_BROADCASTS = {"here", "channel", "everyone"}
# Slack code blocks are ```...``` anywhere in a line; Markdown needs the fences on lines of their
# own, or the first line of the code is read as the fence's "info string" and lost.
_CODE_BLOCK = re.compile(r"```(.*?)```", re.DOTALL)


def _entity(match: re.Match[str]) -> str:
    return _ENTITIES[match.group(1)]


def unescape_entities(text: str) -> str:
    """Slack's ``&amp;``, ``&lt;`` and ``&gt;`` to characters, each exactly once."""
    return _ENTITY.sub(_entity, text) if "&" in text else text


def slack_to_markdown(text: str, names: NameResolver | None = None) -> str:
    """Readable Markdown from Slack message markup.

    ``<@U123>`` and ``<@U123|name>`` -> ``@Name``; ``<#C123>`` / ``<#C123|name>`` -> ``#name``;
    ``<!here>`` -> ``@here``; ``<!subteam^S1|@sre>`` -> ``@sre``; ``<https://x|label>`` ->
    ``[label](https://x)``; ``<https://x>`` -> ``https://x``; entities unescaped once.
    Angle brackets that are not Slack markup are kept as written."""

    if "<" not in text and "&" not in text and "```" not in text:
        return text  # most text has no markup at all

    def convert(match: re.Match[str]) -> str:
        body = match.group(1)
        if body is None:
            return _ENTITIES[match.group(2)]
        return _convert_token(body, names)

    return _fence_code_blocks(_TOKEN.sub(convert, text))


def slack_to_plain(text: str) -> str:
    """Plain text from Slack markup, for what is not Markdown (incident titles, channel names):
    mentions become ``@name``, links their label (or the URL), entities characters."""
    if "<" not in text and "&" not in text:
        return text

    def convert(match: re.Match[str]) -> str:
        body = match.group(1)
        if body is None:
            return _ENTITIES[match.group(2)]
        target, _, raw_label = body.partition("|")
        if _SCHEME.match(target):
            return unescape_entities(raw_label).strip() or unescape_entities(target)
        return _convert_token(body, None)

    return _TOKEN.sub(convert, text)


def _convert_token(body: str, names: NameResolver | None) -> str:
    target, _, raw_label = body.partition("|")
    label = unescape_entities(raw_label).strip()
    if target.startswith("@") and len(target) > 1:
        user_id = target[1:]
        name = (names.user(user_id) if names else None) or label or user_id
        return "@" + name.removeprefix("@")
    if target.startswith("#") and len(target) > 1:
        channel_id = target[1:]
        name = (names.channel(channel_id) if names else None) or label or channel_id
        return "#" + name.removeprefix("#")
    if target.startswith("!") and len(target) > 1:
        return _special(target[1:], label)
    if _SCHEME.match(target):
        url = unescape_entities(target)
        if not label or label == url:
            return url
        return f"[{escape_link_label(label)}]({escape_link_url(url)})"
    return "<" + unescape_entities(body) + ">"


def _special(command: str, label: str) -> str:
    """``<!here>``, ``<!subteam^S1|@sre>``, ``<!date^...|fallback>`` and friends."""
    name, _, argument = command.partition("^")
    if name in _BROADCASTS:
        return "@" + name
    if name == "subteam":
        group = label or argument
        return "@" + group.removeprefix("@")
    if name == "date":
        if label:
            return label
        stamp = argument.partition("^")[0]
        if stamp.isdigit():
            return datetime.fromtimestamp(int(stamp), UTC).strftime("%Y-%m-%d %H:%M UTC")
    return label or "@" + name


# --------------------------------------------------------------------------------------------
# Text Firebreak posts again in Slack

# <!here>, <!channel>, <!everyone> (with or without a |label) and user groups <!subteam^S1|@sre>.
_BROADCAST = re.compile(r"<!(here|channel|everyone|subteam\^[^<>|\n]*)(?:\|([^<>\n]*))?>")
_PLAIN_BROADCAST = re.compile(r"(?<![\w@])@(here|channel|everyone)\b", re.IGNORECASE)
WORD_JOINER = "\u2060"
"""Between ``@`` and a name it keeps the text readable (``@here``) while no Slack client or
automatic parsing takes it for a mention."""


def neutralise_broadcasts(text: str, *, allow: bool = False) -> str:
    """Slack markup that Firebreak re-posts (status updates, resolve text, notes, captured
    messages, action items, titles), with broadcast mentions shown but silent.

    Slack delivers ``@channel`` typed in a command as ``<!channel>``; posting that text again
    from the bot would notify the whole channel (and the announcements channel), sidestepping
    the workspace's own @channel restrictions. ``<!channel>`` becomes ``@channel`` and
    ``<!subteam^S1|@sre>`` becomes ``@sre``, with an invisible word joiner after the ``@`` so
    nothing parses them back into mentions (a plain ``@here`` gets the joiner too).
    ``allow`` (``[slack] allow_broadcast_mentions``) returns the text unchanged. Mentions of
    single people are left alone: they notify one person, as the author meant."""
    if allow or ("<!" not in text and "@" not in text):
        return text

    def quiet(match: re.Match[str]) -> str:
        name, label = match.group(1), (match.group(2) or "").strip()
        group = name.partition("^")[2] if name.startswith("subteam") else None
        shown = name if group is None else (label or group or "group")
        return "@" + WORD_JOINER + shown.removeprefix("@")

    # "@channel" typed as plain text (in a form) is quietened too, in case Slack's automatic
    # parsing would take it for the mention.
    return _PLAIN_BROADCAST.sub("@" + WORD_JOINER + r"\1", _BROADCAST.sub(quiet, text))


def _fence_code_blocks(text: str) -> str:
    def fence(match: re.Match[str]) -> str:
        code = match.group(1)
        if "\n" not in code:
            return match.group(0)  # one line: ```x``` is already inline code in Markdown
        start, end = match.span()
        before = "" if start == 0 or text[start - 1] == "\n" else "\n"
        after = "" if end == len(text) or text[end] == "\n" else "\n"
        return f"{before}```\n{code.strip(chr(10))}\n```{after}"

    return _CODE_BLOCK.sub(fence, text)


# --------------------------------------------------------------------------------------------
# Placing text into Markdown


def escape_link_label(label: str) -> str:
    """Text for ``[...]``: brackets and backslashes would end or bend the label."""
    return _LABEL_SPECIAL.sub(r"\\\1", " ".join(label.split()))


def escape_link_url(url: str) -> str:
    """A URL for ``(...)``: spaces, parentheses and angle brackets are percent-encoded."""
    for char, code in ((" ", "%20"), ("(", "%28"), (")", "%29"), ("<", "%3C"), (">", "%3E")):
        url = url.replace(char, code)
    return url


_LABEL_SPECIAL = re.compile(r"([\\\[\]])")
# "<" that a Markdown renderer would take as the start of an HTML tag or comment.
_HTML_START = re.compile(r"<(?=[A-Za-z/!?])")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(`+)(?:.+?)(?<!`)\1(?!`)")


def _escape_html(text: str, *, fences: bool = True) -> str:
    """Escape HTML starts outside code: `spans`, and fenced blocks unless ``fences`` is false
    (a table cell cannot hold a fenced block, so there a fence is just text)."""
    if "<" not in text:
        return text  # nothing a renderer could take for HTML: the common case, kept fast
    lines: list[str] = []
    fence: str | None = None
    for line in text.split("\n"):
        if fence is not None:
            lines.append(line)
            if _closes(line, fence):
                fence = None
            continue
        opened = _opens(line) if fences else None
        if opened:
            fence = opened
            lines.append(line)
            continue
        parts: list[str] = []
        position = 0
        for span in _CODE_SPAN.finditer(line):
            parts.append(_neutralise_html(line[position : span.start()]))
            parts.append(span.group(0))
            position = span.end()
        parts.append(_neutralise_html(line[position:]))
        lines.append("".join(parts))
    return "\n".join(lines)


def _opens(line: str) -> str | None:
    """The fence ``line`` opens (```` ``` ```` or ``~~~``, any longer run), if it opens one: a
    backtick fence's info string has no backtick (```` ```x``` ```` is inline code)."""
    marker = _FENCE.match(line)
    if marker is None or (marker.group(1)[0] == "`" and "`" in line[marker.end() :]):
        return None
    return marker.group(1)


def _closes(line: str, fence: str) -> bool:
    """Whether ``line`` closes ``fence``: the same character, at least as many, nothing else."""
    marker = _FENCE.match(line)
    return (
        marker is not None
        and marker.group(1)[0] == fence[0]
        and len(marker.group(1)) >= len(fence)
        and not line.strip().strip(fence[0])
    )


def _closed_fences(text: str) -> str:
    """``text`` with a code fence it leaves open closed where it ends: placed in a document, an
    open fence turns everything after it into code."""
    fence: str | None = None
    for line in text.split("\n"):
        if fence is None:
            fence = _opens(line)
        elif _closes(line, fence):
            fence = None
    return text if fence is None else f"{text}\n{fence}"


def _neutralise_html(text: str) -> str:
    return _HTML_START.sub(r"\\<", text)


def escape_block(text: str) -> str:
    """Multi-line text for a paragraph or list item: keeps its lines and its code, but a ``<``
    that would open an HTML tag or comment is escaped so the text shows as written, and a code
    fence left open is closed where the text ends."""
    return _closed_fences(_escape_html(text))


def escape_inline(text: str) -> str:
    """Text for one line (a heading, a bullet): line breaks become spaces."""
    return _escape_html(" ".join(text.split()))


def escape_table_cell(text: str) -> str:
    """Text for a table cell: ``|`` is escaped and line breaks become ``<br>``, so the row keeps
    its columns whatever the text holds."""
    cell = _escape_html(text.strip(), fences=False).replace("|", "\\|")
    return "<br>".join(line.strip() for line in cell.split("\n"))


URL_MAX = 2_000


def safe_url(value: object) -> str | None:
    """An absolute http(s) URL with a host, or ``None``: ``javascript:``, ``data:``, relative
    paths (``../../etc/passwd``, ``?orgId=1``) and URLs with spaces or controls never become
    links."""
    if not isinstance(value, str):
        return None
    url = value.strip()
    if not url or len(url) > URL_MAX or any(c.isspace() or ord(c) < 32 for c in url):
        return None
    if any(c in url for c in "<>|\"'`"):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return url
