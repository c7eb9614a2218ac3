"""Turn a markdown runbook into what responders walk through: context and ordered steps.

Teams write runbooks in two styles, and both must work without rewriting them for the bot:

* **Checklists**: ``- [ ] do this`` items (nested items stay inside their parent) and numbered
  lists. Each top-level item is a step.
* **Prose organised by headings**, typically Meaning / Impact / Diagnosis / Mitigation with commands
  in fenced code blocks. Context sections (Meaning, Impact, Links...) are shown as context; each
  actionable section (Diagnosis, Mitigation, Rollback...) is a step, split further at its
  sub-headings and, when it holds several commands, at each command block together with the text
  that explains it. Paragraphs that number a procedure (``**Step 3: Verify**``, ``**3.** ...``,
  as Confluence exports write them) each open a step, like headings, command or not.

The document is parsed with markdown-it (CommonMark, tables, strikethrough, task lists), never with
regular expressions over the raw text, so code blocks, lists and headings are recognised exactly as
a markdown viewer shows them. Steps keep their source line (for lint messages) and their original
markdown (rendered for Slack by :mod:`bot.runbooks.render`).

The parser never raises on content: invalid front matter, unterminated code fences and documents
without any structure still give a walkable runbook (at least one step when there is any text),
and what was wrong is kept in ``Runbook.problems`` for ``firebreak runbooks lint``.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.tasklists import tasklists_plugin

MAX_FILE_BYTES = 1_048_576
"""Files over 1 MB are not runbooks anyone can read at 3 a.m.; they are skipped (lint reports)."""
TITLE_MAX = 300
"""The longest runbook title kept (the ``runbook_runs.title`` column)."""
STEP_TITLE_MAX = 120
DESCRIPTION_MAX = 300

Level = Literal["error", "warning"]


def make_markdown() -> MarkdownIt:
    """The markdown dialect runbooks are read in: CommonMark + GFM tables, strikethrough and
    task lists. Raw HTML is kept as tokens so it can be shown as readable text."""
    return (
        MarkdownIt("commonmark", {"html": True})
        .enable(["table", "strikethrough"])
        .use(tasklists_plugin)
    )


_MD = make_markdown()


# --------------------------------------------------------------------------------------------
# The result


@dataclass(frozen=True)
class Problem:
    """Something lint reports. ``line`` is 1-based in the file (0: the whole file)."""

    line: int
    level: Level
    message: str


@dataclass(frozen=True)
class Step:
    title: str
    markdown: str
    line: int
    """1-based line in the file where the step starts."""

    def as_dict(self) -> dict[str, Any]:
        return {"title": self.title, "markdown": self.markdown, "line": self.line}


@dataclass(frozen=True)
class ContextSection:
    title: str
    markdown: str
    line: int

    def as_dict(self) -> dict[str, Any]:
        return {"title": self.title, "markdown": self.markdown}


@dataclass(frozen=True)
class Link:
    """A link or image target in the body, kept so lint can check relative ones exist."""

    line: int
    target: str
    image: bool


@dataclass(frozen=True)
class Runbook:
    id: str
    title: str
    description: str = ""
    services: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    alerts: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    owner: str | None = None
    context: tuple[ContextSection, ...] = ()
    steps: tuple[Step, ...] = ()
    path: Path | None = None
    content_hash: str = ""
    headings: tuple[str, ...] = ()
    text: str = ""
    """The prose of the runbook as plain text (no code), for keyword matching."""
    links: tuple[Link, ...] = ()
    problems: tuple[Problem, ...] = ()
    unknown_keys: tuple[str, ...] = field(default=())
    """Front-matter keys the bot does not use (Hugo's weight, bookHidden...)."""
    empty: bool = False
    """No text at all besides front matter and the title heading."""

    def snapshot(self) -> dict[str, Any]:
        """The shape stored in ``RunbookRun.snapshot`` (other modules read exactly these keys)."""
        return {
            "title": self.title,
            "description": self.description,
            "context": [c.as_dict() for c in self.context],
            "steps": [s.as_dict() for s in self.steps],
        }


# --------------------------------------------------------------------------------------------
# Front matter

TEXT_KEYS = ("title", "description", "owner")
LIST_KEYS = {
    "services": ("services", "service"),
    "severities": ("severities", "severity"),
    "alerts": ("alerts", "alert"),
    "tags": ("tags", "tag"),
}
KNOWN_KEYS = frozenset(TEXT_KEYS) | {alias for names in LIST_KEYS.values() for alias in names}


@dataclass
class _FrontMatter:
    data: dict[str, Any] = field(default_factory=dict)
    key_lines: dict[str, int] = field(default_factory=dict)
    lines: int = 0
    """How many lines of the file (delimiters included) the front matter takes."""
    start_line: int = 1
    problems: list[Problem] = field(default_factory=list)


def _split_front_matter(lines: list[str]) -> _FrontMatter:
    fm = _FrontMatter()
    if not lines:
        return fm
    opener = lines[0].rstrip()
    if opener not in ("---", "+++"):
        return fm
    closers = ("---", "...") if opener == "---" else ("+++",)
    end = next((i for i in range(1, len(lines)) if lines[i].rstrip() in closers), None)
    if end is None:
        fm.problems.append(
            Problem(
                1,
                "warning",
                f"the file starts with {opener} but the front matter is never closed with "
                f"{closers[0]}; it is shown as text",
            )
        )
        return fm
    fm.lines = end + 1
    raw = "\n".join(lines[1:end])
    if opener == "---":
        _load_yaml(raw, fm)
    else:
        _load_toml(raw, fm)
    return fm


# libyaml's parser when PyYAML was built with it: five times faster on a large catalog.
_YamlLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load_yaml(raw: str, fm: _FrontMatter) -> None:
    if not raw.strip():
        return
    try:
        loader = _YamlLoader(raw)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        # "while parsing a flow sequence" points at where the unclosed [ or { began
        mark = exc.context_mark or exc.problem_mark
        line = 2 + (mark.line if mark is not None else 0)
        reason = exc.problem or exc.context or "cannot be parsed"
        fm.problems.append(Problem(line, "error", f"invalid YAML front matter: {reason}"))
        return
    except Exception as exc:
        # Any failure of the YAML library (e.g. ValueError for a date like 2024-13-45) must
        # leave the runbook usable: the body still loads.
        fm.problems.append(Problem(2, "error", f"invalid YAML front matter: {exc}"))
        return
    if data is None:
        return
    if not isinstance(data, dict):
        fm.problems.append(
            Problem(2, "error", "front matter must be key: value pairs (e.g. title: Disk full)")
        )
        return
    fm.data = {str(k): v for k, v in data.items()}
    if isinstance(node, yaml.MappingNode):
        for key_node, _ in node.value:
            fm.key_lines[str(key_node.value)] = 2 + key_node.start_mark.line


def _load_toml(raw: str, fm: _FrontMatter) -> None:
    try:
        fm.data = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"line (\d+)", str(exc))
        line = 1 + (int(found.group(1)) if found else 1)
        reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        fm.problems.append(Problem(line, "error", f"invalid TOML front matter: {reason}"))


@dataclass
class _Meta:
    title: str | None = None
    description: str | None = None
    owner: str | None = None
    lists: dict[str, tuple[str, ...]] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)


_SCALAR = (str, int, float)


def _read_meta(fm: _FrontMatter) -> _Meta:
    meta = _Meta()
    for key, value in fm.data.items():
        line = fm.key_lines.get(key, fm.start_line)
        if key in TEXT_KEYS:
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, _SCALAR):
                fm.problems.append(
                    Problem(line, "error", f"front matter {key!r} must be text, not a list or map")
                )
                continue
            setattr(meta, key, " ".join(str(value).split()) or None)
        elif key in KNOWN_KEYS:
            name = next(n for n, aliases in LIST_KEYS.items() if key in aliases)
            names = _names(value)
            if names is None:
                fm.problems.append(
                    Problem(
                        line,
                        "error",
                        f"front matter {key!r} must be a name or a list of names "
                        f"(e.g. {key}: [a, b])",
                    )
                )
                continue
            meta.lists[name] = tuple(dict.fromkeys(meta.lists.get(name, ()) + names))
        else:
            meta.unknown.append(key)
    return meta


def _names(value: object) -> tuple[str, ...] | None:
    if value is None:
        return ()
    if isinstance(value, bool):
        return None
    if isinstance(value, _SCALAR):
        return tuple(p.strip() for p in str(value).split(",") if p.strip())
    if isinstance(value, list):
        out: list[str] = []
        for item in value:
            if isinstance(item, bool) or not isinstance(item, _SCALAR):
                return None
            if str(item).strip():
                out.append(str(item).strip())
        return tuple(out)
    return None


# --------------------------------------------------------------------------------------------
# Blocks and the heading tree


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


# --------------------------------------------------------------------------------------------
# What a heading means

_ACTION = re.compile(
    r"\b(?:diagnos\w*|mitigat\w*|remed\w*|resol(?:ve|ves|ving|ution|utions)|steps?|"
    r"procedures?|recover\w*|rollbacks?|roll(?:ing)?[ -]?backs?|troubleshoot\w*|investigat\w*|"
    r"fix|fixes|fixing|actions?|verif\w*|validat\w*|runbooks?|playbooks?|response|respond\w*|"
    r"triage|checks?|checklists?|debug\w*|escalat\w*|restor\w*|fail[ -]?over|solutions?|"
    r"instructions?|workarounds?|clean[ -]?up|what to do|how to|immediate|communicat\w*|"
    r"notif\w*|repair\w*|contain\w*|eradicat\w*|handling|tasks?)\b"
)
_CONTEXT = re.compile(
    r"\b(?:meaning|impact\w*|summary|overview|background|descriptions?|links?|see also|"
    r"references?|related|about|context|symptoms?|what is|what does|why|alerts?|details?|"
    r"dashboards?|owners?|ownership|contacts?|prerequisites?|requirements?|notes?|faq|"
    r"glossary|architecture|history|causes?|purpose|scope|introduction|intro|definitions?|"
    r"further reading|more information|additional information|resources|documentation|docs|"
    r"tl;?dr|who)\b"
)
IMPERATIVE_VERBS = frozenset(
    """check restart run scale roll drain cordon uncordon verify confirm identify find look
    escalate notify page open create delete remove increase decrease reduce failover fail switch
    stop start kill disable enable rotate revoke renew replace reboot deploy redeploy revert pause
    resume flush clear purge clean inspect investigate review collect gather capture dump update
    upgrade downgrade apply add set ensure make wait monitor watch communicate post announce
    declare assign block unblock isolate contact call ask compare query test validate restore
    recover reset resize expand extend promote demote evict mitigate fix resolve silence ack
    acknowledge determine assess measure estimate tail ssh exec connect log login trigger
    disconnect drop shed throttle route reroute redirect move migrate copy backup back snapshot
    terminate detach attach mount unmount free archive compress truncate rebuild reindex vacuum
    analyze analyse tune patch pin unpin hold lock unlock freeze unfreeze cancel abort retry rerun
    re-run go use get list describe search grep follow email message tell inform""".split()  # noqa: SIM905
)
_NUMBERED = re.compile(r"^\s*(?:step\s*\d+\b\s*[:.)\-–—]?|\d+\s*[.):\-–—])\s*", re.IGNORECASE)

_STEP_LEAD = re.compile(
    r"^\s*(?:step\s*(\d{1,4})\b\s*[:.)\-–—]?|(\d{1,4})\s*[.):\-–—])\s*", re.IGNORECASE
)
"""How a paragraph that opens a numbered step starts: ``**Step 3: Verify**``, ``**3.** Verify``."""
_PLAIN_STEP_LEAD = re.compile(r"^\s*step\s*(\d{1,4})\s*[:.)\-–—]\s*", re.IGNORECASE)
"""The same without bold: only with the word "Step" and a colon or dash ("Step 3: verify")."""
_SOURCE_STEP_LEAD = re.compile(
    r"^(\s*)(?:(\*\*|__)\s*)?(?:step\s*\d{1,4}\b|\d{1,4}(?=\s*[.):\-–—]))\s*[:.)\-–—]?\s*"
    r"(?:(\2)\s*[:.)\-–—]?\s*)?",
    re.IGNORECASE,
)
"""The numbering at the start of such a paragraph's source line, with its bold markers."""


def _bold_lead(inline: Token) -> tuple[str, str] | None:
    """For a paragraph that starts in bold: the bold text and the text after it."""
    # markdown-it puts empty text tokens around emphasis
    children = [c for c in inline.children or [] if c.type != "text" or c.content]
    if not children or children[0].type != "strong_open":
        return None
    depth = 0
    bold: list[str] = []
    after: list[str] = []
    target = bold
    for child in children:
        if child.type == "strong_open":
            depth += 1
        elif child.type == "strong_close":
            depth -= 1
            if depth == 0:
                target = after  # the first bold run is over; later ones are text
        elif child.type in ("text", "code_inline"):
            target.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            target.append(" ")
    return "".join(bold), "".join(after)


def _step_lead(block: _Block) -> tuple[int, bool] | None:
    """The number of a paragraph that opens a step (``**Step 3: Verify**``, ``**3.** Verify``,
    ``Step 3: verify``), and whether the paragraph is nothing but that title."""
    if block.kind != "paragraph" or len(block.tokens) < 2 or block.tokens[1].type != "inline":
        return None
    inline = block.tokens[1]
    lead = _bold_lead(inline)
    if lead is not None:
        bold, after = lead
        match = _STEP_LEAD.match(bold)
        if match is None:
            return None
        return int(match.group(1) or match.group(2)), not after.strip(" \t:.-–—")
    match = _PLAIN_STEP_LEAD.match(_plain(inline))
    return (int(match.group(1)), False) if match else None


def _strip_step_number(line: str) -> str:
    """``**Step 3:** Verify`` -> ``Verify``; ``**Step 3: Verify** it`` -> ``**Verify** it``."""
    match = _SOURCE_STEP_LEAD.match(line)
    if match is None:
        return line
    opener = match.group(2) if match.group(2) and not match.group(3) else ""
    return match.group(1) + opener + line[match.end() :]


Kind = Literal["action", "context"]


def heading_kind(title: str) -> Kind | None:
    """Whether a heading names steps ("Mitigation", "Roll back the deploy", "Step 2: ...") or
    context ("Impact", "See also"); ``None`` when the words do not say.

    An imperative verb first makes it actionable; otherwise the first keyword in the heading
    decides, so "Diagnosis and background" is actionable and "Related runbooks for mitigation"
    is context. Numbered headings ("3. Drain the node") with no other clue are actionable."""
    text = " ".join(title.casefold().replace("_", " ").split())
    numbered = bool(_NUMBERED.match(text))
    text = _NUMBERED.sub("", text, count=1).strip() if numbered else text
    words = re.findall(r"[a-z][a-z'-]*", text)
    if words and words[0] in IMPERATIVE_VERBS:
        return "action"
    action = _ACTION.search(text)
    context = _CONTEXT.search(text)
    if action and (not context or action.start() <= context.start()):
        return "action"
    if context:
        return "context"
    return "action" if numbered else None


_SECTION_PHRASES = frozenset({"next steps", "what to do", "see also", "action items"})


def is_section_name(title: str) -> bool:
    """A heading that only names a section ("Mitigation", "Steps", "See also"), as opposed to a
    document title that happens to contain such a word ("Roll back a bad deploy")."""
    text = _NUMBERED.sub("", " ".join(title.casefold().split()), count=1).strip(" :.")
    found = re.findall(r"[a-z]+", text)
    if " ".join(found) in _SECTION_PHRASES:
        return True
    return len(found) == 1 and heading_kind(found[0]) is not None


def _is_label(text: str) -> bool:
    """A few words that name something ("Cluster scoped") rather than say what to do."""
    found = text.casefold().split()
    return len(found) <= 3 and found[0] not in IMPERATIVE_VERBS if found else False


def _clean_title(text: str) -> str:
    """Drop the numbering people put in headings ("2. Drain", "Step 3: ..."): steps are
    numbered by the bot."""
    stripped = _NUMBERED.sub("", text, count=1).strip()
    return stripped or text.strip()


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9`\"'(\[])")


def summarise(text: str, limit: int = STEP_TITLE_MAX) -> str:
    """The first sentence of ``text``, cut at a word boundary to ``limit`` characters."""
    text = " ".join(text.split())
    parts = _SENTENCE_END.split(text, maxsplit=1)
    sentence = parts[0].rstrip(":").strip() if parts else ""
    if len(sentence) <= limit:
        return sentence
    cut = sentence[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:-") + "…"


# --------------------------------------------------------------------------------------------
# The parser


_LIST_MARKER = re.compile(r"^(\s*)([-*+]|\d{1,9}[.)])([ \t]{1,4}|$)")
_TASK_BOX = re.compile(r"^\[[ xX]\][ \t]+")
_REF_USE = re.compile(r"\]\[([^\]\n]+)\]|\[([^\]\n]+)\](?![(\[:])")
_UNRESOLVED_REF = re.compile(r"\[([^\]\n]+)\]\[([^\]\n]*)\]")
_SEPARATOR = "\n\n"


def _normalise(text: str) -> str:
    # markdown-it normalises line breaks and NUL the same way, so token line maps match.
    return text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").replace("\0", "\ufffd")


def _ref_key(label: str) -> str:
    return " ".join(label.split()).casefold()


class _Parser:
    def __init__(self, text: str, runbook_id: str, path: Path | None) -> None:
        self.runbook_id = runbook_id
        self.path = path
        self.lines = _normalise(text).split("\n")
        self.fm = _split_front_matter(self.lines)
        self.meta = _read_meta(self.fm)
        self.problems: list[Problem] = list(self.fm.problems)
        body_lines = [""] * self.fm.lines + self.lines[self.fm.lines :]
        self.env: dict[str, Any] = {}
        self.tokens = _MD.parse("\n".join(body_lines), self.env)
        self.refs: dict[str, Any] = {
            _ref_key(k): v for k, v in self.env.get("references", {}).items()
        }
        self.blocks = _top_level_blocks(self.tokens)

    # -- source text

    def source(self, start: int, end: int) -> str:
        text = "\n".join(self.lines[start:end]).strip("\n")
        return self._with_references(text, start, end)

    def _with_references(self, text: str, start: int, end: int) -> str:
        """Append the link definitions a slice uses, so a step renders its links on its own."""
        if not self.refs or "[" not in text:
            return text
        extra: list[str] = []
        for match in _REF_USE.finditer(text):
            ref = self.refs.get(_ref_key(match.group(1) or match.group(2)))
            if ref is None or not ref.get("map"):
                continue
            ref_start, ref_end = ref["map"]
            if start <= ref_start < end:
                continue
            definition = "\n".join(self.lines[ref_start:ref_end]).strip()
            if definition and definition not in extra:
                extra.append(definition)
        return text + _SEPARATOR + "\n".join(extra) if extra else text

    def blocks_source(self, blocks: Sequence[_Block]) -> str:
        if not blocks:
            return ""
        return self.source(blocks[0].start, max(b.end for b in blocks))

    def item_source(self, item: list[Token]) -> str:
        """A list item's markdown without its marker (and task box), dedented."""
        opener = item[0]
        assert opener.map is not None
        start, end = opener.map
        lines = self.lines[start:end]
        if not lines:
            return ""
        match = _LIST_MARKER.match(lines[0])
        width = len(match.group(0)) if match else 0
        first = lines[0][width:] if match else lines[0].lstrip()
        first = _TASK_BOX.sub("", first, count=1)
        rest = []
        for line in lines[1:]:
            spaces = len(line) - len(line.lstrip(" "))
            rest.append(line[min(spaces, width) :])
        text = "\n".join([first, *rest]).strip("\n")
        return self._with_references(text, start, end)

    # -- plain text

    def block_plain(self, block: _Block) -> str:
        return " ".join(_plain(t) for t in block.tokens if t.type == "inline")

    def first_paragraph(self, blocks: Sequence[_Block]) -> str:
        for block in blocks:
            if block.kind == "paragraph":
                text = self.block_plain(block)
                if text:
                    return text
        return ""

    # -- structure

    def title_heading(self) -> _Block | None:
        """The heading that names the document and is not one of its sections: the first
        heading, when every other heading is nested under it. With a front-matter title, a
        heading such as ``# Mitigation`` stays the section it names."""
        headings = [b for b in self.blocks if b.kind == "heading"]
        if not headings:
            return None
        first = headings[0]
        level = _level(first)
        if any(_level(h) <= level for h in headings[1:]):
            return None
        if self.meta.title and is_section_name(_heading_text(first)):
            return None
        return first

    def heading_title(self) -> str:
        """The title a document without a front-matter title gives itself: its first heading
        (even a section word, ``# Rollback``), unless that heading is a level-2+ section before
        the document's level-1 title, or the first of a series of top-level sections
        (``# Meaning`` ... ``# Impact``); then the level-1 title, else nothing."""
        headings = [b for b in self.blocks if b.kind == "heading"]
        if not headings:
            return ""
        candidate = headings[0]
        if _level(candidate) > 1:
            candidate = next((h for h in headings if _level(h) == 1), candidate)
        text = _heading_text(candidate)
        later = headings[headings.index(candidate) + 1 :]
        if is_section_name(text) and any(_level(h) <= _level(candidate) for h in later):
            return ""
        return text

    def tree(self, title: _Block | None) -> _Section:
        start = self.fm.lines
        root = _Section(title="", level=0, line=start)
        stack = [root]
        for block in self.blocks:
            if block is title:
                continue
            if block.kind == "heading":
                level = int(block.first.tag[1:])
                while stack[-1].level >= level:
                    stack.pop()
                node = _Section(_heading_text(block), level, block.start)
                stack[-1].children.append(node)
                stack.append(node)
            else:
                stack[-1].body.append(block)
        return root

    # -- steps

    def list_items(self, block: _Block) -> list[list[Token]]:
        items: list[list[Token]] = []
        level = block.first.level + 1
        current: list[Token] | None = None
        for token in block.tokens[1:-1]:
            if token.type == "list_item_open" and token.level == level:
                current = [token]
                items.append(current)
            elif current is not None:
                current.append(token)
        return items

    def item_title(self, item: list[Token], fallback: str) -> str:
        for token in item:
            if token.type == "inline":
                text = _plain(token)
                if text:
                    return summarise(text)
                break
        for token in item:
            if token.type in ("fence", "code_block") and token.content.strip():
                return summarise("Run " + token.content.strip().splitlines()[0])
        return fallback

    def group_step(self, blocks: list[_Block], title: str, line: int | None = None) -> Step:
        return Step(
            title=title,
            markdown=self.blocks_source(blocks),
            line=(line if line is not None else blocks[0].start) + 1,
        )

    def body_steps(
        self, blocks: list[_Block], heading: str, heading_line: int, *, root: bool
    ) -> tuple[list[Step], list[_Block]]:
        """Steps from the blocks under one heading. For the root (the text before the first
        section) the leading prose is not a step: it is returned to be shown as context."""
        leads = self.step_leads(blocks)
        if leads:
            return self._lead_mode(blocks, leads, heading, heading_line, root=root)
        if any(b.is_step_list for b in blocks):
            return self._list_mode(blocks, heading, heading_line, root=root)
        codes = sum(1 for b in blocks if b.is_code)
        if root:
            first_code = next((i for i, b in enumerate(blocks) if b.is_code), None)
            if first_code is None:
                return [], blocks
            lead = self._trailing_prose_start(blocks, first_code)
            return self._code_mode(blocks[lead:], heading), blocks[:lead]
        if codes >= 2:
            return self._code_mode(blocks, heading), []
        if not blocks:
            return [Step(heading, "", heading_line + 1)], []
        return [self.group_step(blocks, heading, heading_line)], []

    @staticmethod
    def step_leads(blocks: Sequence[_Block]) -> list[int]:
        """Where the paragraphs that open numbered steps are ("**Step 1: Check the pods**" ...
        "**Step 3: Verify**"). Like headings, they start a step whether or not a command
        follows. Only a procedure counts: two or more, numbered one after the other (a bold
        "**2024-03-01:**" or a lone "**1.**" is not one)."""
        found = [(i, lead[0]) for i, b in enumerate(blocks) if (lead := _step_lead(b))]
        if len(found) < 2:
            return []
        first = found[0][1]
        if [number for _, number in found] != list(range(first, first + len(found))):
            return []
        return [i for i, _ in found]

    def _lead_mode(
        self, blocks: list[_Block], leads: list[int], heading: str, heading_line: int, *, root: bool
    ) -> tuple[list[Step], list[_Block]]:
        steps: list[Step] = []
        context: list[_Block] = []
        before = blocks[: leads[0]]
        intro: list[_Block] = []
        if before and (root or any(b.is_step_list or b.has_code() for b in before)):
            steps, context = self.body_steps(before, heading, heading_line, root=root)
        else:
            intro = before
        bounds = [*leads, len(blocks)]
        for start, end in itertools.pairwise(bounds):
            step = self._lead_step(blocks[start], blocks[start + 1 : end], heading, len(steps))
            if intro:
                # An introduction ("Run these in order:") is read with the first step.
                text = self.blocks_source(intro)
                markdown = text + _SEPARATOR + step.markdown if step.markdown else text
                step = Step(step.title, markdown, intro[0].start + 1)
                intro = []
            steps.append(step)
        return steps, context

    def _lead_step(self, lead: _Block, rest: list[_Block], heading: str, before: int) -> Step:
        """One "Step N:" paragraph and what follows it up to the next one. The numbering is
        dropped (the bot numbers steps); a paragraph that is only the title is the step's title,
        like a heading."""
        found = _step_lead(lead)
        assert found is not None
        _, title_only = found
        text = _NUMBERED.sub("", self.block_plain(lead), count=1).strip()
        end = max((b.end for b in rest), default=lead.end)
        if title_only:
            markdown = self.blocks_source(rest)
        else:
            first = _strip_step_number(self.lines[lead.start])
            body = "\n".join([first, *self.lines[lead.start + 1 : end]]).strip("\n")
            markdown = self._with_references(body, lead.start, end)
        fallback = f"{heading} ({before + 1})"
        title = summarise(text) if text else self._group_title(rest, fallback)
        return Step(title, markdown, lead.start + 1)

    @staticmethod
    def _trailing_prose_start(blocks: list[_Block], index: int) -> int:
        """Where the paragraph(s) that introduce the code block at ``index`` begin."""
        start = index
        while start > 0 and blocks[start - 1].kind == "paragraph":
            start -= 1
        # With several paragraphs before it, the first one describes the runbook, not the code.
        return 1 if start == 0 and index >= 2 else start

    def _list_mode(
        self, blocks: list[_Block], heading: str, heading_line: int, *, root: bool
    ) -> tuple[list[Step], list[_Block]]:
        steps: list[Step] = []
        context: list[_Block] = []
        lead: list[_Block] = []
        seen_list = False
        for block in blocks:
            if not block.is_step_list:
                lead.append(block)
                continue
            for index, item in enumerate(self.list_items(block)):
                markdown = self.item_source(item)
                assert item[0].map is not None
                line = item[0].map[0]
                title = self.item_title(item, f"{heading} ({len(steps) + 1})")
                if index == 0 and lead:
                    if root and not seen_list and not any(b.has_code() for b in lead):
                        context.extend(lead)
                    elif any(b.has_code() for b in lead):
                        steps.append(self.group_step(lead, self._group_title(lead, heading)))
                    else:
                        markdown = self.blocks_source(lead) + _SEPARATOR + markdown
                        line = lead[0].start
                    lead = []
                steps.append(Step(title, markdown, line + 1))
            seen_list = True
        if lead:
            if any(b.has_code() for b in lead) or not steps:
                steps.append(self.group_step(lead, self._group_title(lead, heading)))
            else:
                last = steps[-1]
                merged = last.markdown + _SEPARATOR + self.blocks_source(lead)
                steps[-1] = Step(last.title, merged, last.line)
        return steps, context

    def _group_title(self, blocks: Sequence[_Block], fallback: str) -> str:
        text = self.first_paragraph(blocks)
        return summarise(text) if text else fallback

    def _code_mode(self, blocks: list[_Block], heading: str) -> list[Step]:
        groups: list[list[_Block]] = [[]]
        for block in blocks:
            groups[-1].append(block)
            if block.is_code:
                groups.append([])
        tail = groups.pop()
        if tail:
            groups[-1].extend(tail)
        for index in range(1, len(groups)):
            # Of the text between two commands, the last paragraph introduces the next command;
            # what comes before it explains the output of the previous one.
            group = groups[index]
            code_at = next(i for i, b in enumerate(group) if b.is_code)
            if code_at >= 2:
                groups[index - 1].extend(group[: code_at - 1])
                groups[index] = group[code_at - 1 :]
        steps: list[Step] = []
        for number, group in enumerate(groups, start=1):
            code_at = next(i for i, b in enumerate(group) if b.is_code)
            # The paragraph right before a command says what it does ("Cluster scoped:").
            title = self._group_title(group[:code_at][::-1], "")
            if not title:
                title = f"{heading} ({number})"
            elif _is_label(title) and heading and title.casefold() != heading.casefold():
                # a label such as "Cluster scoped:" says little without its section
                title = f"{heading}: {title}"
            steps.append(self.group_step(group, title))
        return steps

    # -- the whole document

    def run(self) -> Runbook:
        title_block = self.title_heading()
        root = self.tree(title_block)
        title = self._title()

        items: list[tuple[str, Any]] = []
        root_steps, root_context = self.body_steps(root.body, title, root.line, root=True)
        if root_context:
            items.append(("context", ("Overview", root_context)))
        items.extend(("step", s) for s in root_steps)
        for child in root.children:
            self._walk(child, items, inherited=None)

        steps = [s for kind, s in items if kind == "step"]
        contexts = [c for kind, c in items if kind == "context"]
        unknown = [n for kind, n in items if kind == "unknown"]
        if not steps and unknown:
            # No recognisable steps: the sections the words did not classify are the steps.
            items = [
                ("step", self._section_step(value)) if kind == "unknown" else (kind, value)
                for kind, value in items
            ]
            steps = [s for kind, s in items if kind == "step"]
            unknown = []
        contexts.extend((node.title, node) for node in unknown)
        all_body = [b for b in self.blocks if b is not title_block]
        empty = not any(self._has_text(b) for b in all_body)
        if not steps and not empty:
            steps = [self.group_step(all_body, title, all_body[0].start)]
            contexts = []
        built = sorted((self._context(name, value) for name, value in contexts), key=_first_line)
        context_sections = [section for section, _ in built]

        self._check_fences()
        self._check_references()
        description = self.meta.description or self._description(built)
        return Runbook(
            id=self.runbook_id,
            title=title,
            description=description,
            services=self.meta.lists.get("services", ()),
            severities=self.meta.lists.get("severities", ()),
            alerts=self.meta.lists.get("alerts", ()),
            tags=self.meta.lists.get("tags", ()),
            owner=self.meta.owner,
            context=tuple(context_sections),
            steps=tuple(steps),
            path=self.path,
            content_hash=hashlib.sha256("\n".join(self.lines).encode()).hexdigest(),
            headings=tuple(_heading_text(b) for b in self.blocks if b.kind == "heading"),
            text=" ".join(self.block_plain(b) for b in self.blocks if b.kind != "heading"),
            links=tuple(self._links()),
            problems=tuple(self.problems),
            unknown_keys=tuple(self.meta.unknown),
            empty=empty,
        )

    def _walk(self, node: _Section, items: list[tuple[str, Any]], inherited: Kind | None) -> None:
        kind = heading_kind(node.title)
        if kind == "context":
            items.append(("context", (node.title, node)))
            return
        if kind == "action" or inherited == "action":
            child_items: list[tuple[str, Any]] = []
            for child in node.children:
                self._walk(child, child_items, inherited="action")
            first = next((i for i, (k, _) in enumerate(child_items) if k == "step"), None)
            intro_only = not self._procedural(node.body)
            if node.body and intro_only and first is not None:
                # An introduction to the sub-sections ("Two approaches can be used:") is read
                # with the first of them, not clicked through as a step of its own.
                step = child_items[first][1]
                markdown = self.blocks_source(node.body) + _SEPARATOR + step.markdown
                child_items[first] = ("step", Step(step.title, markdown, node.body[0].start + 1))
            elif node.body or not node.children:
                steps, _ = self.body_steps(
                    node.body, _clean_title(node.title), node.line, root=False
                )
                items.extend(("step", s) for s in steps)
            items.extend(child_items)
            return
        if node.body:
            if self._procedural(node.body):
                steps, _ = self.body_steps(
                    node.body, _clean_title(node.title), node.line, root=False
                )
                items.extend(("step", s) for s in steps)
            elif node.children:
                items.append(
                    ("context", (node.title, _Section(node.title, 0, node.line, node.body)))
                )
            else:
                items.append(("unknown", node))
        for child in node.children:
            self._walk(child, items, inherited=None)

    def _procedural(self, blocks: list[_Block]) -> bool:
        """Blocks that hold steps of their own: a checklist, a command or "Step N:" paragraphs."""
        return any(b.is_step_list or b.has_code() for b in blocks) or bool(self.step_leads(blocks))

    def _section_step(self, node: _Section) -> Step:
        blocks = list(node.all_blocks())
        end = max((b.end for b in blocks), default=node.line + 1)
        markdown = self.source(node.line + 1, end) if blocks else ""
        return Step(_clean_title(node.title), markdown, node.line + 1)

    def _context(self, name: str, value: Any) -> tuple[ContextSection, list[_Block]]:
        if isinstance(value, _Section):
            blocks = list(value.all_blocks())
            if value.children:
                end = max((b.end for b in blocks), default=value.line + 1)
                markdown = self.source(value.line + 1, end)
            else:
                markdown = self.blocks_source(blocks)
            return ContextSection(name, markdown, value.line + 1), blocks
        blocks = list(value)
        return ContextSection(name, self.blocks_source(blocks), blocks[0].start + 1), blocks

    def _title(self) -> str:
        name = self.runbook_id.rsplit("/", 1)[-1] or (self.path.stem if self.path else "")
        candidates = [self.meta.title, self.heading_title(), _humanise(name)]
        title = next((c for c in candidates if c), "Runbook")
        return summarise(title, TITLE_MAX) if len(title) > TITLE_MAX else title

    def _description(self, context: list[tuple[ContextSection, list[_Block]]]) -> str:
        """The first paragraph of Meaning / Summary / Overview (else of the first context)."""
        preferred = ("meaning", "summary", "overview", "description", "about", "purpose")
        ordered = sorted(
            context,
            key=lambda c: (not any(w in c[0].title.casefold() for w in preferred), c[0].line),
        )
        for _, blocks in ordered:
            text = self.first_paragraph(blocks)
            if text:
                return summarise(text, DESCRIPTION_MAX)
        return ""

    @staticmethod
    def _has_text(block: _Block) -> bool:
        for token in block.tokens:
            if token.type == "inline" and _plain(token):
                return True
            if token.type in ("fence", "code_block") and token.content.strip():
                return True
            if token.type == "html_block" and re.sub(r"<[^>]*>", "", token.content).strip():
                return True
            if token.type == "hr":
                continue
        return False

    # -- problems

    def _check_fences(self) -> None:
        for token in self.tokens:
            if token.type != "fence" or token.map is None:
                continue
            start, end = token.map
            closing = self.lines[end - 1] if end - 1 > start else ""
            closing = closing.lstrip(" \t>").strip()
            marker = token.markup
            if not (closing.startswith(marker) and set(closing) == {marker[0]}):
                self.problems.append(
                    Problem(
                        start + 1,
                        "error",
                        f"code block opened with {marker} is never closed: add a line with "
                        f"{marker} after the code",
                    )
                )

    def _check_references(self) -> None:
        for token in self.tokens:
            if token.type != "inline" or token.map is None:
                continue
            line = token.map[0]
            for child in _walk_inline(token.children or []):
                if child.type in ("softbreak", "hardbreak"):
                    line += 1
                elif child.type == "text":
                    for match in _UNRESOLVED_REF.finditer(child.content):
                        label = match.group(2) or match.group(1)
                        if _ref_key(label) not in self.refs:
                            self.problems.append(
                                Problem(
                                    line + 1,
                                    "warning",
                                    f"link [{match.group(1)}][{match.group(2)}] has no "
                                    f"definition: add a line '[{label}]: https://...' or use an "
                                    "inline link",
                                )
                            )

    def _links(self) -> Iterable[Link]:
        for token in self.tokens:
            if token.type != "inline" or token.map is None:
                continue
            line = token.map[0]
            for child in _walk_inline(token.children or []):
                if child.type in ("softbreak", "hardbreak"):
                    line += 1
                elif child.type == "link_open":
                    yield Link(line + 1, str(child.attrs.get("href", "")), image=False)
                elif child.type == "image":
                    yield Link(line + 1, str(child.attrs.get("src", "")), image=True)


def _first_line(item: tuple[ContextSection, list[_Block]]) -> int:
    return item[0].line


def _walk_inline(tokens: Sequence[Token]) -> Iterable[Token]:
    for token in tokens:
        yield token
        if token.children:
            yield from _walk_inline(token.children)


def _humanise(name: str) -> str:
    """``disk-full`` -> ``Disk full``; ``KubePodCrashLooping`` stays as it is (an alert name)."""
    if not name:
        return ""
    if re.search(r"[A-Z].*[a-z].*[A-Z]", name):
        return name
    words = re.sub(r"[-_]+", " ", name).strip()
    return words[:1].upper() + words[1:]


def parse_runbook(text: str, *, runbook_id: str = "", path: Path | None = None) -> Runbook:
    """Parse runbook markdown. Never raises on content; problems are in ``Runbook.problems``."""
    return _Parser(text, runbook_id, path).run()


# --------------------------------------------------------------------------------------------
# Files


class RunbookFileError(Exception):
    """A file that cannot be a runbook (binary, too large, unreadable); the message says why."""


def read_runbook_text(path: Path) -> str:
    """Read a runbook file as text, refusing what the bot cannot show: over 1 MB, binary, not
    UTF-8, unreadable."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise RunbookFileError(
                f"the file is {size / 1_048_576:.1f} MB; runbooks over 1 MB are not loaded: "
                "split it into smaller runbooks"
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise RunbookFileError(f"cannot read the file: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise RunbookFileError("the file is over 1 MB; runbooks over 1 MB are not loaded")
    if b"\0" in raw[:8192]:
        raise RunbookFileError("binary file, not markdown text: remove it or rename it")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RunbookFileError(
            f"not UTF-8 text (invalid byte at offset {exc.start}): save the file as UTF-8"
        ) from None


def load_runbook_file(path: Path, runbook_id: str | None = None) -> Runbook:
    """Read and parse one file; raises :class:`RunbookFileError` for files that are not text."""
    text = read_runbook_text(path)
    return parse_runbook(text, runbook_id=runbook_id or path.stem, path=path)
