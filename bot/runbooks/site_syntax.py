"""The syntax documentation sites add to Markdown, rewritten as CommonMark before a runbook is
parsed, line for line (so every line number lint reports and every step's source line stays
the file's own).

Runbooks live in MkDocs, Docusaurus, Hugo and Jekyll sites, and CommonMark reads their additions
as text: a command inside a MkDocs call-out (indented under ``!!! warning``) ran into one line
with the next, a Hugo ``{{< text bash >}}`` block lost its backslashes to Markdown escaping, and
the tags themselves were shown to responders. So:

* **Call-outs** (MkDocs ``!!! type "Title"`` / ``??? type`` with an indented body; Docusaurus
  ``:::type Title`` ... ``:::``) become block quotes whose first line keeps the MkDocs marker,
  which the Slack renderer shows as a label. Code blocks and lists inside stay what they are.
* **Hugo code shortcodes** (``{{< text bash >}}``, ``{{< highlight bash >}}``, ``{{< code >}}``)
  become code fences; their content is kept byte for byte.
* **Template lines** (a line that is only a Hugo shortcode, a Jekyll/Liquid tag or variable, or
  an MDX ``import``) become blank; a Hugo ``{{% comment %}}`` hides what it encloses, as the site
  does. A Docusaurus ``<TabItem label="Elasticsearch">`` becomes its label in bold, so the steps
  of alternative tabs say which is which.
* **Content tabs** (MkDocs Material ``=== "Kubernetes"`` with an indented body) become their
  label in bold, like a ``<TabItem>``, then their body un-indented, rewritten like the rest.
* **A bare ``>`` in a quoted code fence** at less indentation than the quote (an editor's
  empty quote line, at column 0 under a list item) gets the quote's indentation
  (:func:`mend_quoted_fences`), so the command is not cut in two.

Nothing inside a code fence (``` ```ansible -m ping all``` ``` on a line is inline code, not
one: a backtick fence's info string holds no backtick) or a ``<pre>`` block is touched, nor a
line indented four columns or more (it may be an indented code block's); tabs after a
call-out's indentation are kept.
"""

from __future__ import annotations

import re

from bot.runbooks.headings import ADMONITION_TYPES

_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
# An HTML block CommonMark keeps as written up to its closing tag (``<pre>`` ... ``</pre>``).
_RAW_HTML_OPEN = re.compile(r"^ {0,3}<(pre|script|style|textarea)(?:[ \t>]|$)", re.IGNORECASE)
_CONTENT_TAB = re.compile(r"""^(?P<indent>[ \t]*)===[!+]?[ \t]+"(?P<label>[^"]*)"[ \t]*$""")
_MKDOCS = re.compile(
    r"^(?P<indent>[ \t]*)(?:!!!|\?\?\?\+?)[ \t]+(?P<kind>[A-Za-z]+)\b(?P<rest>.*)$"
)
_DOCUSAURUS_OPEN = re.compile(r"^(?P<indent>[ \t]*):::(?P<kind>[A-Za-z]+)[ \t]*(?P<title>.*)$")
_DOCUSAURUS_CLOSE = re.compile(r"^[ \t]*:::[ \t]*$")
_HUGO_CODE_OPEN = re.compile(
    r"^(?P<indent>[ \t]*)\{\{[<%][ \t]*(?:text|highlight|code)\b(?P<args>[^}]*)[>%]\}\}[ \t]*$"
)
_HUGO_CODE_CLOSE = re.compile(r"^[ \t]*\{\{[<%][ \t]*/(?:text|highlight|code)[ \t]*[>%]\}\}[ \t]*$")
_HUGO_COMMENT_OPEN = re.compile(r"^[ \t]*\{\{[<%][ \t]*comment[ \t]*[>%]\}\}[ \t]*$")
_HUGO_COMMENT_CLOSE = re.compile(r"^[ \t]*\{\{[<%][ \t]*/comment[ \t]*[>%]\}\}[ \t]*$")
_TEMPLATE_LINE = re.compile(
    r"^[ \t]*(?:\{\{[<%].*[>%]\}\}|\{%.*%\}|\{\{[ \t]*site\.[^}]*\}\})[ \t]*$"
)
_TABS = re.compile(r"^[ \t]*(?:</?Tabs\b[^>]*>|</TabItem>)[ \t]*$")
_MDX_IMPORT = re.compile(r"""^import[ \t]+[\w{},\s*]+[ \t]+from[ \t]+['"][^'"]+['"];?[ \t]*$""")
_TAB_ITEM = re.compile(
    r"""^(?P<indent>[ \t]*)<TabItem\b[^>]*\blabel=["'](?P<label>[^"']+)["'][^>]*>[ \t]*$"""
)
_LANGUAGE = re.compile(r"""(?:lang(?:uage)?=)?["']?([\w+-]+)["']?""")
_QUOTED_TITLE = re.compile(r"""^[ \t]*"([^"]*)"[ \t]*$""")


def _width(line: str) -> int:
    return len(line.expandtabs(4)) - len(line.expandtabs(4).lstrip())


def _dedent(line: str, columns: int) -> str:
    """``line`` without its first ``columns`` columns of indentation. Tabs count to the next
    multiple of four there; after it every character is kept as it is (a Makefile's tab)."""
    column = 0
    for index, char in enumerate(line):
        if column >= columns or char not in " \t":
            return line[index:]
        after = column + 1 if char == " " else (column // 4 + 1) * 4
        if after > columns:  # a tab reaching past the cut: the rest of it as spaces
            return " " * (after - columns) + line[index + 1 :]
        column = after
    return ""


def to_commonmark(lines: list[str]) -> list[str]:
    """``lines`` with the documentation sites' syntax rewritten (see the module docstring);
    as many lines as were given."""
    out: list[str] = []
    index = 0
    fence: str | None = None
    raw: str | None = None  # the closing tag of the <pre> (or like) block the line is in
    while index < len(lines):
        line = lines[index]
        opened = _fence_opener(line)
        if raw is None and fence is None:
            html = _RAW_HTML_OPEN.match(line)
            raw = f"</{html.group(1).casefold()}>" if html else None
        if raw is not None:
            # Inside <pre> every line is shown as written, template tags too, as in a fence.
            if raw in line.casefold():
                raw = None
            out.append(line)
            index += 1
            continue
        if fence is not None:
            # A closing fence has no info string: "```text" inside a fence is its content.
            ticks = opened if opened and not line.strip().strip(opened[0]) else ""
            if ticks[:1] == fence[0] and len(ticks) >= len(fence):
                fence = None
            out.append(line)
            index += 1
            continue
        if opened:
            fence = opened
            out.append(line)
            index += 1
            continue
        taken = (
            _mkdocs(lines, index)
            or _docusaurus(lines, index)
            or _hugo_code(lines, index)
            or _hugo_comment(lines, index)
            or _content_tab(lines, index)
        )
        if taken is not None:
            out.extend(taken)
            index += len(taken)
            continue
        tab = _TAB_ITEM.match(line)
        if tab:
            out.append(f"{tab.group('indent')}**{tab.group('label').strip()}**")
        elif _width(line) < 4 and (
            _TEMPLATE_LINE.match(line) or _MDX_IMPORT.match(line) or _TABS.match(line)
        ):
            # Indented four columns it may be an indented code block's line, kept as written.
            out.append("")
        else:
            out.append(line)
        index += 1
    return out


def _fence_opener(line: str) -> str | None:
    """The backticks or tildes opening a code fence on ``line``, if it opens one. A backtick
    fence's info string holds no backtick (CommonMark): ```` ```ansible -m ping all``` ```` is
    inline code on a line of its own, not a fence."""
    match = _FENCE.match(line)
    if match is None:
        return None
    ticks = match.group(1)
    return None if ticks[0] == "`" and "`" in line[match.end() :] else ticks


def _body_end(lines: list[str], index: int) -> int:
    """Past the last line of the body indented four columns under ``lines[index]`` (a call-out
    marker, a content tab's); ``index + 1`` when it has none."""
    base = _width(lines[index])
    end = index + 1
    for at in range(index + 1, len(lines)):
        line = lines[at]
        if line.strip() and _width(line) < base + 4:
            break
        if line.strip():
            end = at + 1
    return end


def _mkdocs(lines: list[str], index: int) -> list[str] | None:
    """``!!! warning "Title"`` and its body, indented four columns under it."""
    match = _MKDOCS.match(lines[index])
    if match is None or match.group("kind").lower() not in ADMONITION_TYPES:
        return None
    rest = match.group("rest")
    if rest.strip() and _QUOTED_TITLE.match(rest) is None:
        return None  # "!!! Note this is prose" is a sentence, not a call-out
    base = _width(lines[index])
    end = _body_end(lines, index)
    if end == index + 1:
        return None  # no body: a lone marker line, left to the renderer
    prefix = " " * base
    out = [f"{prefix}> !!! {match.group('kind').lower()}{rest}"]
    inner: list[str] = []
    for line in lines[index + 1 : end]:
        inner.append(_dedent(line, base + 4) if line.strip() else "")
    out.extend(f"{prefix}> {line}".rstrip() for line in inner)
    return out


def _docusaurus(lines: list[str], index: int) -> list[str] | None:
    """``:::warning Title`` (or ``:::warning[Title]``) ... ``:::``."""
    match = _DOCUSAURUS_OPEN.match(lines[index])
    if match is None or match.group("kind").lower() not in ADMONITION_TYPES:
        return None
    end = next((i for i in range(index + 1, len(lines)) if _DOCUSAURUS_CLOSE.match(lines[i])), None)
    if end is None:
        return None
    prefix = match.group("indent")
    title = match.group("title").strip().strip("[]").strip()
    marker = f"!!! {match.group('kind').lower()}" + (f' "{title}"' if title else "")
    out = [f"{prefix}> {marker}"]
    out.extend(
        f"{prefix}> {_dedent(line, len(prefix))}".rstrip() for line in lines[index + 1 : end]
    )
    out.append("")  # the closing ::: ends the quote
    return out


def _hugo_code(lines: list[str], index: int) -> list[str] | None:
    """``{{< text bash >}}`` ... ``{{< /text >}}`` as a code fence."""
    match = _HUGO_CODE_OPEN.match(lines[index])
    if match is None:
        return None
    end = next((i for i in range(index + 1, len(lines)) if _HUGO_CODE_CLOSE.match(lines[i])), None)
    if end is None:
        return None
    words = match.group("args").split()
    language = _LANGUAGE.fullmatch(words[0]) if words else None
    ticks = re.findall(r"`+", "\n".join(lines[index + 1 : end]))
    fence = "`" * max(3, 1 + max((len(t) for t in ticks), default=0))
    indent = match.group("indent")
    return [
        f"{indent}{fence}{language.group(1) if language else ''}",
        *lines[index + 1 : end],
        f"{indent}{fence}",
    ]


def _hugo_comment(lines: list[str], index: int) -> list[str] | None:
    """``{{% comment %}}`` ... ``{{% /comment %}}``: hidden on the site, so here too."""
    if _HUGO_COMMENT_OPEN.match(lines[index]) is None:
        return None
    end = next(
        (i for i in range(index + 1, len(lines)) if _HUGO_COMMENT_CLOSE.match(lines[i])), None
    )
    if end is None:
        return None
    return [""] * (end + 1 - index)


def _content_tab(lines: list[str], index: int) -> list[str] | None:
    """A MkDocs Material content tab (``=== "Kubernetes"`` with its body indented four columns
    under it): its label in bold, as a Docusaurus ``<TabItem>``'s, then its body as written
    there, un-indented (so its code fence is a fence) and rewritten like the rest."""
    match = _CONTENT_TAB.match(lines[index])
    if match is None:
        return None
    end = _body_end(lines, index)
    if end == index + 1:
        return None
    base = _width(lines[index])
    prefix = " " * base
    body = to_commonmark([_dedent(line, base + 4) for line in lines[index + 1 : end]])
    label = match.group("label").strip()
    return [f"{prefix}**{label}**" if label else "", *(prefix + b if b else "" for b in body)]


_QUOTED_FENCE = re.compile(r"^([ \t]*(?:>[ \t]?)+)(`{3,}|~{3,})")
"""A code fence opened inside a block quote (``   > ```sh`` under a list item)."""
_BARE_QUOTE = re.compile(r"^[ \t]*(?:>[ \t]*)+$")


def mend_quoted_fences(lines: list[str]) -> list[str]:
    """``lines`` with the bare ``>`` lines inside a quoted code fence given the fence's own
    indentation. An editor writes a quote's empty line as ``>`` at column 0 even when the quote
    is indented under a list item; CommonMark then ends the item there, cutting the command in
    two and leaving the rest of it as quoted text. As many lines as were given."""
    out = list(lines)
    fence: str | None = None  # a code fence outside any quote: nothing in it is touched
    prefix: str | None = None  # the quote markers of the quoted fence the line is in
    ticks = ""
    for index, line in enumerate(lines):
        if fence is not None:
            if _closes(line, fence):
                fence = None
            continue
        if prefix is None:
            quoted = _QUOTED_FENCE.match(line)
            if quoted and not (quoted.group(2)[0] == "`" and "`" in line[quoted.end() :]):
                prefix, ticks = quoted.group(1), quoted.group(2)
            else:
                fence = _fence_opener(line)
            continue
        if line.startswith(prefix.rstrip()) and not _BARE_QUOTE.match(line):
            if _closes(line[len(prefix.rstrip()) :], ticks):
                prefix = None
        elif _BARE_QUOTE.match(line):
            out[index] = prefix.rstrip()
        else:
            prefix = None  # the quote ends here, as CommonMark reads it
    return out


def _closes(text: str, fence: str) -> bool:
    """Whether ``text`` (a line, its quote markers taken off) closes a code fence opened with
    ``fence``: that character only, at least as many."""
    closing = text.strip()
    return set(closing) == {fence[0]} and len(closing) >= len(fence)
