"""Walking a parsed Markdown document: its top-level blocks, the heading tree, and plain text."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from markdown_it.token import Token

from bot.runbooks.model import _MD


@dataclass
class _Block:
    kind: str
    tokens: list[Token]
    start: int
    """0-based first line."""
    end: int
    """0-based line after the block."""

    @property
    def first(self) -> Token:
        return self.tokens[0]

    @property
    def is_code(self) -> bool:
        return self.kind in ("fence", "code_block")

    @property
    def is_step_list(self) -> bool:
        """A checklist or a numbered list: its items are steps."""
        if self.kind == "ordered_list":
            return True
        return self.kind == "bullet_list" and "contains-task-list" in str(
            self.first.attrs.get("class", "")
        )

    def has_code(self) -> bool:
        return any(t.type in ("fence", "code_block") for t in self.tokens)

    @property
    def is_aside(self) -> bool:
        """A folded ``<details>`` block or an HTML comment: it belongs to what comes before it
        (the hot keys' how-to under its item), never introduces what follows."""
        head = self.first.content.lstrip().casefold() if self.kind == "html_block" else ""
        return head.startswith(("<details", "<!--"))


def _top_level_blocks(tokens: Sequence[Token]) -> list[_Block]:
    blocks: list[_Block] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.nesting == 1:
            depth, j = 0, i
            while j < len(tokens):
                depth += tokens[j].nesting
                if depth == 0:
                    break
                j += 1
            group = list(tokens[i : j + 1])
            i = j + 1
        else:
            group = [token]
            i += 1
        if token.map is None:
            continue
        kind = token.type.removesuffix("_open")
        blocks.append(_Block(kind, group, token.map[0], token.map[1]))
    return blocks


@dataclass
class _Section:
    title: str
    level: int
    line: int
    """0-based line of the heading (for the root: of its first block)."""
    body: list[_Block] = field(default_factory=list)
    children: list[_Section] = field(default_factory=list)

    def all_blocks(self) -> Iterable[_Block]:
        yield from self.body
        for child in self.children:
            yield from child.all_blocks()


def _plain(inline: Token | None) -> str:
    """The text a reader sees in an inline token: no markup, code spans kept, breaks as spaces."""
    if inline is None:
        return ""
    parts: list[str] = []
    for child in inline.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak") or (
            child.type == "html_inline" and HTML_BREAK.match(child.content)
        ):
            parts.append(" ")  # "Roll back<br>then wait": two words, not "backthen"
        elif child.type == "image":
            parts.append(child.content)
    return " ".join("".join(parts).split())


HTML_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)


_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
_HTML_TAG = re.compile(r"<[^>]*>")
_HTML_ALT = re.compile(r"""\balt\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.IGNORECASE)


def html_text(content: str) -> str:
    """The words raw HTML shows a reader: its text (``<summary>``, ``<pre>``...) and the alt
    text of its images; not comments, which are notes to the authors."""
    content = _HTML_COMMENT.sub(" ", content)
    alts = [next(g for g in m.groups() if g is not None) for m in _HTML_ALT.finditer(content)]
    shown = _HTML_TAG.sub(" ", content)
    return " ".join(html.unescape(" ".join([shown, *alts])).split())


def token_has_text(token: Token) -> bool:
    """Whether a block-level token shows the reader anything: words, a command, or HTML with
    text. The one rule for "this says nothing" (an empty runbook, a step with no text)."""
    if token.type == "inline":
        return bool(_plain(token)) or any(
            c.type == "html_inline" and html_text(c.content) for c in token.children or []
        )
    if token.type in ("fence", "code_block"):
        return bool(token.content.strip())
    return token.type == "html_block" and bool(html_text(token.content))


def markdown_has_text(markdown: str) -> bool:
    return any(token_has_text(t) for t in _MD.parse(markdown))


def markdown_plain_text(markdown: str) -> str:
    """The words of a markdown text without markup or code blocks (for previews and titles)."""
    return " ".join(text for t in _MD.parse(markdown) if t.type == "inline" and (text := _plain(t)))


_ATTR_LIST = re.compile(
    r"\s*\{:?\s*(?:[#.][\w-]+|[\w-]+=\S+)(?:\s+(?:[#.][\w-]+|[\w-]+=\S+))*\s*\}$"
)
"""An attribute list at the end of a heading (MkDocs, kramdown): ``{ #rollback }``,
``{: .danger }``."""


def _heading_text(block: _Block) -> str:
    text = _plain(block.tokens[1] if len(block.tokens) > 1 else None)
    return _ATTR_LIST.sub("", text) or text


def _level(block: _Block) -> int:
    """1 for ``#`` (and setext ``===``), 2 for ``##``..."""
    return int(block.first.tag[1:])


_TOC_MARKER = re.compile(r"^(?:\[\[_?toc_?\]\]|\[toc\]|\{:toc\}|\$\{toc\})$", re.IGNORECASE)
"""What GitLab (``[[_TOC_]]``, ``[[TOC]]``), Python-Markdown (``[TOC]``) and kramdown write where
the viewer puts a table of contents."""
_TOC_NAME = re.compile(r"^(?:table of contents|contents|toc)\s*:?$", re.IGNORECASE)


def _is_toc_marker(block: _Block) -> bool:
    if block.kind == "html_block":
        return bool(re.fullmatch(r"\s*<!--\s*toc\s*-->\s*", block.first.content, re.IGNORECASE))
    return block.kind == "paragraph" and bool(_TOC_MARKER.match(_plain(block.tokens[1])))


def _is_anchor_list(block: _Block) -> bool:
    """A list of links within the page only: a table of contents written by hand or a tool."""
    if block.kind not in ("bullet_list", "ordered_list"):
        return False
    links = [
        str(child.attrs.get("href", ""))
        for token in block.tokens
        if token.type == "inline"
        for child in token.children or []
        if child.type == "link_open"
    ]
    return bool(links) and all(link.startswith("#") for link in links)


def _is_filler(token: Token) -> bool:
    """A line break, or text that is only spaces and punctuation (the "." after a link)."""
    return token.type == "softbreak" or (token.type == "text" and not token.content.strip(" .,;:"))


def _is_navigation(block: _Block) -> bool:
    """A list each of whose items is only a link within the page (``1) [Check for
    finalizers](#detailed-step-1)``, also with a full stop after it): navigation to the
    sections, whatever its title."""
    if block.kind not in ("bullet_list", "ordered_list"):
        return False
    for token in block.tokens:
        if token.type != "inline":
            continue
        children = [c for c in token.children or [] if not _is_filler(c)]
        if not children or children[0].type != "link_open" or children[-1].type != "link_close":
            return False
        if not str(children[0].attrs.get("href", "")).startswith("#"):
            return False
        if sum(c.type == "link_open" for c in children) > 1:
            return False
    return True


def _is_toc_title(block: _Block) -> bool:
    """``## Table of Contents`` or a paragraph ``**Table of Contents**``."""
    if block.kind not in ("heading", "paragraph") or len(block.tokens) < 2:
        return False
    return bool(_TOC_NAME.match(_plain(block.tokens[1])))


def _is_link_heading(block: _Block) -> bool:
    """A heading that is only a link (``## [:back:](README.md#control-plane)``): a way back
    to the site's index, not a section name."""
    if block.kind != "heading" or len(block.tokens) < 2:
        return False
    children = [c for c in block.tokens[1].children or [] if not _is_filler(c)]
    return (
        len(children) >= 2
        and children[0].type == "link_open"
        and children[-1].type == "link_close"
        and sum(c.type == "link_open" for c in children) == 1
    )


def _navigation_end(blocks: Sequence[_Block], index: int) -> int | None:
    """After a heading whose section holds only navigation (lists of links within the page,
    or nothing under a heading that is only a link), where its section ends; else ``None``."""
    heading, end = blocks[index], index + 1
    if heading.kind != "heading":
        return None
    while end < len(blocks) and _is_navigation(blocks[end]):
        end += 1
    if end == index + 1 and not _is_link_heading(heading):
        return None
    after = blocks[end] if end < len(blocks) else None
    if after is not None and (after.kind != "heading" or _level(after) > _level(heading)):
        return None
    return end


def _without_toc(blocks: Sequence[_Block]) -> list[_Block]:
    """The blocks without a table of contents: a marker the viewer replaces with one, a list
    of nothing but links within the page, or a "Table of Contents" title followed by such a
    marker or by a list of links to anchors.
    Slack shows none of it usefully, and a marker must not become the runbook's description."""
    kept: list[_Block] = []
    index = 0
    while index < len(blocks):
        block = blocks[index]
        if _is_toc_marker(block) or _is_navigation(block):
            index += 1
            continue
        end = _navigation_end(blocks, index)
        if end is not None and any(b.kind == "heading" for b in kept):
            # "## Initial Steps Overview" over links to the steps below, or "## [:back:](..)"
            # over nothing: the section is only navigation (the document's title heading
            # stays, whatever follows it).
            index = end
            continue
        if _is_toc_title(block):
            end = index + 1
            while end < len(blocks) and (
                _is_toc_marker(blocks[end]) or _is_anchor_list(blocks[end])
            ):
                end += 1
            if end > index + 1:
                index = end
                continue
        kept.append(block)
        index += 1
    return kept


# --------------------------------------------------------------------------------------------
# Source text: line breaks, link labels, indentation in CommonMark columns, inline tokens


def _normalise(text: str) -> str:
    # markdown-it normalises line breaks and NUL the same way, so token line maps match.
    return text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").replace("\0", "\ufffd")


def _ref_key(label: str) -> str:
    return " ".join(label.split()).casefold()


def _continues(previous: _Block, following: _Block) -> bool:
    """Whether the numbered list ``following`` goes on with the numbering of ``previous``:
    the next number, or the same one for lists numbered ``1.`` ``1.`` ``1.`` (GitLab style)."""
    if previous.kind != "ordered_list" or following.kind != "ordered_list":
        return False
    level = previous.first.level + 1
    last = [t for t in previous.tokens if t.type == "list_item_open" and t.level == level]
    first = next((t for t in following.tokens if t.type == "list_item_open"), None)
    if not last or first is None or previous.first.markup != following.first.markup:
        return False
    try:
        before, after = int(last[-1].info), int(first.info)
    except ValueError:
        return False
    return after in (before, before + 1)


def _columns(text: str) -> int:
    """The column ``text`` ends at: a tab advances to the next multiple of 4 (CommonMark)."""
    column = 0
    for char in text:
        column = column + 4 - column % 4 if char == "\t" else column + 1
    return column


def _indentation(line: str) -> int:
    """The columns of a line's leading spaces and tabs."""
    return _columns(line[: len(line) - len(line.lstrip(" \t"))])


def _dedent(line: str, width: int) -> str:
    """``line`` without up to ``width`` columns of indentation, tabs counted as CommonMark does.

    A code fence indented with a tab in an item must lose its indentation like spaces, or the
    re-parsed item sees an indented code block holding the fence lines. A tab that reaches past
    ``width`` keeps its extra columns; the rest of the indentation becomes spaces then, because
    the tab stops after a cut that is not on a multiple of 4 are no longer where they were."""
    column = 0
    for index, char in enumerate(line):
        if column >= width or char not in " \t":
            return line[index:]
        after = column + 4 - column % 4 if char == "\t" else column + 1
        if after > width:
            rest = line[index + 1 :]
            return " " * (_indentation(line) - width) + rest.lstrip(" \t")
        column = after
    return ""


def _walk_inline(tokens: Sequence[Token]) -> Iterable[Token]:
    for token in tokens:
        yield token
        if token.children:
            yield from _walk_inline(token.children)


def _inline_with_lines(tokens: Sequence[Token]) -> Iterable[tuple[int, Token]]:
    """Every inline token of the document with the 1-based line it stands on (soft and hard
    line breaks move to the next line), for findings reported at their line."""
    for token in tokens:
        if token.type != "inline" or token.map is None:
            continue
        line = token.map[0] + 1
        for child in _walk_inline(token.children or []):
            if child.type in ("softbreak", "hardbreak"):
                line += 1
            else:
                yield line, child


def _humanise(name: str) -> str:
    """``disk-full`` -> ``Disk full``; ``KubePodCrashLooping`` stays as it is (an alert name)."""
    if not name:
        return ""
    if re.search(r"[A-Z].*[a-z].*[A-Z]", name):
        return name
    words = re.sub(r"[-_]+", " ", name).strip()
    return words[:1].upper() + words[1:]
