"""Markdown -> Slack ``mrkdwn``, by walking markdown-it's syntax tree: code stays verbatim (only
``&<>`` escaped) and every construct (headings, tables, images, HTML, GitHub alerts, Confluence
macros) gets a readable form. The result is a list of units that can be packed into sections."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser

from markdown_it.tree import SyntaxTreeNode

from bot.markup import spoofs
from bot.runbooks.headings import ADMONITION as _ADMONITION
from bot.runbooks.headings import QUOTE_CALLOUT
from bot.runbooks.parser import make_markdown
from bot.slack.limits import escape_mrkdwn
from bot.slack.runbook_messages import callouts
from bot.slack.runbook_messages.columns import display_width, pad
from bot.slack.runbook_messages.html_inline import image, shown_target, with_anchors

_FENCE = "```"

_MD = make_markdown()


@dataclass(frozen=True)
class Unit:
    """A piece of rendered mrkdwn: prose (already escaped) or the content of a code block."""

    code: bool
    text: str

    def render(self) -> str:
        return f"{_FENCE}\n{self.text}\n{_FENCE}" if self.code else self.text


def _escape(text: str) -> str:
    return escape_mrkdwn(text)


_ZERO_WIDTH_SPACE = "\u200b"
_BACKTICKS = re.compile(r"`{3,}")


def _break_fences(code: str) -> str:
    """Code whose ``` (a markdown template in a ```` fence) would end Slack's code block there:
    mrkdwn cannot nest fences nor escape a backtick. A zero-width space between the backticks
    keeps the text as it reads (copied, the invisible character comes along: the one change
    made to a command)."""
    return _BACKTICKS.sub(lambda match: _ZERO_WIDTH_SPACE.join(match.group(0)), code)


_TITLE_CONTROL = re.compile(r"[*_~`]")
_LOOKALIKE_BACKTICK = "\u02cb"


def title_mrkdwn(title: str) -> str:
    """A step, context or runbook title (plain text) as mrkdwn that shows it literally inside
    the ``*bold*`` or ``~strikethrough~`` the message puts it in: the one rule for titles.

    A title from a heading has lost its code spans' backticks, so ``~/.cache`` would end the
    strikethrough early, ``_work`` start italics and ``/var/log/*.gz`` end the bold. Every word
    holding a mrkdwn control character is shown as code, which Slack shows literally (its
    punctuation around it stays prose). A backtick, which code cannot hold, is shown there as
    the look-alike ˋ: titles are read, the commands in the steps are what is copied."""
    return " ".join(_literal_word(word) for word in " ".join(title.split()).split(" "))


def _literal_word(word: str) -> str:
    if _SHORTCODE.search(word):
        return _escape(word)  # :white_check_mark: is an emoji, not italics
    start = len(word) - len(word.lstrip("(['\""))
    end = len(word.rstrip(".,;:!?)]'\""))
    core = word[start:end]
    if core and _TITLE_CONTROL.search(core):
        code = _escape(core.replace("`", _LOOKALIKE_BACKTICK))
        return f"{_escape(word[:start])}`{code}`{_escape(word[end:])}"
    return _escape(word)


def _literal_text(text: str) -> str:
    """Prose text as written (Markdown's own emphasis is rendered apart): a ``*`` a writer
    escaped (``\\*not bold\\*``) or a glob (``rm *.tmp and *.log``) must not become Slack's
    bold, so its words are shown as titles show theirs."""
    if not _TITLE_CONTROL.search(text):
        return _escape(text)
    return _WORD.sub(
        lambda match: (
            _escape(match.group()) if _URL.match(match.group()) else _literal_word(match.group())
        ),
        text,
    )


_WORD = re.compile(r"\S+")
_SHORTCODE = re.compile(r":[a-z0-9_+'-]+:")
_URL = re.compile(
    r"[(\['\"]*(?:[a-zA-Z][a-zA-Z0-9+.-]*://|www\.|[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[a-zA-Z]{2,})"
)
"""A bare address (a URL, an e-mail address), which Slack links by itself: shown as code, it
would not be a link."""


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
        # A label that shows another address than the link's ("[https://kubernetes.io]
        # (https://evil.example)") is shown as the link's own address: one rule, ``spoofs``.
        if (
            autolink
            or not label.strip()
            or label == _escape(href)
            or spoofs(html.unescape(label), href)
        ):
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
        content = _break_fences(content)
        if self.pending_first:
            self.lines.append(self.first_prefix.rstrip())
            self.pending_first = False
        self.flush()
        self.units.append(Unit(True, content))


_SPAN = "\0"
"""Marks a code span shown as a code block in rendered inline text (markdown-it turns a NUL of
the source into U+FFFD, so the text itself never holds one)."""
_CLOSING_PUNCTUATION = " .,;:!?)"


class _Renderer:
    def __init__(self) -> None:
        self.out = _Writer()
        self.spans: list[str] = []
        """Code spans holding a backtick, shown as code blocks (``_SPAN`` marks where)."""
        self.in_cell = False
        """In a table cell: a ``<br>`` is " / " (else a space), a link keeps its target."""

    def prose(self, text: str, mark: str = "") -> None:
        """A paragraph's or heading's rendered text; the code spans that hold a backtick come
        out as code blocks of their own, between the text before and after them."""
        if _SPAN not in text:
            self.out.line(_wrap(mark, text) if mark else text)
            return
        parts = text.split(_SPAN)
        for index, part in enumerate(parts):
            if index % 2:
                self.out.code(self.spans[int(part)])
            elif part.strip() and not (index and not part.strip(_CLOSING_PUNCTUATION)):
                # (the period closing a sentence after such a command would stand alone)
                self.out.line(_wrap(mark, part.strip()) if mark else part)

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
            text = (self.callout(node) if out.in_quote else None) or self.inline_of(node)
            text = _ADMONITION.sub(_admonition_label, text, count=1)
            if not out.in_list:
                out.flush()
            self.prose(text)
            if not out.in_list:
                out.flush()
        elif kind == "heading":
            out.flush()
            self.prose(self.inline_of(node), "*")
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
                    # a <br> in a cell (Confluence, GitHub) separates two lines of one cell;
                    # a table is code, where Slack links nothing: a link shows its address
                    self.in_cell = True
                    cells.append(" ".join(self.plain_of(cell).split()))
                    self.in_cell = False
                    if section.type == "thead":
                        aligns.append(str(cell.attrs.get("style", "")))
                rows.append(cells)
                if section.type == "thead":
                    header_rows += 1
        if not rows:
            return ""
        columns = max(len(r) for r in rows)
        widths = [
            max((display_width(r[i]) for r in rows if i < len(r)), default=0)
            for i in range(columns)
        ]

        def fit(text: str, i: int) -> str:
            return pad(text, widths[i], aligns[i] if i < len(aligns) else "")

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
            text = html.unescape(_ANY_TAG.sub(" ", _slack_markup_as_text(content)))
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

    def callout(self, node: SyntaxTreeNode) -> str | None:
        """A quoted paragraph that opens a GitHub or Obsidian call-out (``[!danger] Title``
        on its first line): its label, then the rest; ``None`` for any other paragraph."""
        children = node.children[0].children if node.children else []
        breaks = (i for i, c in enumerate(children) if c.type in ("softbreak", "hardbreak"))
        end = next(breaks, len(children))
        first = "".join(c.content for c in children[:end] if c.type == "text")
        match = QUOTE_CALLOUT.match(first)
        if match is None or not callouts.is_callout(match.group(1)):
            return None
        title = first[match.end() :].strip() or match.group(1).capitalize()
        label = f"{callouts.emoji(match.group(1))} *{title_mrkdwn(title)}*"
        rest = "".join(self.inline(c) for c in children[end + 1 :])
        return f"{label}\n{rest}" if rest else label

    def inline_of(self, node: SyntaxTreeNode) -> str:
        def anchor(href: str, label: str) -> str:  # <a href="...">label</a>
            return _link(href, _escape(label))

        return with_anchors(node.children, self.inline, self.plain, anchor)

    def plain_of(self, node: SyntaxTreeNode) -> str:
        if self.in_cell:
            return with_anchors(node.children, self.plain, self.plain, shown_target)
        return "".join(self.plain(child) for child in node.children)

    def inline(self, node: SyntaxTreeNode) -> str:
        kind = node.type
        if kind == "inline":
            return self.inline_of(node)
        if kind == "text":
            return _literal_text(node.content)
        if kind == "softbreak":
            return " "
        if kind == "hardbreak":
            return "\n"
        if kind == "code_inline" and "`" in node.content.strip():
            # Slack's `code` ends at the first backtick and mrkdwn has no escape for one, so
            # ``ps -p `pgrep x` `` cannot be inline code. A look-alike character would show it
            # but break the command people copy; a code block holds backticks as they are.
            self.spans.append(_escape(node.content.strip()))
            return f"{_SPAN}{len(self.spans) - 1}{_SPAN}"
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
        if kind == "html_inline" and (picture := image(node)) is not None:
            return _link(picture[0], _escape(picture[1] or "image"))
        if kind == "html_inline":
            return _inline_html(node.content)
        return self.inline_of(node)

    def plain(self, node: SyntaxTreeNode) -> str:
        if node.type in ("text", "code_inline"):
            return node.content
        if node.type in ("softbreak", "hardbreak"):
            return " "
        if node.type == "html_inline" and _inline_html(node.content) == "\n":
            return " / " if self.in_cell else " "
        if node.type == "link" and self.in_cell:
            return shown_target(str(node.attrs.get("href", "")), self.plain_of(node))
        return self.plain_of(node)


def _admonition_label(match: re.Match[str]) -> str:
    """MkDocs' ``!!! danger "Do not promote"``, as a call-out (``callouts``)."""
    kind = match.group(1).lower()
    # The title was escaped with the paragraph it starts: unescaped, then shown as a title.
    title = html.unescape(match.group(2)) if match.group(2) is not None else kind.capitalize()
    icon = callouts.emoji(kind)
    return f"{icon} *{title_mrkdwn(title)}*\n" if title.strip() else f"{icon} "


def _inline_html(tag: str) -> str:
    match = _TAG.match(tag)
    if not match:
        return ""
    return _INLINE_TAGS.get(match.group(2).lower(), "")


_CDATA = re.compile(r"<!\[CDATA\[(.*?)\]\]>", re.DOTALL)
_SLACK_MARKUP = re.compile(r"<!(?!--|\[|doctype)[^<>]*>", re.IGNORECASE)


def _slack_markup_as_text(content: str) -> str:
    """Slack markup in HTML (``<!here>``, ``<!subteam^S1|@oncall>``), which HTML would hide as
    a comment, as text: shown as written, pinging nobody."""
    return _SLACK_MARKUP.sub(lambda match: html.escape(match.group(0), quote=False), content)


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
        data = _CDATA.sub(lambda m: html.escape(m.group(1), quote=False), data)
        super().feed(_slack_markup_as_text(data))

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


_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")
"""Characters that reorder how text is shown without changing what is copied: in a command
(``rm -rf /tmp/x`` shown, something else run) they deceive ("Trojan Source")."""


def _shown_bidi(match: re.Match[str]) -> str:
    return f"⟦U+{ord(match.group(0)):04X}⟧"


def markdown_units(markdown: str) -> list[Unit]:
    """Render markdown to mrkdwn pieces (prose and code blocks) that can be packed into
    sections. Bidirectional override and isolate controls are shown by their code point, so
    what a responder reads is what they copy."""
    renderer = _Renderer()
    renderer.blocks(SyntaxTreeNode(_MD.parse(_BIDI_CONTROLS.sub(_shown_bidi, markdown))).children)
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
