"""Links and images runbooks write as inline HTML (``<a href="...">dashboard</a>``,
``<img src="..." alt="flow">``), as Confluence exports and hand-written pages have them: their
targets, so a responder can follow them from Slack; and a link's target in text Slack shows
as code (a table), where nothing is a link."""

from __future__ import annotations

import html
import re
from collections.abc import Callable

from markdown_it.tree import SyntaxTreeNode

from bot.markup import safe_url, spoofs

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


def with_anchors(
    nodes: list[SyntaxTreeNode],
    text: Callable[[SyntaxTreeNode], str],
    label: Callable[[SyntaxTreeNode], str],
    link: Callable[[str, str], str],
) -> str:
    """The text of ``nodes``: each ``<a href>`` ... ``</a>`` as ``link(href, its label)`` (the
    ``label`` of the nodes between), every other node as its ``text``."""
    out: list[str] = []
    index = 0
    while index < len(nodes):
        found = anchor_at(nodes, index)
        if found is None:
            out.append(text(nodes[index]))
            index += 1
            continue
        href, end = found
        out.append(link(href, "".join(label(node) for node in nodes[index + 1 : end])))
        index = end + 1
    return "".join(out)


def shown_target(href: str, label: str) -> str:
    """A link as plain text that keeps where it leads: ``Grafana (https://...)``. Only a web
    address is shown (a relative path means nothing in Slack); it alone when the label is the
    address or names another one (``spoofs``)."""
    url = safe_url(href)
    if url is None:
        return label
    if not label.strip() or label.strip() == url or spoofs(label, url):
        return url
    return f"{label} ({url})"


def image(node: SyntaxTreeNode) -> tuple[str, str] | None:
    """The source and alt text of an ``<img>``; ``None`` for anything else."""
    if node.type != "html_inline" or not _IMAGE.match(node.content.strip()):
        return None
    source = _attribute(node.content, "src")
    return (source, _attribute(node.content, "alt") or "") if source else None
