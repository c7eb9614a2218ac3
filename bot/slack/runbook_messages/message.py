"""Runbooks in Slack: markdown -> ``mrkdwn``, and the Block Kit message of a runbook run.

Pure functions: data in, dicts out. Slack's ``mrkdwn`` is not Markdown: bold is ``*x*``, links
are ``<url|text>``, there are no headings, tables or images, and ``&``, ``<``, ``>`` must be
escaped. The converter walks
markdown-it's syntax tree, so code stays verbatim (only ``&<>`` escaped) and every construct gets
a readable form.

Every payload built here stays within Slack's limits (checked by
:func:`bot.slack.limits.message_errors` in the tests): at most 50 blocks, 3,000 characters per
section, unique action ids. Long steps are split between sections at safe places (a code block
cut in two is closed and reopened) and, past a per-page budget, cut with a note that says where
the rest is. The budget keeps the whole page near 12,000 characters because Slack rejects
messages whose blocks are much larger than that (``msg_blocks_too_long``) even when each block is
within its own limit.
"""

from __future__ import annotations

import html
import math
import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from html.parser import HTMLParser
from typing import Any

from markdown_it.tree import SyntaxTreeNode

from bot.runbooks.parser import Runbook, make_markdown, markdown_plain_text
from bot.runbooks.progress import (
    DONE,
    FINISHED_STATES,
    IN_PROGRESS,
    SKIPPED,
    RunView,
    StepView,
)
from bot.slack.limits import (
    BUTTON_TEXT,
    HEADER_TEXT,
    MESSAGE_BLOCKS,
    SECTION_TEXT,
    escape_mrkdwn,
    truncate,
)

PAGE_TEXT_BUDGET = 10_000
"""Characters of text across all blocks of one page (Slack's practical message size)."""
FALLBACK_TEXT_MAX = 3_000
STEP_SECTIONS_MAX = 3
"""A step shows in at most this many sections; longer steps are cut with a note."""
CONTEXT_SECTIONS_MAX = 3
"""The context (Meaning, Impact...) shows in at most this many sections on the first page."""
CONTEXT_CUT_NOTE = "_… more context in the runbook file._"
MIN_SPLIT = 80
_FENCE = "```"

_MD = make_markdown()


# --------------------------------------------------------------------------------------------
# Markdown -> mrkdwn


@dataclass(frozen=True)
class Unit:
    """A piece of rendered mrkdwn: prose (already escaped) or the content of a code block."""

    code: bool
    text: str

    def render(self) -> str:
        return f"{_FENCE}\n{self.text}\n{_FENCE}" if self.code else self.text


def _escape(text: str) -> str:
    return escape_mrkdwn(text)


def _wrap(mark: str, inner: str) -> str:
    """Emphasis markers hug the words (``*bold*``): Slack ignores ``* bold *``."""
    out = []
    for part in inner.split("\n"):
        core = part.strip()
        if not core:
            out.append(part)
            continue
        lead = part[: len(part) - len(part.lstrip())]
        trail = part[len(part.rstrip()) :]
        out.append(f"{lead}{mark}{core}{mark}{trail}")
    return "\n".join(out)


_SCHEMES = ("http://", "https://", "mailto:", "ftp://", "slack://", "tel:")
_TAG = re.compile(r"^<\s*(/?)\s*([a-zA-Z][a-zA-Z0-9-]*)")
_ANY_TAG = re.compile(r"<[^>]*>")
_INLINE_TAGS = {
    "br": "\n",
    "code": "`",
    "kbd": "`",
    "tt": "`",
    "samp": "`",
    "b": "*",
    "strong": "*",
    "i": "_",
    "em": "_",
    "s": "~",
    "del": "~",
    "strike": "~",
}
URL_MAX = 2_000


def _url(href: str) -> str:
    return (
        href.strip()
        .replace("&", "&amp;")
        .replace("<", "%3C")
        .replace(">", "%3E")
        .replace("|", "%7C")
        .replace(" ", "%20")
    )


def _link(href: str, label: str, *, autolink: bool = False) -> str:
    """``<url|label>`` for absolute links; relative links have no meaning in Slack, so their
    label is kept with the path next to it."""
    href = href.strip()
    if href.casefold().startswith(_SCHEMES) and len(href) <= URL_MAX:
        url = _url(href)
        if autolink or not label.strip() or label == _escape(href):
            return f"<{url}>"
        return f"<{url}|{label.replace(chr(10), ' ')}>"
    if not href or href.startswith("#"):
        return label
    shown = _escape(href if len(href) <= 200 else href[:199] + "…")
    return f"{label} ({shown})" if label.strip() else shown


class _Writer:
    """Collects units; lines of prose get the prefixes of the lists and quotes they are in."""

    def __init__(self) -> None:
        self.units: list[Unit] = []
        self.lines: list[str] = []
        self.first_prefix = ""
        self.rest_prefix = ""
        self.pending_first = False
        self.in_list = 0
        self.in_quote = 0

    def line(self, text: str) -> None:
        for part in text.split("\n"):
            if self.pending_first:
                self.lines.append(self.first_prefix + part.lstrip())
                self.pending_first = False
            else:
                self.lines.append(self.rest_prefix + part)

    def flush(self) -> None:
        if self.lines:
            text = "\n".join(line.rstrip() for line in self.lines).strip("\n")
            if text.strip():
                self.units.append(Unit(False, text))
            self.lines = []

    def code(self, content: str) -> None:
        if not content.strip():
            return
        if self.pending_first:
            self.lines.append(self.first_prefix.rstrip())
            self.pending_first = False
        self.flush()
        self.units.append(Unit(True, content))


class _Renderer:
    def __init__(self) -> None:
        self.out = _Writer()

    # -- blocks

    def blocks(self, nodes: Iterable[SyntaxTreeNode]) -> None:
        for node in nodes:
            self.block(node)

    def block(self, node: SyntaxTreeNode) -> None:
        out = self.out
        kind = node.type
        if kind == "paragraph" and self._namespaced(node):
            self.html(node.children[0].content)
        elif kind == "paragraph":
            text = self.inline_of(node)
            if out.in_quote:
                text = _ALERT_MARKER.sub(_alert_label, text, count=1)
            if not out.in_list:
                out.flush()
            out.line(text)
            if not out.in_list:
                out.flush()
        elif kind == "heading":
            out.flush()
            out.line(_wrap("*", self.inline_of(node)))
            out.flush()
        elif kind in ("bullet_list", "ordered_list"):
            self.list(node)
        elif kind in ("fence", "code_block"):
            out.code(_escape(node.content.rstrip("\n")))
        elif kind == "blockquote":
            if not out.in_list:
                out.flush()
            saved = (out.first_prefix, out.rest_prefix, out.pending_first)
            base = out.first_prefix if out.pending_first else out.rest_prefix
            out.first_prefix, out.rest_prefix = base + "> ", out.rest_prefix + "> "
            out.pending_first = True
            out.in_quote += 1
            self.blocks(node.children)
            out.in_quote -= 1
            out.first_prefix, out.rest_prefix, out.pending_first = saved[0], saved[1], False
            if not out.in_list:
                out.flush()
        elif kind == "table":
            out.code(self.table(node))
        elif kind == "hr":
            out.flush()
            out.line("───")
            out.flush()
        elif kind == "html_block":
            self.html(node.content)
        else:
            self.blocks(node.children)

    @staticmethod
    def _namespaced(node: SyntaxTreeNode) -> bool:
        """A paragraph of Confluence markup (``<ac:structured-macro>``...): HTML, not markdown."""
        inline = node.children[0] if node.children else None
        return inline is not None and bool(_NAMESPACED_TAG.search(inline.content))

    def list(self, node: SyntaxTreeNode) -> None:
        out = self.out
        if not out.in_list:
            out.flush()
        ordered = node.type == "ordered_list"
        start = int(str(node.attrs.get("start", 1) or 1)) if ordered else 1
        saved = (out.first_prefix, out.rest_prefix)
        base = out.first_prefix if out.pending_first else out.rest_prefix
        bullets = ("•", "◦", "▪")
        out.in_list += 1
        for offset, item in enumerate(node.children):
            if ordered:
                marker = f"{start + offset}. "
            elif "task-list-item" in str(item.attrs.get("class", "")):
                marker = "☑ " if self._checked(item) else "☐ "
            else:
                marker = bullets[min(out.in_list - 1, len(bullets) - 1)] + " "
            out.first_prefix = (base if offset == 0 else saved[1]) + marker
            out.rest_prefix = saved[1] + "    "
            out.pending_first = True
            self.blocks(item.children)
            if out.pending_first:
                out.line("")
        out.in_list -= 1
        out.first_prefix, out.rest_prefix = saved
        out.pending_first = False
        if not out.in_list:
            out.flush()

    @staticmethod
    def _checked(item: SyntaxTreeNode) -> bool:
        for child in item.children[:1]:
            for inline in child.children[:1]:
                for first in inline.children[:1]:
                    if first.type == "html_inline":
                        return "checked" in first.content
        return False

    def table(self, node: SyntaxTreeNode) -> str:
        rows: list[list[str]] = []
        aligns: list[str] = []
        header_rows = 0
        for section in node.children:
            for tr in section.children:
                cells = []
                for cell in tr.children:
                    cells.append(" ".join(self.plain_of(cell).split()))
                    if section.type == "thead":
                        aligns.append(str(cell.attrs.get("style", "")))
                rows.append(cells)
                if section.type == "thead":
                    header_rows += 1
        if not rows:
            return ""
        columns = max(len(r) for r in rows)
        widths = [max((len(r[i]) for r in rows if i < len(r)), default=0) for i in range(columns)]

        def fit(text: str, i: int) -> str:
            style = aligns[i] if i < len(aligns) else ""
            if "right" in style:
                return text.rjust(widths[i])
            if "center" in style:
                return text.center(widths[i])
            return text.ljust(widths[i])

        lines = []
        for number, row in enumerate(rows):
            padded = [fit(row[i] if i < len(row) else "", i) for i in range(columns)]
            lines.append(" | ".join(padded).rstrip())
            if number == header_rows - 1:
                lines.append("-+-".join("-" * w for w in widths))
        return _escape("\n".join(lines))

    def html(self, content: str) -> None:
        parser = _HtmlText()
        try:
            parser.feed(content)
            parser.close()
            units = parser.result()
        except (AssertionError, ValueError):
            # The standard library's HTML parser gives up on some broken markup (e.g. a stray
            # "<![" marked section); show the text with the tags taken out instead.
            text = html.unescape(_ANY_TAG.sub(" ", content))
            units = [
                Unit(False, _escape(" ".join(line.split())))
                for line in text.splitlines()
                if line.strip()
            ]
        for unit in units:
            if unit.code:
                self.out.code(unit.text)
            else:
                if not self.out.in_list:
                    self.out.flush()
                self.out.line(unit.text)
                if not self.out.in_list:
                    self.out.flush()

    # -- inline

    def inline_of(self, node: SyntaxTreeNode) -> str:
        return "".join(self.inline(child) for child in node.children)

    def plain_of(self, node: SyntaxTreeNode) -> str:
        return "".join(self.plain(child) for child in node.children)

    def inline(self, node: SyntaxTreeNode) -> str:
        kind = node.type
        if kind == "inline":
            return self.inline_of(node)
        if kind == "text":
            return _escape(node.content)
        if kind == "softbreak":
            return " "
        if kind == "hardbreak":
            return "\n"
        if kind == "code_inline":
            return f"`{_escape(node.content)}`" if node.content.strip() else _escape(node.content)
        if kind == "strong":
            return _wrap("*", self.inline_of(node))
        if kind == "em":
            return _wrap("_", self.inline_of(node))
        if kind == "s":
            return _wrap("~", self.inline_of(node))
        if kind == "link":
            label = _escape(self.plain_of(node))
            return _link(str(node.attrs.get("href", "")), label, autolink=node.markup == "autolink")
        if kind == "image":
            alt = self.plain_of(node) or str(node.attrs.get("alt", "")) or "image"
            return _link(str(node.attrs.get("src", "")), _escape(alt))
        if kind == "html_inline":
            return _inline_html(node.content)
        return self.inline_of(node)

    def plain(self, node: SyntaxTreeNode) -> str:
        if node.type in ("text", "code_inline"):
            return node.content
        if node.type in ("softbreak", "hardbreak"):
            return " "
        return self.plain_of(node)


_ALERT_MARKER = re.compile(r"^\[!(NOTE|TIP|IMPORTANT|WARNING|CAUTION)\]\s*", re.IGNORECASE)
_ALERT_EMOJI = {
    "note": ":information_source:",
    "tip": ":bulb:",
    "important": ":exclamation:",
    "warning": ":warning:",
    "caution": ":warning:",
}


def _alert_label(match: re.Match[str]) -> str:
    """GitHub's ``> [!WARNING]`` call-outs, which teams use for the dangerous steps."""
    kind = match.group(1).lower()
    return f"{_ALERT_EMOJI[kind]} *{kind.capitalize()}*\n"


def _inline_html(tag: str) -> str:
    match = _TAG.match(tag)
    if not match:
        return ""
    return _INLINE_TAGS.get(match.group(2).lower(), "")


_CDATA = re.compile(r"<!\[CDATA\[(.*?)\]\]>", re.DOTALL)
_NAMESPACED_TAG = re.compile(
    r"</[A-Za-z][\w.-]*:[A-Za-z][\w.-]*\s*>"  # a closing tag: </ac:rich-text-body>
    r"|<[A-Za-z][\w.-]*:[A-Za-z][\w.-]*(?:\s[^<>]*)?/>"  # self-closing: <ri:page ... />
    r"|<[A-Za-z][\w.-]*:[A-Za-z][\w.-]*\s+[\w:.-]+\s*="  # with attributes: <ac:x ac:name=
)
"""XML tags with a namespace, as Confluence exports them (``<ac:structured-macro>``); CommonMark
does not know them as HTML, so without help they show as literal markup. An autolink such as
``<tel:+1555...>`` is none of these forms."""
_MACRO_LABELS = {
    "warning": ":warning: *Warning*",
    "note": ":information_source: *Note*",
    "info": ":information_source: *Info*",
    "tip": ":bulb: *Tip*",
}
"""Confluence's call-out macros, shown like GitHub's ``> [!WARNING]``."""


class _HtmlText(HTMLParser):
    """Raw HTML as readable text: tags dropped, ``<summary>`` bold, links and ``<pre>`` kept,
    table cells separated. Tags the converter does not know, namespaced ones included
    (Confluence's ``<ac:...>`` and ``<ri:...>``), give their text content and nothing else."""

    _BREAKS = frozenset({"p", "div", "details", "tr", "table", "ul", "ol", "section"})
    _BREAKS |= {"article", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "dl", "dt", "dd", "hr"}
    _BREAKS |= {"ac:rich-text-body", "ac:layout", "ac:layout-section", "ac:layout-cell"}
    _SKIPPED = frozenset({"script", "style", "ac:parameter", "ac:task-status", "ac:task-id"})
    _CODE = frozenset({"pre", "ac:plain-text-body"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.units: list[Unit] = []
        self.parts: list[str] = []
        self.pre: list[str] | None = None
        self.skip = 0
        self.links: list[tuple[str, int]] = []
        self.summary_at: int | None = None
        self.cells = 0
        self.targets: list[tuple[int, str]] = []
        """Open ``<ac:link>``: where its text starts and the page or file it names."""

    def feed(self, data: str) -> None:
        # CDATA (the body of a code macro) is text: the parser would drop it as a declaration.
        super().feed(_CDATA.sub(lambda m: html.escape(m.group(1), quote=False), data))

    def _text(self) -> None:
        text = "".join(self.parts)
        self.parts = []
        lines = [" ".join(line.split()) for line in text.split("\n")]
        joined = "\n".join(line for line in lines if line)
        if joined:
            self.units.append(Unit(False, joined))

    def _code(self) -> None:
        if self.pre is None:
            return
        content = "".join(self.pre).strip("\n")
        self.pre = None
        if content.strip():
            self.units.append(Unit(True, _escape(content)))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in self._SKIPPED:
            self.skip += 1
        elif tag in self._CODE:
            self._text()
            self.pre = []
        elif self.pre is not None or self.skip:
            return
        elif tag == "summary":
            self.parts.append("\n")
            self.summary_at = len(self.parts)
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n• ")
        elif tag == "ac:task":
            self.parts.append("\n☐ ")
        elif tag in ("td", "th"):
            self.parts.append(" | " if self.cells else "")
            self.cells += 1
        elif tag in self._BREAKS:
            self.cells = 0
            self.parts.append("\n")
        elif tag == "ac:structured-macro":
            label = _MACRO_LABELS.get((values.get("ac:name") or "").casefold())
            self.parts.append(f"\n{label}\n" if label else "\n")
        elif tag == "ac:link":
            self.targets.append((len(self.parts), ""))
        elif tag.startswith("ri:"):
            self._resource(tag, values)
        elif tag == "a":
            self.links.append((values.get("href") or "", len(self.parts)))
        elif tag == "img":
            self.parts.append(_link(values.get("src") or "", _escape(values.get("alt") or "image")))
        elif tag in _INLINE_TAGS:
            self.parts.append(_INLINE_TAGS[tag])

    def _resource(self, tag: str, values: dict[str, str | None]) -> None:
        """``<ri:page ri:content-title=...>`` and friends: what an ``<ac:link>`` points at."""
        if tag == "ri:url":
            url = values.get("ri:value") or ""
            if self.targets:
                at, _ = self.targets.pop()
                self.targets.append((at, _link(url, "")))
            return
        name = values.get("ri:content-title") or values.get("ri:filename") or ""
        if self.targets and name:
            at, _ = self.targets.pop()
            self.targets.append((at, _escape(name)))

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIPPED:
            self.skip = max(0, self.skip - 1)
        elif tag in self._CODE and self.pre is not None:
            self._code()
        elif self.pre is not None or self.skip:
            return
        elif tag == "summary" and self.summary_at is not None:
            label = " ".join("".join(self.parts[self.summary_at :]).split())
            del self.parts[self.summary_at :]
            self.parts.append(_wrap("*", label) + "\n" if label else "")
            self.summary_at = None
        elif tag == "ac:link" and self.targets:
            # The link's own text when it has one, else the title of what it points at.
            at, target = self.targets.pop()
            if not "".join(self.parts[at:]).strip():
                self.parts.append(target)
        elif tag == "a" and self.links:
            href, at = self.links.pop()
            label = "".join(self.parts[at:]).strip()
            del self.parts[at:]
            self.parts.append(_link(href, label))
        elif tag in self._BREAKS or tag == "ac:structured-macro":
            self.cells = 0
            self.parts.append("\n")
        elif tag in _INLINE_TAGS and tag != "br":
            self.parts.append(_INLINE_TAGS[tag])

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if self.pre is not None:
            self.pre.append(data)
        else:
            self.parts.append(_escape(data))

    def result(self) -> list[Unit]:
        self._code()
        self._text()
        return self.units


def markdown_units(markdown: str) -> list[Unit]:
    """Render markdown to mrkdwn pieces (prose and code blocks) that can be packed into
    sections."""
    renderer = _Renderer()
    renderer.blocks(SyntaxTreeNode(_MD.parse(markdown)).children)
    renderer.out.flush()
    return renderer.out.units


def _separator(previous: Unit | None, current: Unit) -> str:
    if previous is None:
        return ""
    return "\n" if previous.code or current.code else "\n\n"


def join_units(units: Sequence[Unit]) -> str:
    text = ""
    previous: Unit | None = None
    for unit in units:
        text += _separator(previous, unit) + unit.render()
        previous = unit
    return text


def markdown_to_mrkdwn(markdown: str) -> str:
    """Convert markdown to Slack ``mrkdwn`` (one string, no length limit applied)."""
    return join_units(markdown_units(markdown))


# --------------------------------------------------------------------------------------------
# Splitting into sections


def _safe_cut(text: str, limit: int) -> int:
    """Where to cut prose at or before ``limit``: a line break, else a space, never inside a
    Slack entity (``<url|label>``, ``&amp;``)."""
    if len(text) <= limit:
        return len(text)
    cut = text.rfind("\n", 0, limit + 1)
    if cut < limit // 2:
        cut = text.rfind(" ", 0, limit + 1)
    if cut < limit // 2:
        cut = limit
    opened, closed = text.rfind("<", 0, cut), text.rfind(">", 0, cut)
    if opened > closed and opened > 0:
        cut = opened
    return _entity_safe(text, cut) or limit


def _entity_safe(text: str, cut: int) -> int:
    amp = text.rfind("&", max(0, cut - 5), cut)
    if amp != -1 and ";" not in text[amp:cut]:
        return amp
    return cut


def _split_unit(unit: Unit, room: int) -> tuple[Unit, Unit] | None:
    """Split ``unit`` so the first part renders in at most ``room`` characters."""
    if unit.code:
        space = room - len(_FENCE) * 2 - 2
        if space < 1:
            return None
        lines = unit.text.split("\n")
        taken: list[str] = []
        size = 0
        for line in lines:
            extra = len(line) + (1 if taken else 0)
            if size + extra > space:
                break
            taken.append(line)
            size += extra
        if taken and len(taken) < len(lines):
            return Unit(True, "\n".join(taken)), Unit(True, "\n".join(lines[len(taken) :]))
        first = lines[0]
        cut = _entity_safe(first, min(space, len(first))) or min(space, len(first))
        head, tail = first[:cut], "\n".join([first[cut:], *lines[1:]])
        return Unit(True, head), Unit(True, tail)
    cut = _safe_cut(unit.text, room)
    head, tail = unit.text[:cut].rstrip(), unit.text[cut:].lstrip(" \n")
    if not head:
        head, tail = unit.text[:room], unit.text[room:]
    return Unit(False, head), Unit(False, tail)


def pack_sections(
    units: Sequence[Unit],
    *,
    section_limit: int = SECTION_TEXT,
    total_limit: int | None = None,
    max_sections: int | None = None,
    note: str = "",
) -> tuple[list[str], bool]:
    """Pack rendered units into section texts of at most ``section_limit`` characters.

    A code block that does not fit is closed at the end of one section and reopened in the next.
    With ``total_limit`` / ``max_sections`` the text is cut when the budget runs out and ``note``
    is added to the last section. Returns the texts and whether anything was cut."""
    reserve = len(note) + 1 if note else 0
    section_cap = section_limit - reserve
    total_cap = (total_limit if total_limit is not None else math.inf) - reserve
    out: list[str] = []
    current, last = "", None
    used = 0
    cut = False
    queue = deque(u for u in units if u.text.strip())
    while queue:
        unit = queue.popleft()
        sep = _separator(last, unit) if current else ""
        rendered = unit.render()
        room = int(min(section_cap - len(current) - len(sep), total_cap - used - len(sep)))
        if len(rendered) <= room:
            current += sep + rendered
            used += len(sep) + len(rendered)
            last = unit
            continue
        can_open = max_sections is None or len(out) + 1 < max_sections
        fresh = int(min(section_cap, total_cap - used))
        if current and can_open and (len(rendered) <= fresh or room < MIN_SPLIT):
            if fresh < MIN_SPLIT and len(rendered) > fresh:
                cut = True
                break
            out.append(current)
            current, last = "", None
            queue.appendleft(unit)
            continue
        if room < MIN_SPLIT and current:
            cut = True
            break
        parts = _split_unit(unit, room) if room > 0 else None
        if parts is None:
            cut = True
            break
        head, tail = parts
        rendered = head.render()
        current += sep + rendered
        used += len(sep) + len(rendered)
        last = head
        if tail.text.strip():
            queue.appendleft(tail)
    if current or not out:
        out.append(current)
    if cut and note:
        out[-1] = f"{out[-1]}\n{note}" if out[-1] else note
    return out, cut


def mrkdwn_sections(markdown: str, limit: int = SECTION_TEXT) -> list[str]:
    """Markdown as mrkdwn section texts of at most ``limit`` characters each (nothing cut)."""
    texts, _ = pack_sections(markdown_units(markdown), section_limit=limit)
    return [t for t in texts if t] or [""]


# --------------------------------------------------------------------------------------------
# Action ids


@dataclass(frozen=True)
class RunbookAction:
    """A click on a runbook message, decoded from its ``action_id``."""

    verb: str
    """``done``, ``skip``, ``assign``, ``reopen`` or ``page``."""
    run_id: int
    step: int | None = None
    page: int | None = None


ACTION_PREFIX = "runbook:"
ACTION_PATTERN = r"^runbook:"
"""Register one Slack action listener with this pattern and route with parse_runbook_action."""
_ACTION_ID = re.compile(r"^runbook:(done|skip|assign|reopen|page):(\d{1,18}):(\d{1,9})$")


def action_id(verb: str, run_id: int, number: int) -> str:
    """``runbook:{verb}:{run_id}:{step_index}``, or ``runbook:page:{run_id}:{page}``."""
    return f"{ACTION_PREFIX}{verb}:{run_id}:{number}"


def parse_runbook_action(action_id: str) -> RunbookAction | None:
    """Decode an action id built by this module; ``None`` for anything else."""
    match = _ACTION_ID.match(action_id or "")
    if match is None:
        return None
    verb, run_id, number = match.group(1), int(match.group(2)), int(match.group(3))
    if verb == "page":
        return RunbookAction(verb, run_id, page=number)
    return RunbookAction(verb, run_id, step=number)


# --------------------------------------------------------------------------------------------
# The run message


@dataclass(frozen=True)
class SlackMessage:
    text: str
    blocks: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.blocks}


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def _plain_text(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": truncate(text, limit) or " ", "emoji": True}


def _button(label: str, action: str, value: str, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": _plain_text(label, BUTTON_TEXT),
        "action_id": action,
        "value": value,
    }
    if style:
        button["style"] = style
    return button


def _when(value: datetime | None) -> str:
    """A time every reader sees in their own timezone (``<!date^...>``)."""
    if value is None:
        return ""
    epoch = int(value.timestamp())
    fallback = value.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{epoch}^{{date_short_pretty}} {{time}}|{fallback}>"


def page_count(step_count: int, steps_per_page: int) -> int:
    return max(1, math.ceil(step_count / max(1, steps_per_page)))


def _snapshot_steps(snapshot: Mapping[str, Any]) -> list[dict[str, Any]]:
    steps = snapshot.get("steps")
    if not isinstance(steps, list):
        return []
    return [s if isinstance(s, dict) else {} for s in steps]


def _title_leads_body(title: str, markdown: str) -> bool:
    """True when the step title was taken from the start of its text (list items, commented
    commands), so the renderer shows the text once instead of title + text."""
    stem = title.rstrip("…").strip()
    if not stem:
        return False
    return " ".join(markdown_plain_text(markdown).split()).startswith(stem)


def _context_units(snapshot: Mapping[str, Any], *, full: bool) -> list[Unit]:
    """What the runbook says before its steps: the description, then (with ``full``, on the
    first page) every context section in full, rendered like steps so paragraphs, lists, links,
    code and the text of HTML blocks survive. The description is not repeated when it is the
    start of a section (it usually is the first paragraph of Meaning)."""
    description = " ".join(str(snapshot.get("description") or "").split())
    sections: list[tuple[str, list[Unit]]] = []
    plain: list[str] = []
    context = snapshot.get("context") if full else None
    for section in context if isinstance(context, list) else []:
        if not isinstance(section, dict):
            continue
        markdown = str(section.get("markdown", ""))
        body = markdown_units(markdown)
        if body:
            sections.append((" ".join(str(section.get("title", "")).split()), body))
            plain.append(" ".join(markdown_plain_text(markdown).split()))
    units: list[Unit] = []
    stem = description.rstrip("…").strip()
    repeated = bool(stem) and any(text.startswith(stem) for text in plain)
    if description and not repeated:
        units.append(Unit(False, f"_{_escape(description)}_"))
    for title, body in sections:
        head = f"*{_escape(title)}*" if title else ""
        if head and not body[0].code:
            body = [Unit(False, f"{head}\n{body[0].text}"), *body[1:]]
        elif head:
            body = [Unit(False, head), *body]
        units.extend(body)
    return units


def _step_head(number: int, step: Mapping[str, Any], view: StepView, is_next: bool) -> str:
    title = " ".join(str(step.get("title", "")).split()) or f"Step {number}"
    safe = _escape(title)
    if view.state == DONE:
        who = f" by <@{view.updated_by}>" if view.updated_by else ""
        return f":white_check_mark: ~{number}. {safe}~ _done{who} {_when(view.updated_at)}_"
    if view.state == SKIPPED:
        who = f" by <@{view.updated_by}>" if view.updated_by else ""
        return f":fast_forward: ~{number}. {safe}~ _skipped{who} {_when(view.updated_at)}_"
    marker = ":arrow_forward:" if is_next else ":white_circle:"
    if view.state == IN_PROGRESS:
        marker = ":hourglass_flowing_sand:"
    return f"{marker} *{number}. {safe}*"


def _step_units(number: int, step: Mapping[str, Any], view: StepView, is_next: bool) -> list[Unit]:
    title = " ".join(str(step.get("title", "")).split())
    markdown = str(step.get("markdown", ""))
    body = markdown_units(markdown)
    head = _step_head(number, step, view, is_next)
    if body and not body[0].code and title and _title_leads_body(title, markdown):
        marker = (
            ":hourglass_flowing_sand:"
            if view.state == IN_PROGRESS
            else (":arrow_forward:" if is_next else ":white_circle:")
        )
        units = [Unit(False, f"{marker} *{number}.* {body[0].text}"), *body[1:]]
    else:
        units = [Unit(False, head), *body]
    if not markdown.strip():
        units.append(Unit(False, "_No instructions were written for this step._"))
    if view.state == IN_PROGRESS and view.assignee_id:
        since = f" since {_when(view.started_at)}" if view.started_at else ""
        units.insert(1, Unit(False, f"_Assigned to <@{view.assignee_id}>{since}_"))
    return units


def _cut_note(step: Mapping[str, Any]) -> str:
    line = step.get("line")
    where = f" (line {line})" if isinstance(line, int) and line > 0 else ""
    return f"_… this step is too long for Slack: read the rest in the runbook file{where}._"


def _step_actions(run_id: int, index: int, view: StepView, is_next: bool) -> dict[str, Any]:
    value = str(index)
    elements: list[dict[str, Any]] = [
        _button("Done", action_id("done", run_id, index), value, "primary" if is_next else None),
        _button("Skip", action_id("skip", run_id, index), value),
    ]
    select: dict[str, Any] = {
        "type": "users_select",
        "action_id": action_id("assign", run_id, index),
        "placeholder": _plain_text("Assign…", 150),
    }
    if view.assignee_id:
        select["initial_user"] = view.assignee_id
    elements.append(select)
    if view.state == IN_PROGRESS:
        elements.append(_button("Unassign", action_id("reopen", run_id, index), value))
    return {"type": "actions", "elements": elements}


def _text_size(block: Mapping[str, Any]) -> int:
    """Characters of text a block carries (what counts toward Slack's message size)."""
    size = 0
    text = block.get("text")
    if isinstance(text, Mapping):
        size += len(str(text.get("text", "")))
    for element in block.get("elements", []) or []:
        if isinstance(element, Mapping):
            if element.get("type") in ("mrkdwn", "plain_text"):
                size += len(str(element.get("text", "")))
            for key in ("text", "placeholder"):
                inner = element.get(key)
                if isinstance(inner, Mapping):
                    size += len(str(inner.get("text", "")))
    accessory = block.get("accessory")
    if isinstance(accessory, Mapping):
        inner = accessory.get("text")
        if isinstance(inner, Mapping):
            size += len(str(inner.get("text", "")))
    return size


def message_text_size(blocks: Iterable[Mapping[str, Any]]) -> int:
    return sum(_text_size(b) for b in blocks)


def _allocate(needs: Sequence[int], available: int) -> list[int]:
    """Share ``available`` characters between steps: small steps get all they need, the long
    ones share the rest equally."""
    alloc = [0] * len(needs)
    order = sorted(range(len(needs)), key=lambda i: needs[i])
    left = available
    for position, i in enumerate(order):
        fair = left // (len(order) - position)
        alloc[i] = min(needs[i], fair)
        left -= alloc[i]
    return alloc


def render_run_message(
    run: RunView, *, steps_per_page: int, page: int | None = None
) -> SlackMessage:
    """The run's message: title and progress, the context (in full on the first page unless
    the page cannot hold it with the steps; the description alone on the others), the steps of
    one page with Done / Skip / Assign, and Previous / Next when there are several pages."""
    steps = _snapshot_steps(run.snapshot)
    count = len(steps)
    pages = page_count(count, steps_per_page)
    page = min(max(run.page if page is None else page, 0), pages - 1)
    views = {v.index: v for v in run.steps}
    progress = run.progress
    next_index = run.next_step

    title = str(run.snapshot.get("title") or run.title or "Runbook")
    status = f"*{progress}*"
    if run.status == "completed" or progress.finished:
        status += " · :white_check_mark: completed"
    if pages > 1:
        status += f" · page {page + 1} of {pages}"
    head: list[dict[str, Any]] = [
        {"type": "header", "text": _plain_text(f"Runbook: {title}", HEADER_TEXT)},
        {"type": "context", "elements": [_mrkdwn(status)]},
    ]
    context_units = _context_units(run.snapshot, full=page == 0)

    first = page * steps_per_page
    indexes = list(range(first, min(first + steps_per_page, count)))
    nav: list[dict[str, Any]] = []
    if page > 0:
        nav.append(_button("◀ Previous", action_id("page", run.id, page - 1), str(page - 1)))
    if page < pages - 1:
        nav.append(_button("Next ▶", action_id("page", run.id, page + 1), str(page + 1)))
    tail = [{"type": "actions", "elements": nav}] if nav else []
    divider: list[dict[str, Any]] = [{"type": "divider"}]
    if not indexes:
        divider.append({"type": "section", "text": _mrkdwn("_This runbook has no steps._")})

    # Characters and blocks left for the context and the steps of this page: the context is
    # one more claimant, so it is shown in full unless the page cannot hold it with the steps.
    claimants = len(indexes) + (1 if context_units else 0)
    fixed_text = message_text_size(head) + message_text_size(divider) + message_text_size(tail)
    available = PAGE_TEXT_BUDGET - fixed_text - 40 * claimants
    block_room = MESSAGE_BLOCKS - len(head) - len(divider) - len(tail)

    units_of: dict[int, list[Unit]] = {}
    finished: dict[int, bool] = {}
    for i in indexes:
        view = views.get(i, StepView(index=i))
        finished[i] = view.state in FINISHED_STATES
        if finished[i]:
            units_of[i] = [Unit(False, _step_head(i + 1, steps[i], view, False))]
        else:
            units_of[i] = _step_units(i + 1, steps[i], view, i == next_index)
    needs = [len(join_units(units_of[i])) + len(_cut_note(steps[i])) + 2 for i in indexes]
    if context_units:
        needs.append(len(join_units(context_units)) + len(CONTEXT_CUT_NOTE) + 2)
    budgets = _allocate(needs, max(available, 300 * max(1, claimants)))
    max_sections = dict.fromkeys(indexes, STEP_SECTIONS_MAX)
    context_sections = CONTEXT_SECTIONS_MAX

    def build_context() -> list[dict[str, Any]]:
        if not context_units:
            return []
        texts, _ = pack_sections(
            context_units,
            total_limit=max(budgets[-1], 300),
            max_sections=context_sections,
            note=CONTEXT_CUT_NOTE,
        )
        return [{"type": "section", "text": _mrkdwn(t or " ")} for t in texts]

    def build() -> list[list[dict[str, Any]]]:
        out = []
        for i, budget in zip(indexes, budgets, strict=False):
            view = views.get(i, StepView(index=i))
            texts, _ = pack_sections(
                units_of[i],
                total_limit=max(budget, 300),
                max_sections=1 if finished[i] else max_sections[i],
                note=_cut_note(steps[i]),
            )
            blocks: list[dict[str, Any]] = [
                {"type": "section", "text": _mrkdwn(t or " ")} for t in texts
            ]
            if finished[i]:
                blocks[0]["accessory"] = _button("Reopen", action_id("reopen", run.id, i), str(i))
            else:
                blocks.append(_step_actions(run.id, i, view, i == next_index))
            out.append(blocks)
        return out

    about = build_context()
    step_blocks = build()
    while len(about) + sum(len(b) for b in step_blocks) > block_room:
        # Over Slack's 50 blocks: the widest step (or the context) gives up a section.
        widest = max(indexes, key=lambda i: (max_sections[i], i), default=None)
        if context_sections > 1 and (widest is None or context_sections >= max_sections[widest]):
            context_sections -= 1
            about = build_context()
            continue
        if widest is None or max_sections[widest] <= 1:
            break
        max_sections[widest] -= 1
        step_blocks = build()

    head += about + divider
    blocks = head + [b for group in step_blocks for b in group] + tail
    text = f"Runbook {title}: {progress}"
    if next_index is not None and next_index < count:
        step_title = " ".join(str(steps[next_index].get("title", "")).split())
        text += f". Next: step {next_index + 1}: {step_title}"
    return SlackMessage(truncate(_escape(text), FALLBACK_TEXT_MAX), blocks)


def preview_run_view(runbook: Runbook, *, run_id: int = 0) -> RunView:
    """A run of ``runbook`` that has not started: every step pending (for previews)."""
    return RunView(
        id=run_id,
        incident_id=0,
        runbook_id=runbook.id,
        title=runbook.title,
        snapshot=runbook.snapshot(),
        status="active",
        page=0,
        steps=tuple(StepView(index=i) for i in range(len(runbook.steps))),
    )


def render_runbook_pages(runbook: Runbook, *, steps_per_page: int) -> list[SlackMessage]:
    """Every page of the message the bot would post for ``runbook`` (nothing done yet)."""
    view = preview_run_view(runbook)
    pages = page_count(len(runbook.steps), steps_per_page)
    return [render_run_message(view, steps_per_page=steps_per_page, page=p) for p in range(pages)]


# --------------------------------------------------------------------------------------------
# Text previews (CLI, /incident runbook listings)


def blocks_to_text(blocks: Iterable[Mapping[str, Any]]) -> str:
    """A message as a person reads it in Slack, in plain text (for the CLI preview)."""
    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        text = block.get("text")
        body = str(text.get("text", "")) if isinstance(text, Mapping) else ""
        if kind == "header":
            lines += [body, "=" * min(len(body), 72)]
        elif kind == "divider":
            lines.append("-" * 40)
        elif kind == "context":
            lines.append(
                " ".join(str(e.get("text", "")) for e in block.get("elements", []) if "text" in e)
            )
        elif kind == "section":
            accessory = block.get("accessory")
            if isinstance(accessory, Mapping) and isinstance(accessory.get("text"), Mapping):
                body += f"  [{accessory['text']['text']}]"
            lines.append(body)
        elif kind == "actions":
            labels = []
            for element in block.get("elements", []):
                inner = element.get("text") or element.get("placeholder") or {}
                labels.append(f"[{inner.get('text', '')}]")
            lines.append(" ".join(labels))
            lines.append("")
    return _unescape("\n".join(lines)).rstrip() + "\n"


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def steps_preview(runbook: Runbook, *, max_steps: int | None = None) -> str:
    """``Title (12 steps)`` and the numbered step titles, for listings and the CLI."""
    count = len(runbook.steps)
    lines = [f"{runbook.title} ({count} step{'s' if count != 1 else ''})"]
    if runbook.description:
        lines.append(runbook.description)
    shown = runbook.steps if max_steps is None else runbook.steps[:max_steps]
    width = len(str(count))
    lines += [f"{i:>{width}}. {step.title}" for i, step in enumerate(shown, start=1)]
    if len(shown) < count:
        lines.append(f"… and {count - len(shown)} more")
    return "\n".join(lines)
