"""Walking a parsed Markdown document: its top-level blocks, the heading tree, and plain text."""

from __future__ import annotations

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
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "image":
            parts.append(child.content)
    return " ".join("".join(parts).split())


def markdown_plain_text(markdown: str) -> str:
    """The words of a markdown text without markup or code blocks (for previews and titles)."""
    return " ".join(text for t in _MD.parse(markdown) if t.type == "inline" and (text := _plain(t)))


def _heading_text(block: _Block) -> str:
    return _plain(block.tokens[1] if len(block.tokens) > 1 else None)


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


def _is_toc_title(block: _Block) -> bool:
    """``## Table of Contents`` or a paragraph ``**Table of Contents**``."""
    if block.kind not in ("heading", "paragraph") or len(block.tokens) < 2:
        return False
    return bool(_TOC_NAME.match(_plain(block.tokens[1])))


def _without_toc(blocks: Sequence[_Block]) -> list[_Block]:
    """The blocks without a table of contents: a marker the viewer replaces with one, or a
    "Table of Contents" title followed by such a marker or by a list of links to anchors.
    Slack shows none of it usefully, and a marker must not become the runbook's description."""
    kept: list[_Block] = []
    index = 0
    while index < len(blocks):
        block = blocks[index]
        if _is_toc_marker(block):
            index += 1
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
