"""Turn a markdown runbook into what responders walk through: context and ordered steps.

Teams write runbooks in two styles, and both must work without rewriting them for the bot:

* **Checklists**: ``- [ ] do this`` items (nested items stay inside their parent) and numbered
  lists. Each top-level item is a step, with the command written right after it even when it is
  not indented under it (GitHub-style ``1. Run:`` then a fence at column 0).
* **Prose organised by headings**, typically Meaning / Impact / Diagnosis / Mitigation with commands
  in fenced code blocks. Context sections (Meaning, Impact, Links...) are shown as context; each
  actionable section (Diagnosis, Mitigation, Rollback...) is a step, split further at its
  sub-headings and, when it holds several commands, at each command block together with the text
  that explains it. Paragraphs that number a procedure (``**Step 3: Verify**``, ``**3.** ...``,
  as Confluence exports write them) each open a step, like headings, command or not.

The document is parsed with markdown-it (CommonMark, tables, strikethrough, task lists), never with
regular expressions over the raw text, so code blocks, lists and headings are recognised exactly as
a markdown viewer shows them. Steps keep their source line (for lint messages) and their original
markdown (rendered for Slack by :mod:`bot.slack.runbook_messages`).

The parser never raises on content: invalid front matter, unterminated code fences and documents
without any structure still give a walkable runbook (at least one step when there is any text),
and what was wrong is kept in ``Runbook.problems`` for ``firebreak runbooks lint``.

By concept: ``model`` (the result), ``front_matter``, ``site_syntax`` (documentation sites'
additions, rewritten as CommonMark first), ``document`` (walking the parsed blocks and headings),
``headings`` (what a heading or paragraph means: step detection), ``body`` (cutting one section's
text into steps), ``files`` (reading a file) and this module, the parser itself: which sections
are context and which are steps. It re-exports the public names of the others.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bot.runbooks.body import _SEPARATOR, _Body
from bot.runbooks.checks import unclosed_fences, undefined_references
from bot.runbooks.decisions import is_reference_item
from bot.runbooks.declared import declared_alerts
from bot.runbooks.dialect import make_markdown
from bot.runbooks.document import (
    _Block,
    _heading_text,
    _humanise,
    _inline_with_lines,
    _level,
    _normalise,
    _ref_key,
    _Section,
    _top_level_blocks,
    _without_toc,
    markdown_plain_text,
    token_has_text,
)
from bot.runbooks.files import RunbookFileError, read_runbook_text
from bot.runbooks.front_matter import (
    KNOWN_KEYS,
    LIST_KEYS,
    TEXT_KEYS,
    _read_meta,
    _split_front_matter,
)
from bot.runbooks.headings import (
    IMPERATIVE_VERBS,
    Kind,
    _clean_title,
    _opens_with_verb,
    alert_heading,
    heading_kind,
    is_section_name,
    names_a_step,
    summarise,
    under_alert,
    with_bold_headings,
)
from bot.runbooks.model import (
    _MD,
    ALERT_SEPARATOR,
    DESCRIPTION_MAX,
    MAX_FILE_BYTES,
    STEP_TITLE_MAX,
    TITLE_MAX,
    ContextSection,
    Level,
    Link,
    Problem,
    Runbook,
    Step,
)
from bot.runbooks.site_syntax import mend_quoted_fences, to_commonmark

__all__ = [
    "DESCRIPTION_MAX",
    "IMPERATIVE_VERBS",
    "KNOWN_KEYS",
    "LIST_KEYS",
    "MAX_FILE_BYTES",
    "STEP_TITLE_MAX",
    "TEXT_KEYS",
    "TITLE_MAX",
    "ContextSection",
    "Kind",
    "Level",
    "Link",
    "Problem",
    "Runbook",
    "RunbookFileError",
    "Step",
    "heading_kind",
    "is_section_name",
    "load_runbook_file",
    "make_markdown",
    "markdown_plain_text",
    "parse_runbook",
    "read_runbook_text",
    "summarise",
]


class _Parser(_Body):
    def __init__(self, text: str, runbook_id: str, path: Path | None) -> None:
        self.runbook_id = runbook_id
        self.path = path
        self.lines = _normalise(text).split("\n")
        self.fm = _split_front_matter(self.lines)
        self.lines[self.fm.lines :] = mend_quoted_fences(to_commonmark(self.lines[self.fm.lines :]))
        self.meta = _read_meta(self.fm)
        self.problems: list[Problem] = list(self.fm.problems)
        body_lines = [""] * self.fm.lines + self.lines[self.fm.lines :]
        self.env: dict[str, Any] = {}
        self.decision_tails = []
        self.tokens = _MD.parse("\n".join(body_lines), self.env)
        self.refs: dict[str, Any] = {
            _ref_key(k): v for k, v in self.env.get("references", {}).items()
        }
        self.blocks = with_bold_headings(_without_toc(_top_level_blocks(self.tokens)))

    # -- the whole document

    # -- structure

    def title_heading(self) -> _Block | None:
        """The heading that names the document and is not one of its sections: the first
        heading, when every other heading is nested under it or when it is the document's
        title with nothing under it (``# Redis Runbook`` then ``# Summary``, ``# Mitigation``
        all at level 1). With a front-matter title, a heading such as ``# Mitigation`` stays the
        section it names."""
        headings = [b for b in self.blocks if b.kind == "heading"]
        if not headings:
            return None
        first = headings[0]
        level = _level(first)
        if any(_level(h) <= level for h in headings[1:]):
            return first if self._bare_title(first) or self._titles_sections(headings) else None
        if self.meta.title and is_section_name(_heading_text(first)):
            return None
        return first

    def _titles_sections(self, headings: list[_Block]) -> bool:
        """A first heading that opens the file and holds its sections, before an appendix at
        its level (``# Redis failover``, intro, ``## Steps``, then ``# Appendix``): the
        document's title, its text the overview. Not a section word (``# Meaning``)."""
        first = headings[0]
        if self.meta.title or self.blocks[0] is not first or is_section_name(_heading_text(first)):
            return False
        return _level(headings[1]) > _level(first)

    def _bare_title(self, heading: _Block) -> bool:
        """A first heading that gives the document its title and has no text of its own: a
        step named after the document would be empty. A first heading with text under it
        ("# Check the disk" then "# Restart the pod") stays a section."""
        if self.meta.title or self.blocks[0] is not heading:
            return False
        return self._bare(heading) and self.heading_title() == _heading_text(heading)

    def heading_title(self) -> str:
        """The title a document without a front-matter title gives itself: its first heading
        (even a section word, ``# Rollback``), unless that heading is a level-2+ section before
        the document's level-1 title, or the first of a series of top-level sections
        (``# Meaning`` ... ``# Impact``); then the level-1 title, else nothing. A section word
        under level 2 (``## Mitigation``) with no level-1 title is not a title either, nor is,
        with no level-1 title, a first heading with text under it that other headings at its
        level follow (``## docker system prune:`` then ``## Remove images:``): the file's
        first section; the file name titles it."""
        headings = [b for b in self.blocks if b.kind == "heading"]
        if not headings:
            return ""
        candidate = headings[0]
        if _level(candidate) > 1:
            candidate = next((h for h in headings if _level(h) == 1), candidate)
        text = _heading_text(candidate)
        later = headings[headings.index(candidate) + 1 :]
        siblings = any(_level(h) <= _level(candidate) for h in later)
        if is_section_name(text) and (_level(candidate) > 1 or siblings):
            return ""  # "## Mitigation" names a section of the file, not the file
        if _level(candidate) > 1 and siblings and not self._bare(candidate):
            return ""  # "## docker system prune:" with its command: the file's first section
        return text

    def _bare(self, heading: _Block) -> bool:
        """A heading with no text of its own: a heading or nothing follows it."""
        following = next(i for i, b in enumerate(self.blocks) if b is heading) + 1
        return following == len(self.blocks) or self.blocks[following].kind == "heading"

    def tree(self, title: _Block | None) -> _Section:
        start = self.fm.lines
        root = _Section(title="", level=0, line=start)
        stack = [root]
        for block in self.blocks:
            if block is title:
                continue
            if block.kind == "heading":
                level = int(block.first.tag[1:])
                last = stack[-1]
                alerts = [alert_heading(last.title), alert_heading(_heading_text(block))]
                if last.level == level and not last.body and all(alerts):
                    # "## TempoRequestErrors" then "## TempoRequestLatency": one text for both
                    last.title = ALERT_SEPARATOR.join(a for a in alerts if a)
                    continue
                while stack[-1].level >= level:
                    stack.pop()
                node = _Section(_heading_text(block), level, block.start)
                stack[-1].children.append(node)
                stack.append(node)
            else:
                stack[-1].body.append(block)
        return root

    def run(self) -> Runbook:
        title_block = self.title_heading()
        root = self.tree(title_block)
        title = self._title()

        items: list[tuple[str, Any]] = []
        root_steps, root_context = self.body_steps(root.body, title, root.line, root=True)
        sections: list[tuple[str, Any]] = []
        for child in root.children:
            self._walk(child, sections, inherited=None)
        if root_steps and any(k == "step" for k, _ in sections) and self._overview(root.body):
            # "This runbook covers: 1. Failing over 2. Restoring" over the sections that give
            # the steps: the list tells what is in the runbook, it is not walked through.
            root_steps, root_context = [], root.body
        if root_context:
            items.append(("context", ("Overview", root_context)))
        items.extend(("step", s) for s in root_steps)
        items.extend(sections)

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
        empty = not any(token_has_text(t) for b in all_body for t in b.tokens)
        if not steps and not empty:
            steps = [self.group_step(all_body, title, all_body[0].start)]
            contexts = []
        steps = self._decisions_forward(steps)
        if len({s.section for s in steps}) == 1:
            # One section holds every step ("## Steps"): naming it says nothing.
            steps = [dataclasses.replace(s, section="") for s in steps]
        built = sorted((self._context(name, value) for name, value in contexts), key=_first_line)
        context_sections = [section for section, _ in built]

        self.problems.extend(unclosed_fences(self.tokens, self.lines))
        self.problems.extend(undefined_references(self.tokens, self.refs))
        description = self.meta.description or self._description(built)
        return Runbook(
            id=self.runbook_id,
            title=title,
            description=description,
            services=self.meta.lists.get("services", ()),
            severities=self.meta.lists.get("severities", ()),
            alerts=self.meta.lists.get("alerts", ()),
            declared_alerts=declared_alerts(self.tokens),
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
        """The steps and context of ``node`` and its sub-sections, added to ``items``; under a
        heading naming an alert, each step knows that alert (the innermost one naming it)."""
        start = len(items)
        self._walk_section(node, items, inherited)
        alert = alert_heading(node.title)
        if alert:
            items[start:] = [
                (k, dataclasses.replace(v, alert=v.alert or alert) if k == "step" else v)
                for k, v in items[start:]
            ]

    def _walk_section(
        self, node: _Section, items: list[tuple[str, Any]], inherited: Kind | None
    ) -> None:
        alert = alert_heading(node.title)
        # "Alert Name: KubeJobFailed" is no context for its word "alert": it is the alert's
        # section, which says what to do about it (below), whatever its text is written as.
        kind = None if alert else heading_kind(node.title)
        if inherited is None and node.children and (alert or self._holds_alerts(node, kind)):
            self._walk_group(node, items, alert)
            return
        if kind == "context" and not _holds_actions(node):
            items.append(("context", (node.title, node)))
            return
        if kind == "context":
            # "## Cause 1: the secret was deleted" over "### Diagnosis" and "### Fix": the
            # cause is context, the sections under it are what to do.
            if node.body:
                items.append(
                    ("context", (node.title, _Section(node.title, 0, node.line, node.body)))
                )
            for child in node.children:
                self._walk(child, items, inherited=None)
            return
        if kind == "action" and self._only_references(node):
            # "## Escalation contacts" with a list of on-call links: whom to call, shown as
            # context; nothing in it to do and tick off.
            items.append(("context", (node.title, node)))
            return
        if kind == "action" or inherited == "action":
            child_items: list[tuple[str, Any]] = []
            for child in node.children:
                self._walk(child, child_items, inherited="action")
            first = next((i for i, (k, _) in enumerate(child_items) if k == "step"), None)
            intro_only = not self._procedural(node.body) and not names_a_step(node.title)
            if node.body and intro_only and first is not None:
                # An introduction to the sub-sections ("Two approaches can be used:") is read
                # with the first of them, not clicked through as a step of its own. Under a
                # step's own title ("### Restart the consumers") the text is that step.
                step = child_items[first][1]
                markdown = self.blocks_source(node.body) + _SEPARATOR + step.markdown
                child_items[first] = (
                    "step",
                    dataclasses.replace(step, markdown=markdown, line=node.body[0].start + 1),
                )
            elif node.body or not node.children:
                heading = _clean_title(node.title)
                steps, _ = self.body_steps(node.body, heading, node.line, root=False)
                items.extend(("step", s) for s in _under(steps, heading))
            items.extend(_in_chapter(child_items, node.title))
            return
        if node.body and (self._procedural(node.body) or self._imperative(node.body) or alert):
            # An alert's section written as prose (Mimir's "This alert goes off when..." then
            # "How to **investigate**:") or as kubernetes-mixin's "+ *Action*: ..." bullets is
            # what to do about that alert: the run opens there, at a step named after it.
            heading = alert or _clean_title(node.title)
            steps, _ = self.body_steps(node.body, heading, node.line, root=False)
            items.extend(("step", s) for s in _under(steps, heading))
        elif node.body and node.children:
            child_items = []
            for child in node.children:
                self._walk(child, child_items, inherited=None)
            if child_items and child_items[0][0] == "step":
                # What the section says before its first numbered sub-section ("IMPORTANT:
                # make sure the workload is drained") is read with that step, where it guards
                # what is done, not shown apart at the top of the runbook.
                step = child_items[0][1]
                markdown = self.blocks_source(node.body) + _SEPARATOR + step.markdown
                child_items[0] = (
                    "step",
                    dataclasses.replace(step, markdown=markdown, line=node.body[0].start + 1),
                )
            else:
                items.append(
                    ("context", (node.title, _Section(node.title, 0, node.line, node.body)))
                )
            items.extend(_in_chapter(child_items, node.title))
            return
        elif node.body:
            items.append(("unknown", node))
        elif kind is None and node.children:
            # "## Primary region" over "### Check replication" and "### Promote": the region
            # tells the steps apart from the same ones under "## Secondary region".
            group: list[tuple[str, Any]] = []
            for child in node.children:
                self._walk(child, group, inherited=None)
            items.extend(_in_chapter(group, node.title))
            return
        for child in node.children:
            self._walk(child, items, inherited=None)

    @staticmethod
    def _holds_alerts(node: _Section, kind: Kind | None) -> bool:
        """An "Alerts" context section whose sub-sections are alerts: each says what to do
        about its alert, under headings of its own (Meaning, Mitigation) or in its text."""
        return kind == "context" and any(alert_heading(c.title) for c in node.children)

    def _walk_group(self, node: _Section, items: list[tuple[str, Any]], alert: str | None) -> None:
        """A section per alert (``## Alert: PaymentsHighErrorRate`` over ``### Meaning`` and
        ``### Mitigation``): its sub-sections are walked like top-level ones, so a Mitigation
        is a step even though "alert" names context, titled after the alert."""
        found: list[tuple[str, Any]] = []
        if node.body and self._procedural(node.body):
            steps, _ = self.body_steps(node.body, alert or node.title, node.line, root=False)
            found.extend(("step", s) for s in steps)
        elif node.body:
            found.append(("context", (node.title, _Section(node.title, 0, node.line, node.body))))
        for child in node.children:
            self._walk(child, found, inherited=None)
        if alert and node.body and not any(kind == "step" for kind, _ in found):
            # Prose over sub-sections that give no step ("#### Dashboards"): the alert's own
            # text is its step, so a run opened at the alert shows something of it.
            steps, _ = self.body_steps(node.body, alert, node.line, root=False)
            found[0:1] = [("step", s) for s in steps]
        for kind, value in found:
            if alert and kind == "step":
                value = Step(
                    under_alert(alert, value.title), value.markdown, value.line, alert=value.alert
                )
            elif alert and kind == "context":
                value = (under_alert(alert, value[0]), value[1])
            elif alert and kind == "unknown":
                value = dataclasses.replace(value, title=under_alert(alert, value.title))
            items.append((kind, value))

    def _overview(self, blocks: list[_Block]) -> bool:
        """An introduction whose numbered lists tell what the runbook is about, not what to do:
        each introduced by a sentence ending in ":" that says so ("This runbook covers:",
        "It assumes:"), or whose items mirror the headings after it, or, under a lead-in
        that is no instruction itself, none of whose items is one ("1. Failing over")."""
        lists = [i for i, b in enumerate(blocks) if b.is_step_list]
        if not lists or any(b.has_code() for b in blocks):
            return False
        headings = {_overview_key(_heading_text(b)) for b in self.blocks if b.kind == "heading"}
        for index in lists:
            block = blocks[index]
            lead = self.block_plain(blocks[index - 1]) if index else ""
            if block.kind != "ordered_list" or blocks[index - 1].kind != "paragraph":
                return False
            if not lead.rstrip().endswith(":"):
                return False
            texts = [self.item_title(item, "") for item in self.list_items(block)]
            if _OVERVIEW_LEAD.search(lead):
                continue
            if all(_overview_key(t) in headings for t in texts):
                continue
            instructs = [lead, *texts]
            if any(_opens_with_verb(t.casefold()) for t in instructs):
                return False
        return True

    def _decisions_forward(self, steps: list[Step]) -> list[Step]:
        """Steps with each decision that ended a section's text ("**Decision:** if most
        sessions are idle, go to *Kill idle sessions*") moved to the start of the next step
        (of the same alert), the one it decides about: the step before it is ticked off, and
        shown folded, by the time the responder decides."""
        found = list(steps)
        for start, text in self.decision_tails:
            for index in range(len(found) - 1):
                step, following = found[index], found[index + 1]
                kept = step.markdown.removesuffix(text).rstrip()
                if kept == step.markdown.rstrip() or not step.line <= start < following.line:
                    continue
                if following.alert != step.alert or not kept.strip():
                    break
                markdown = text + _SEPARATOR + following.markdown if following.markdown else text
                found[index] = dataclasses.replace(step, markdown=kept)
                found[index + 1] = dataclasses.replace(following, markdown=markdown)
                break
        return found

    def _only_references(self, node: _Section) -> bool:
        """A section under a heading about whom to tell or where to look ("Escalation
        contacts", "Troubleshooting dashboards") holding only bullet lists of links, handles,
        channels or numbers (and sentences that give no instruction): nothing to do. Not a
        step's own title ("Contact the DBA team"), nor one with a command or a checklist."""
        if node.children or not node.body or names_a_step(node.title):
            return False
        if not _WHOM.search(node.title):
            return False  # "## Mitigation" with a link to the failover runbook: follow it
        lists = [b for b in node.body if b.kind == "bullet_list" and not b.is_step_list]
        if not lists or any(b.has_code() for b in node.body):
            return False
        for block in node.body:
            if block.kind == "paragraph" and not _starts_with_verb(self.block_plain(block)):
                continue
            if block not in lists:
                return False
            for item in self.list_items(block):
                inlines = [t for t in item if t.type == "inline"]
                if len(inlines) != 1 or not _names_only(inlines[0]):
                    return False
        return True

    def _procedural(self, blocks: list[_Block]) -> bool:
        """Blocks that hold steps of their own: a checklist, a command or "Step N:" paragraphs."""
        return any(b.is_step_list or b.has_code() for b in blocks) or bool(self.step_leads(blocks))

    def _imperative(self, blocks: list[_Block]) -> bool:
        """Blocks that tell the reader what to do ("Delete all accounts except your own."): a
        paragraph that starts with a verb in the imperative, or a list whose first item or
        most of whose items do. Under a heading the words do not classify ("Cut off the attack
        vector", "Forensic analysis"), that makes the section steps, as the same text under
        "Mitigation" would be."""
        for block in blocks:
            if block.kind == "paragraph" and _starts_with_verb(self.block_plain(block)):
                return True
            if block.kind in ("bullet_list", "ordered_list"):
                texts = [self.item_title(item, "") for item in self.list_items(block)]
                verbs = [_starts_with_verb(t) for t in texts]
                if verbs and (verbs[0] or 2 * sum(verbs) > len(verbs)):
                    return True
        return False

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
        # "docker system prune:" introduces its text; as a title, its colon points at nothing
        title = next((t for c in candidates if (t := (c or "").rstrip(": "))), "Runbook")
        return summarise(title, TITLE_MAX) if len(title) > TITLE_MAX else title

    def _description(self, context: list[tuple[ContextSection, list[_Block]]]) -> str:
        """The first paragraph of Meaning / Summary / Overview (else of the first context with
        one). An Overview written as a list is described by its first item; another list (the
        alerts a section defines) is no description of the runbook."""
        preferred = ("meaning", "summary", "overview", "description", "about", "purpose")
        ranked = [
            (not any(w in c.title.casefold() for w in preferred), c.line, b) for c, b in context
        ]
        for other, _, blocks in sorted(ranked, key=lambda r: (r[0], r[1])):
            text = self.first_paragraph(blocks) or ("" if other else self.first_text(blocks))
            if text:
                return summarise(text, DESCRIPTION_MAX)
        return ""

    # -- problems

    def _links(self) -> Iterable[Link]:
        for line, child in _inline_with_lines(self.tokens):
            if child.type == "link_open":
                yield Link(line, str(child.attrs.get("href", "")), image=False)
            elif child.type == "image":
                yield Link(line, str(child.attrs.get("src", "")), image=True)


def _starts_with_verb(text: str) -> bool:
    """Text that opens with a verb in the imperative ("Take any read-only images...")."""
    words = re.findall(r"[a-z][a-z'-]*", text.casefold()[:40])
    return bool(words) and words[0] in IMPERATIVE_VERBS


_WHOM = re.compile(
    r"escalat|communicat|notif|contact|on-?call|channel|owner|\bteams?\b|\bpeople\b|"
    r"\blinks?\b|dashboard|\breferences?\b|\bdocs\b|documentation|\bresources\b",
    re.IGNORECASE,
)
"""Headings with a word for actions that are about whom to tell or call ("Escalation
contacts", "Response team") or where to look ("Troubleshooting dashboards", "Playbook
links")."""


def _names_only(inline: Any) -> bool:
    """A list item's text that only points somewhere: a link, a handle, an address."""
    parts: list[str] = []
    depth = 0
    for child in inline.children or []:
        if child.type == "link_open":
            depth += 1
            parts.append("<link>" if depth == 1 else "")
        elif child.type == "link_close":
            depth -= 1
        elif depth == 0 and child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif depth == 0 and child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
    text = "".join(parts).strip()
    return text == "<link>" or is_reference_item(text, link_only=False)


def _first_line(item: tuple[ContextSection, list[_Block]]) -> int:
    return item[0].line


_OVERVIEW_LEAD = re.compile(
    r"\b(?:covers?|contains?|assumes?|assumptions?|describes?|explains?|includes?|outlines?|"
    r"stored in|kept in)\b",
    re.IGNORECASE,
)
"""A sentence introducing what a runbook is about ("This runbook covers:", "It assumes:")."""


def _overview_key(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.casefold()))


def _holds_actions(node: _Section) -> bool:
    """A section with an actionable section somewhere under it."""
    return any(heading_kind(c.title) == "action" or _holds_actions(c) for c in node.children)


def _under(steps: list[Step], heading: str) -> list[Step]:
    """``steps`` of the section ``heading``, each knowing it (a step titled with it too: the
    steps after it are still in its section)."""
    return [
        s if not heading or s.section else dataclasses.replace(s, section=heading) for s in steps
    ]


CHAPTER_SEPARATOR = " › "
"""Between a chapter's name and its sub-section's in a step's section: ``Removing an unhealthy
replica › Stop patroni service on the node``."""


def _in_chapter(items: list[tuple[str, Any]], heading: str) -> list[tuple[str, Any]]:
    """The steps of a chapter's sub-sections, each knowing the chapter too, so a responder
    tells "Removing a replica › Step 1" from "Replacing the replica › Step 1", and the same
    steps under "Primary region" from those under "Secondary region". A step that is its
    sub-section (titled with it) is shown under the chapter alone."""
    chapter = _clean_title(heading)
    found: list[tuple[str, Any]] = []
    for kind, value in items:
        if kind == "step" and chapter:
            section = value.section
            if section in ("", value.title, chapter):
                section = chapter
            elif not section.startswith(chapter + CHAPTER_SEPARATOR):
                section = chapter + CHAPTER_SEPARATOR + section
            value = dataclasses.replace(value, section=section)
        found.append((kind, value))
    return found


def parse_runbook(text: str, *, runbook_id: str = "", path: Path | None = None) -> Runbook:
    """Parse runbook markdown. Never raises on content; problems are in ``Runbook.problems``."""
    return _Parser(text, runbook_id, path).run()


def load_runbook_file(path: Path, runbook_id: str | None = None) -> Runbook:
    """Read and parse one file; raises :class:`RunbookFileError` for files that are not text."""
    text = read_runbook_text(path)
    return parse_runbook(text, runbook_id=runbook_id or path.stem, path=path)
