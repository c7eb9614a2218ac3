"""The Markdown dialect runbooks are read in: CommonMark with GFM tables, strikethrough and task
lists, and raw HTML kept as tokens so it can be shown as readable text, with two rules of
Firebreak's own on top:

* **Placeholders stay words.** ``kubectl delete pod <pod-name> -n <namespace>`` is how runbooks
  write the parts a responder fills in, and CommonMark reads ``<pod-name>`` as an HTML tag,
  which every reader then hides: the command would reach Slack as ``kubectl delete pod  -n``.
  An inline tag is kept as HTML only when it is one runbooks use for formatting (``<br>``,
  ``<kbd>``, ``<details>``...) or carries an attribute with a value (``<span class="x">``);
  anything else (``<pod-name>``, ``<namespace>``, ``<title>``, ``<!here>``) is text, shown as
  written, also alone on a line (``<TBD>``, ``- <oncall-lead-handle>``), where CommonMark reads
  a block of HTML. So is Slack's own markup written in a runbook (``<!subteam^S1|@oncall>``), which
  CommonMark would otherwise make an e-mail link.
* **Task lists in linear time.** GFM task items (``- [ ] ...``) mark their item and their list
  as in markdown-it-py's plugin, but the plugin looks for each item's list by scanning back
  from the item: a checklist of thousands of items took minutes to read.
"""

from __future__ import annotations

import re

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token

FORMATTING_TAGS = frozenset(
    """a abbr b bdi bdo big blockquote br caption center cite code col colgroup dd del details
    dfn div dl dt em figcaption figure font h1 h2 h3 h4 h5 h6 hr i img ins kbd li mark nobr ol p
    picture pre q rp rt ruby s samp small span strike strong sub summary sup table tbody td tfoot
    th thead tr tt u ul var wbr""".split()  # noqa: SIM905 (a list of 70 words reads better so)
)
"""The HTML tags runbooks use to format what they say (GitHub's, Confluence's and GitLab's
exports); other tag names without attributes are placeholders."""

_TAG = re.compile(r"<\s*/?\s*([A-Za-z][A-Za-z0-9-]*)(.*?)/?\s*>\Z", re.DOTALL)
_VALUED_ATTRIBUTE = re.compile(r"[A-Za-z_:][\w.:-]*\s*=")
_TASK = re.compile(r"\[[ xX]\][ \t\n\v\f\r]+")


def is_html(raw: str) -> bool:
    """Whether inline raw HTML is markup (hidden or rendered) rather than words."""
    if raw.startswith(("<!--", "<![CDATA[", "<?")):
        return True  # comments are notes to the authors
    if raw.startswith("<!"):
        return raw[2:9].upper() == "DOCTYPE"  # <!here>, <!channel>: Slack's, not HTML's
    match = _TAG.match(raw)
    if match is None:
        return True
    name, rest = match.group(1).lower(), match.group(2)
    return name in FORMATTING_TAGS or _VALUED_ATTRIBUTE.search(rest) is not None


def _placeholder_blocks_as_text(state: StateCore) -> None:
    """A placeholder on a line of its own (``<TBD>``, ``- <oncall-lead-handle>``), which
    CommonMark reads as a block of HTML, is a paragraph, read as text like one inside a line."""
    tokens: list[Token] = []
    for token in state.tokens:
        tag = token.content.strip() if token.type == "html_block" else ""
        if not tag or "\n" in tag or is_html(tag):
            tokens.append(token)
            continue
        opening = Token("paragraph_open", "p", 1, map=token.map, level=token.level)
        inline = Token("inline", "", 0, map=token.map, level=token.level + 1, children=[])
        inline.content = tag
        tokens += [opening, inline, Token("paragraph_close", "p", -1, level=token.level)]
    state.tokens = tokens


def _placeholders_as_text(state: StateCore) -> None:
    for token in state.tokens:
        if token.type != "inline" or not token.children:
            continue
        children: list[Token] = []
        items = iter(token.children)
        for child in items:
            if child.type == "html_inline" and not is_html(child.content):
                child.type = "text"
            elif (
                child.type == "link_open"
                and child.markup == "autolink"
                and str(child.attrs.get("href", "")).startswith("mailto:!")
            ):
                # <!subteam^S1|@oncall>: Slack markup, not an address; the text as written.
                label = next(items)
                next(items)  # link_close
                child = Token("text", "", 0, content=f"<{label.content}>")
            children.append(child)
        token.children = children


def _task_lists(state: StateCore) -> None:
    tokens = state.tokens
    lists: list[Token] = []  # the lists open at this point, innermost last
    for i, token in enumerate(tokens):
        if token.type in ("bullet_list_open", "ordered_list_open"):
            lists.append(token)
        elif token.type in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
        elif (
            token.type == "inline"
            and i >= 2
            and tokens[i - 1].type == "paragraph_open"
            and tokens[i - 2].type == "list_item_open"
            and _TASK.match(token.content)
            and token.children
        ):
            checked = token.content[1] in "xX"
            box = Token("html_inline", "", 0)
            box.content = (
                '<input class="task-list-item-checkbox"'
                + (' checked="checked"' if checked else "")
                + ' disabled="disabled" type="checkbox">'
            )
            token.children[0].content = token.children[0].content[3:]
            token.children.insert(0, box)
            token.content = token.content[3:]
            tokens[i - 2].attrSet("class", "task-list-item")
            lists[-1].attrSet("class", "contains-task-list")


def make_markdown() -> MarkdownIt:
    """The markdown dialect runbooks are read in (see the module's docstring)."""
    md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    md.core.ruler.before("inline", "firebreak-placeholder-blocks", _placeholder_blocks_as_text)
    md.core.ruler.after("inline", "firebreak-placeholders", _placeholders_as_text)
    md.core.ruler.after("firebreak-placeholders", "firebreak-task-lists", _task_lists)
    return md
