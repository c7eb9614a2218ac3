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
    has no Slack connection and passes nothing (a draft then uses the names kept with the
    incident's earlier drafts, ``bot.postmortem.names``). ``None`` means "unknown": the raw id
    is shown."""

    def user(self, user_id: str) -> str | None: ...

    def channel(self, channel_id: str) -> str | None: ...


# A Slack token (<...> without nested brackets or line breaks) or one of Slack's three entities.
_TOKEN = re.compile(r"<([^<>\n]*)>|&(amp|lt|gt);")
_ENTITY = re.compile(r"&(amp|lt|gt);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">"}
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
BROADCASTS = frozenset({"here", "channel", "everyone"})
"""The words that notify a whole channel (``<!here>``, ``@channel``...)."""
# Slack code blocks are ```...``` anywhere in a line; Markdown needs the fences on lines of their
# own, or the first line of the code is read as the fence's "info string" and lost.
_CODE_BLOCK = re.compile(r"```(.*?)```", re.DOTALL)


def _entity(match: re.Match[str]) -> str:
    return _ENTITIES[match.group(1)]


def unescape_entities(text: str) -> str:
    """Slack's ``&amp;``, ``&lt;`` and ``&gt;`` to characters, each exactly once."""
    return _ENTITY.sub(_entity, text) if "&" in text else text


class Markdown(str):
    """Text that is already Markdown (what :func:`slack_to_markdown` returns): the ``escape_*``
    functions keep its structure but do not escape it again. Any other ``str`` is plain text."""

    __slots__ = ()


# Slack code: ```blocks``` (one left open runs to the end) and `spans`. Inside them nothing is
# formatting, so nothing is escaped.
_SLACK_CODE = re.compile(r"```.*?(?:```|\Z)|`[^`\n]+`", re.DOTALL)


def slack_to_markdown(text: str, names: NameResolver | None = None) -> Markdown:
    """Readable Markdown from Slack message markup, in which what people typed stays text.

    ``<@U123>`` and ``<@U123|name>`` -> ``@Name``; ``<#C123>`` / ``<#C123|name>`` -> ``#name``;
    ``<!here>`` -> ``@here``; ``<!subteam^S1|@sre>`` -> ``@sre``; ``<https://x|label>`` ->
    ``[label](https://x)``, or ``https://x`` when the label shows another address
    (:func:`spoofs`); ``<https://x>`` -> ``https://x``; entities unescaped once. Outside code,
    what would make a link or an image (``[x](y)``, ``![i](y)``) is backslash-escaped
    (:func:`escape_markdown_text`), so it shows as typed."""

    def convert(match: re.Match[str]) -> str:
        body = match.group(1)
        if body is None:
            return _ENTITIES[match.group(2)]
        return _convert_token(body, names)

    parts: list[str] = []
    position = 0
    for code in _SLACK_CODE.finditer(text):
        parts.append(_prose_to_markdown(text[position : code.start()], names))
        parts.append(_TOKEN.sub(convert, code.group(0)))
        position = code.end()
    parts.append(_prose_to_markdown(text[position:], names))
    return Markdown(_fence_code_blocks("".join(parts)))


def _prose_to_markdown(text: str, names: NameResolver | None) -> str:
    parts: list[str] = []
    position = 0
    for match in _TOKEN.finditer(text):
        parts.append(escape_markdown_text(text[position : match.start()]))
        body = match.group(1)
        if body is None:
            parts.append(escape_markdown_text(_ENTITIES[match.group(2)]))
        else:
            parts.append(_convert_token(body, names, markdown=True))
        position = match.end()
    parts.append(escape_markdown_text(text[position:]))
    return "".join(parts)


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
            url, label = unescape_entities(target), unescape_entities(raw_label).strip()
            return url if not label or spoofs(label, url) else label
        return _convert_token(body, None)

    return _TOKEN.sub(convert, text)


def _convert_token(body: str, names: NameResolver | None, *, markdown: bool = False) -> str:
    """One Slack token as text; with ``markdown``, as Markdown whose text is escaped."""
    text = escape_markdown_text if markdown else _same
    target, _, raw_label = body.partition("|")
    label = unescape_entities(raw_label).strip()
    if target.startswith("@") and len(target) > 1:
        user_id = target[1:]
        name = (names.user(user_id) if names else None) or label or user_id
        return "@" + text(name.removeprefix("@"))
    if target.startswith("#") and len(target) > 1:
        channel_id = target[1:]
        name = (names.channel(channel_id) if names else None) or label or channel_id
        return "#" + text(name.removeprefix("#"))
    if target.startswith("!") and len(target) > 1:
        return text(_special(target[1:], label))
    if _SCHEME.match(target):
        url = unescape_entities(target)
        if markdown and not _linkable(url):
            # ``javascript:``, ``data:``: text, never a link in a draft pasted into a wiki.
            return text(f"{label} ({url})" if label and label != url else url)
        if not label or label == url or spoofs(label, url):
            return url
        return f"[{escape_link_label(label)}]({escape_link_url(url)})"
    return text("<" + unescape_entities(body) + ">")


def _linkable(url: str) -> bool:
    """Whether a Markdown link may point at ``url``: by its scheme, http(s) or mailto (the
    address itself is escaped for Markdown by ``escape_link_url``)."""
    return url.split(":", 1)[0].casefold() in ("http", "https", "mailto")


def _same(text: str) -> str:
    return text


# A label that reads as an address: a URL with a scheme, or a host name (``bank.example``,
# ``www.bank.example/login``, ``user@bank.example``).
_ADDRESS = re.compile(
    r"^(?:[A-Za-z][A-Za-z0-9+.-]*://?)?(?:[^\s/@]+@)?(?:[\w-]+\.)+[A-Za-z][\w-]*\.?(?::\d+)?"
    r"(?:[/?#]\S*)?$"
)


def spoofs(label: str, url: str) -> bool:
    """Whether a link's ``label`` shows an address other than its target ``url``: a label that
    looks like a URL or a host name and is neither ``url`` itself nor ``url``'s host. Such a
    link is shown as its target (or the target's host), never with the label."""
    shown = label.strip()
    if not _ADDRESS.match(shown):
        return False
    host = link_host(url)
    plain = shown.rstrip("/").lower()
    return plain not in (url.rstrip("/").lower(), host, f"http://{host}", f"https://{host}")


def link_host(url: str) -> str:
    """The host of ``url`` (lower case), or ``url`` itself when it has none."""
    try:
        return urlsplit(url).hostname or url
    except ValueError:
        return url


def _special(command: str, label: str) -> str:
    """``<!here>``, ``<!subteam^S1|@sre>``, ``<!date^...|fallback>`` and friends."""
    name, _, argument = command.partition("^")
    if name in BROADCASTS:
        return "@" + name
    if name == "subteam":
        group = label or argument
        return "@" + group.removeprefix("@")
    if name == "date":
        if label:
            return label
        stamp = argument.partition("^")[0]
        if stamp.isdigit():
            try:
                return datetime.fromtimestamp(int(stamp), UTC).strftime("%Y-%m-%d %H:%M UTC")
            except (OverflowError, OSError, ValueError):
                return stamp  # past year 9999: the stamp as sent, never a lost postmortem
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


def escape_mrkdwn(text: str) -> str:
    """Text shown as written inside Slack markup (mrkdwn, or a stored summary Slack renders):
    ``&``, ``<`` and ``>`` become entities, so no ``<https://x|label>`` link, ``<@U1>``,
    ``<#C1>`` or ``<!here>`` in it works. For text from outside (alerts): nothing in it can
    format or ping."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


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


# Markdown's inline syntax outside code: links and images (``[text](url)``, ``![alt](url)``),
# emphasis and strikethrough, and the backslash itself (which would undo an escape). HTML and
# autolinks are the ``<`` rule's (``_escape_html``); code (backticks) is left as typed.
_LINK_SYNTAX = re.compile(r"[\\\[\]*_~]")
# Code in text people typed: fenced blocks (backticks or tildes; one left open runs to the end)
# and spans.
_TYPED_CODE = re.compile(r"```.*?(?:```|\Z)|~~~.*?(?:~~~|\Z)|`[^`\n]+`", re.DOTALL)


def escape_markdown_text(text: str) -> str:
    """Plain text as Markdown that shows as written (CommonMark backslash escapes): a
    ``[link](url)``, an ``![image](url)`` or ``*emphasis*`` someone typed stays text. Code
    spans and blocks are kept: they show as written anyway."""
    parts: list[str] = []
    position = 0
    for code in _TYPED_CODE.finditer(text):
        parts.append(_LINK_SYNTAX.sub(r"\\\g<0>", text[position : code.start()]))
        parts.append(code.group(0))
        position = code.end()
    parts.append(_LINK_SYNTAX.sub(r"\\\g<0>", text[position:]))
    return "".join(parts)


def escape_link_label(label: str) -> str:
    """Text for ``[...]``: shown as written, brackets and backslashes included."""
    return escape_markdown_text(" ".join(label.split()))


def escape_link_url(url: str) -> str:
    """A URL for ``(...)``: spaces, parentheses and angle brackets are percent-encoded."""
    for char, code in ((" ", "%20"), ("(", "%28"), (")", "%29"), ("<", "%3C"), (">", "%3E")):
        url = url.replace(char, code)
    return url


# "<" that a Markdown renderer would take as the start of an HTML tag or comment.
_HTML_START = re.compile(r"(?<!\\)((?:\\\\)*)<(?=[A-Za-z/!?])")
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
    return _HTML_START.sub(r"\1\\<", text)


_BLOCK_MARK = re.compile(r"^( {0,3})(#{1,6}(?=[ \t]|$)|=+[ \t]*$|-{3,}[ \t]*$)")
"""A line that would make a heading (``## Cause``, a ``===`` or ``---`` under a line) or a rule."""


def _no_headings(text: str) -> str:
    """``text`` whose lines (outside code) cannot make headings or rules: what people typed in
    Slack, which has neither, must not add a section to the document it is placed in."""
    lines, fence = [], None
    for line in text.split("\n"):
        if fence is None:
            fence = _opens(line)
            if fence is None:
                line = _BLOCK_MARK.sub(lambda m: f"{m.group(1)}\\{m.group(2)}", line)
        elif _closes(line, fence):
            fence = None
        lines.append(line)
    return "\n".join(lines)


def escape_block(text: str) -> str:
    """Multi-line text for a paragraph or list item: keeps its lines, but a ``<`` that would
    open an HTML tag or comment is escaped, a line that would make a heading or a rule is
    escaped, and a code fence left open is closed where the text ends. Plain text (not
    :class:`Markdown`) cannot link (:func:`escape_markdown_text`); Markdown keeps the links
    Firebreak made."""
    if not isinstance(text, Markdown):
        text = escape_markdown_text(text)
    return _closed_fences(_escape_html(_no_headings(text)))


def escape_inline(text: str) -> str:
    """Text for one line (a heading, a bullet): line breaks become spaces; plain text (not
    :class:`Markdown`) cannot link, so a title shows as written."""
    line = " ".join(text.split())
    return _escape_html(line if isinstance(text, Markdown) else escape_markdown_text(line))


def escape_table_cell(text: str) -> str:
    """Text for a table cell: ``|`` is escaped and line breaks become ``<br>``, so the row keeps
    its columns whatever the text holds; plain text (not :class:`Markdown`) cannot link."""
    cell = text.strip() if isinstance(text, Markdown) else escape_markdown_text(text.strip())
    cell = _escape_html(cell, fences=False).replace("|", "\\|")
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
