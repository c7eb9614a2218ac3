"""Links and images runbooks write as inline HTML (``<a href="...">dashboard</a>``,
``<img src="..." alt="flow">``), as Confluence exports and hand-written pages have them: their
targets, so a responder can follow them from Slack."""

from __future__ import annotations

import html
import re

from markdown_it.tree import SyntaxTreeNode

_ATTRIBUTE = r"""\b{name}\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))"""
_ANCHOR = re.compile(r"^<a\b[^>]*>$", re.IGNORECASE | re.DOTALL)
_ANCHOR_CLOSE = re.compile(r"^</a\s*>$", re.IGNORECASE)
_IMAGE = re.compile(r"^<img\b[^>]*>$", re.IGNORECASE | re.DOTALL)


def _attribute(tag: str, name: str) -> str | None:
    match = re.search(_ATTRIBUTE.format(name=name), tag, re.IGNORECASE)
    if match is None:
        return None
    return html.unescape(next(g for g in match.groups() if g is not None))


def anchor_at(nodes: list[SyntaxTreeNode], index: int) -> tuple[str, int] | None:
    """When ``nodes[index]`` opens an ``<a href=...>`` closed by a later ``</a>``: its target
    and the index of the closing tag; else ``None``."""
    node = nodes[index]
    if node.type != "html_inline" or not _ANCHOR.match(node.content.strip()):
        return None
    href = _attribute(node.content, "href")
    if href is None:
        return None
    for end in range(index + 1, len(nodes)):
        if nodes[end].type == "html_inline" and _ANCHOR_CLOSE.match(nodes[end].content.strip()):
            return href, end
    return None


def image(node: SyntaxTreeNode) -> tuple[str, str] | None:
    """The source and alt text of an ``<img>``; ``None`` for anything else."""
    if node.type != "html_inline" or not _IMAGE.match(node.content.strip()):
        return None
    source = _attribute(node.content, "src")
    return (source, _attribute(node.content, "alt") or "") if source else None
