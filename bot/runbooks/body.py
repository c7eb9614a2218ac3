"""Steps from the blocks under one heading (or before the first): the three ways runbooks
write a procedure under a heading, each its own mode. "Step N:" paragraphs (``_lead_mode``),
checklists and numbered lists (``_list_mode``), prose with several commands (``_code_mode``),
else the whole section as one step. The document walk (:mod:`bot.runbooks.parser`) decides
which sections are steps; this decides how a section's text is cut into them."""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from typing import Any

from markdown_it.token import Token

from bot.runbooks.decisions import decision_start
from bot.runbooks.document import (
    _Block,
    _columns,
    _continues,
    _dedent,
    _indentation,
    _plain,
    _ref_key,
)
from bot.runbooks.headings import (
    _NUMBERED,
    ADMONITION,
    QUOTE_CALLOUT,
    _is_label,
    _opens_with_verb,
    _step_lead,
    _strip_step_number,
    bold_line,
    summarise,
)
from bot.runbooks.model import (
    Step,
)

_LIST_MARKER = re.compile(r"^(\s*)([-*+]|\d{1,9}[.)])([ \t]{1,4}|$)")
_TASK_BOX = re.compile(r"^\[[ xX]\][ \t]+")
_REF_USE = re.compile(r"\]\[([^\]\n]+)\]|\[([^\]\n]+)\](?:\[\])?(?![(\[:])")
"""A link by reference: ``[text][label]``, ``[label][]`` or ``[label]``."""
_SEPARATOR = "\n\n"


class _Body:
    """The source of a parsed runbook and the cutting of its sections into steps."""

    lines: list[str]
    refs: dict[str, Any]
    decision_tails: list[tuple[int, str]]
    """Decisions that end a section's text ("If the lag still grows, go to *Failover*"): the
    line each starts on and its source, read with the step after it (:mod:`.decisions`)."""

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
        first = lines[0][match.end() :] if match else lines[0].lstrip()
        first = _TASK_BOX.sub("", first, count=1)
        width = _columns(match.group(0)) if match else 0
        rest = [_dedent(line, width) for line in lines[1:]]
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

    def first_text(self, blocks: Sequence[_Block]) -> str:
        """The first text in a list or a quote (not a table's, which is no sentence)."""
        for block in blocks:
            if block.kind in ("bullet_list", "ordered_list", "blockquote"):
                for token in block.tokens:
                    if token.type == "inline" and (text := _plain(token)):
                        return text
        return ""

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
                    return summarise(bold_line(token) or text)
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
        if not root:
            self._note_decision_tail(blocks)
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

    def decision_at(self, blocks: Sequence[_Block]) -> int | None:
        """Where a decision starts among blocks of prose between steps (:mod:`.decisions`)."""
        return decision_start([self._prose(b) for b in blocks])

    def _prose(self, block: _Block) -> str:
        """A paragraph's or quote's plain text, a bullet list's items one a line; nothing for
        code, tables, checklists and numbered lists."""
        if block.kind in ("paragraph", "blockquote"):
            return self.block_plain(block)
        if block.kind == "bullet_list" and not block.is_step_list:
            firsts = [
                next((t for t in item if t.type == "inline"), None)
                for item in self.list_items(block)
            ]
            return "\n".join(_plain(t) for t in firsts if t is not None)
        return ""

    def _trailing_decision(self, blocks: list[_Block]) -> list[_Block]:
        """The decision that ends ``blocks`` (prose after their last command or item), when
        something comes before it."""
        start = len(blocks)
        while start > 0 and not blocks[start - 1].has_code() and self._prose(blocks[start - 1]):
            start -= 1
        at = self.decision_at(blocks[start:])
        return blocks[start + at :] if at is not None and start + at > 0 else []

    def _note_decision_tail(self, blocks: list[_Block]) -> None:
        """Remember a decision that ends a section's text, so that the parser reads it with
        the step after the section's last one."""
        tail = self._trailing_decision(blocks)
        if tail:
            self.decision_tails.append((tail[0].start, self.blocks_source(tail)))

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
            rest = blocks[start + 1 : end]
            decision = self._trailing_decision(rest) if end < len(blocks) else []
            rest = rest[: len(rest) - len(decision)]
            step = self._lead_step(blocks[start], rest, heading, len(steps))
            if intro:
                # An introduction ("Run these in order:") is read with the first step.
                text = self.blocks_source(intro)
                markdown = text + _SEPARATOR + step.markdown if step.markdown else text
                step = Step(step.title, markdown, intro[0].start + 1)
            # A decision before the next "Step N:" ("If it answers PONG, go to Step 3") is
            # read with that step, as an introduction is.
            intro = decision
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
        seen_list: _Block | None = None
        after_list = False
        folded = False  # inside a <details> block opened after an item, until </details>
        for block in blocks:
            if after_list and (
                folded
                or (
                    not block.is_step_list
                    and (
                        block.is_code
                        or block.is_aside
                        or self._call_out(block)
                        or self._indent(block) > self._indent(seen_list)
                    )
                )
            ):
                if block.kind == "html_block" or block.is_step_list:
                    html = "\n".join(self.lines[block.start : block.end]).casefold()
                    opened = html.rfind("<details") > html.rfind("</details")
                    folded = opened or (folded and "</details" not in html)
                # A command right after an item (a fence at column 0, "1. Run:" then "```")
                # is the item's command, as in prose the paragraph before a command introduces
                # it; text indented under the item, if by fewer columns than its content, was
                # written as a part of it too; so is a <details> block, lists in it included
                # (the folded manual way of doing the item is no step of the runbook's own);
                # so is a call-out (``!!! warning "Data loss"``), which guards the item.
                steps[-1] = self._extended(steps[-1], [block])
                continue
            if not block.is_step_list:
                after_list = False
                lead.append(block)
                continue
            if lead and seen_list is not None and _continues(seen_list, block):
                # The numbering goes on after the interruption: it was written under the
                # previous item, only indented too little to stay inside it; but a decision
                # there ("If the lag still grows, go to step 4") gates the next item.
                at = self.decision_at(lead)
                if at is None or at > 0:
                    steps[-1] = self._extended(steps[-1], lead[:at])
                lead = [] if at is None else lead[at:]
            for index, item in enumerate(self.list_items(block)):
                markdown = self.item_source(item)
                assert item[0].map is not None
                line = item[0].map[0]
                title = self.item_title(item, f"{heading} ({len(steps) + 1})")
                if index == 0 and lead:
                    if root and not seen_list and not any(b.has_code() for b in lead):
                        context.extend(lead)
                    elif steps and self._output_of_item(lead):
                        steps[-1] = self._extended(steps[-1], lead)
                    elif any(b.has_code() for b in lead):
                        steps.append(self.group_step(lead, self._group_title(lead, heading)))
                    else:
                        markdown = self.blocks_source(lead) + _SEPARATOR + markdown
                        line = lead[0].start
                    lead = []
                steps.append(Step(title, markdown, line + 1))
            seen_list = block
            after_list = True
        if lead:
            # What follows the last item at column 0 after a blank line is after the list, as
            # CommonMark reads it: with a command or a list of its own ("Verification" then
            # "- Post-fix checks pass."), it is a step of its own; prose alone (a closing
            # remark) or what the item's command prints stays with the last item.
            if steps and self._output_of_item(lead):
                steps[-1] = self._extended(steps[-1], lead)
            elif not steps or any(b.has_code() or b.kind.endswith("_list") for b in lead):
                steps.append(self.group_step(lead, self._group_title(lead, heading)))
            else:
                last = steps[-1]
                merged = last.markdown + _SEPARATOR + self.blocks_source(lead)
                steps[-1] = Step(last.title, merged, last.line)
        return steps, context

    def _call_out(self, block: _Block) -> bool:
        """A MkDocs admonition (``!!! warning``, a quote once rewritten) or a GitHub call-out
        (``> [!WARNING]``): what to mind about the item before it."""
        text = self.first_text([block]) if block.kind == "blockquote" else ""
        return bool(ADMONITION.match(text) or QUOTE_CALLOUT.match(text))

    def _indent(self, block: _Block | None) -> int:
        """The columns of indentation of a block's first line."""
        return _indentation(self.lines[block.start]) if block is not None else 0

    def _extended(self, step: Step, blocks: Sequence[_Block]) -> Step:
        """``step`` with ``blocks`` appended, dedented so that they do not read as a part of
        a nested list or as an indented code block at the end of the step."""
        lines = self.blocks_source(blocks).split("\n")
        width = min((_indentation(line) for line in lines if line.strip()), default=0)
        text = "\n".join(_dedent(line, width) for line in lines)
        return Step(step.title, step.markdown + _SEPARATOR + text, step.line)

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
            # Of the text between two commands, the last paragraph introduces the next command,
            # and so do the paragraphs ending in ":" right before it ("You can copy the tarball
            # with:", then "(Replacing the pid if required)"); what comes before them explains
            # the output of the previous one.
            # A decision there ("If the count keeps rising, skip to the next step") is read
            # with the next command, which it decides about.
            group = groups[index]
            lead = self._lead_in(group)
            if lead >= 1:
                at = self.decision_at(group[:lead])
                cut = lead if at is None else at
                groups[index - 1].extend(group[:cut])
                groups[index] = group[cut:]
        for index in range(len(groups) - 1, 0, -1):
            # Expected output ("Example output:", a ```text block right after the command) is
            # read with the command it belongs to, not clicked through as a step of its own.
            if self._shows_output(groups[index], groups[index - 1]):
                groups[index - 1].extend(groups.pop(index))
        steps: list[Step] = []
        for number, group in enumerate(groups, start=1):
            code_at = next(i for i, b in enumerate(group) if b.is_code)
            # The paragraph right before a command says what it does ("Cluster scoped:"), or
            # the first of those ending in ":" before it, which it only adds a note to.
            lead_in = group[self._lead_in(group) : code_at]
            title = self._group_title(lead_in, "") or self._group_title(group[:code_at][::-1], "")
            if not title:
                title = f"{heading} ({number})"
            elif _is_label(title) and heading and title.casefold() != heading.casefold():
                # a label such as "Cluster scoped:" says little without its section
                title = f"{heading}: {title}"
            steps.append(self.group_step(group, title))
        return steps

    def _lead_in(self, group: list[_Block]) -> int:
        """Where the text introducing a group's command starts: at the last block before the
        command, or at the paragraphs ending in ":" right before that block."""
        lead = max(next(i for i, b in enumerate(group) if b.is_code) - 1, 0)
        while lead >= 1 and group[lead - 1].kind == "paragraph":
            if not self.block_plain(group[lead - 1]).rstrip().endswith(":"):
                break
            lead -= 1
        return lead

    def _output_of_item(self, blocks: list[_Block]) -> bool:
        """Text after a list item that is only what the item's command prints ("Example
        output:" and its code block)."""
        codes = [i for i, b in enumerate(blocks) if b.has_code()]
        return codes == [len(blocks) - 1] and blocks[-1].is_code and self._shows_output(blocks, [])

    def _shows_output(self, group: list[_Block], previous: list[_Block]) -> bool:
        """A group whose code block is what the command before it prints: introduced by
        "The output should look like this:", "Expected output:", "You should see:", "...,
        which returns:", or tagged ``text``/``console``/``output`` right after that command."""
        code_at = next(i for i, b in enumerate(group) if b.is_code)
        code = group[code_at]
        if code_at:
            before = group[code_at - 1]
            lead = self.block_plain(before)
            if before.kind == "blockquote":  # "> Returns :" above what the command prints
                return bool(_OUTPUT_WORD.match(lead))
            if before.kind != "paragraph" or _opens_with_verb(lead.casefold()):
                return False
            return bool(_OUTPUT_LEAD.search(lead) or _OUTPUT_WORD.match(lead))
        if not previous or not previous[-1].is_code or code.kind != "fence":
            return False
        info = _fence_tag(code)
        if info not in _OUTPUT_FENCES:
            return False
        before = previous[-1]
        if info == "console" and _fence_tag(before) == "console" and not _prompted(before):
            # This author writes commands in ```console blocks without a "$" prompt: the next
            # one is another command when it runs the same program (``kubectl get pods`` then
            # ``kubectl logs ...``); what ``kubectl get pods`` prints starts with "NAME".
            program = _program(before)
            if program and _program(code) == program:
                return False
        return not _prompted(code)


def _fence_tag(block: _Block) -> str:
    """A fence's language tag, case ignored (``console``); empty for none."""
    info = (block.first.info or "").strip().casefold().split(maxsplit=1)
    return info[0] if info and block.kind == "fence" else ""


def _program(block: _Block) -> str:
    """The first word of a code block's first line (``kubectl``); empty for none."""
    words = next((line.split() for line in block.first.content.splitlines() if line.strip()), [])
    return words[0] if words else ""


def _prompted(block: _Block) -> bool:
    """A code block with a ``$ `` prompt line: what follows a prompt is the command's output."""
    return any(line.lstrip().startswith("$ ") for line in block.first.content.splitlines())


_OUTPUT_LEAD = re.compile(
    r"\b(?:expected|example|sample|typical)\s+(?:output|response|result)"
    r"|\b(?:the\s+)?output\s+(?:should|will|would|looks?|is|resembles)\b"
    r"|\byou\s+should\s+see\b"
    r"|\b(?:which|that|it|this)\s+(?:returns|prints|outputs|shows|gives)\b[^.]*:\s*$",
    re.IGNORECASE,
)
"""A sentence introducing what a command prints ("Example output:", "You should see:")."""
_OUTPUT_WORD = re.compile(
    r"^\s*(?:(?:expected|example|sample|typical)\s+)?(?:returns?|output|result|response|"
    r"retourne|renvoie|résultat|sortie(?:\s+attendue)?|resultado|salida|ausgabe|ergebnis|"
    r"输出|返回|结果|出力|結果)\s*[:：]\s*$",
    re.IGNORECASE,
)
"""A lead-in that is only a word for output ("Returns:", "Output:", "Retourne :", "输出："),
also written as a quote ("> Returns :")."""
_OUTPUT_FENCES = frozenset({"text", "txt", "plaintext", "plain", "console", "output", "log"})
"""Fence tags for what a command prints rather than what to run."""
