"""The message of a runbook run: context, steps with Done / Skip / Assign buttons, pages, all
within Slack's limits and a per-page text budget."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from bot.runbooks.parser import Runbook, markdown_plain_text
from bot.runbooks.progress import DONE, FINISHED_STATES, IN_PROGRESS, SKIPPED, RunView, StepView
from bot.slack.blocks.elements import mention
from bot.slack.limits import (
    BLOCKS_TEXT_BUDGET,
    BUTTON_TEXT,
    HEADER_TEXT,
    MESSAGE_BLOCKS,
    blocks_text_length,
    text_length,
    truncate,
)
from bot.slack.runbook_messages.actions import action_id, step_block_id
from bot.slack.runbook_messages.mrkdwn import Unit, _escape, markdown_units, title_mrkdwn
from bot.slack.runbook_messages.sections import pack_sections

PAGE_TEXT_BUDGET = BLOCKS_TEXT_BUDGET
# The least share of a page's budget a step (or the context) is cut to.
MIN_SHARE = 300
"""Characters of text across all blocks of one page (Slack's practical message size)."""
FALLBACK_TEXT_MAX = 3_000
STEP_SECTIONS_MAX = 3
"""A step shows in at most this many sections; longer steps are cut with a note."""
CONTEXT_SECTIONS_MAX = 3
"""The context (Meaning, Impact...) shows in at most this many sections on the first page."""
CONTEXT_CUT_NOTE = "_… more context in the runbook file._"
_SAYS_RUNBOOK = re.compile(r"^\s*(?:run\s?book|playbook)\b", re.IGNORECASE)
"""A title that says what it is already ("Runbook: Network troubleshooting")."""


@dataclass(frozen=True)
class SlackMessage:
    text: str
    blocks: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.blocks}


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def _plain_text(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": truncate(text, limit, plain=True) or " ", "emoji": True}


def _button(label: str, action: str, value: str, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": _plain_text(label, BUTTON_TEXT),
        "action_id": action,
        "value": value,
    }
    if style:
        button["style"] = style
    return button


def _when(value: datetime | None) -> str:
    """A time every reader sees in their own timezone (``<!date^...>``)."""
    if value is None:
        return ""
    epoch = int(value.timestamp())
    fallback = value.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{epoch}^{{date_short_pretty}} {{time}}|{fallback}>"


def page_count(step_count: int, steps_per_page: int) -> int:
    return max(1, math.ceil(step_count / max(1, steps_per_page)))


def _snapshot_steps(snapshot: Mapping[str, Any]) -> list[dict[str, Any]]:
    steps = snapshot.get("steps")
    if not isinstance(steps, list):
        return []
    return [s if isinstance(s, dict) else {} for s in steps]


def _title_leads_body(title: str, markdown: str) -> bool:
    """True when the step title was taken from the start of its text (list items, commented
    commands), so the renderer shows the text once instead of title + text."""
    stem = title.rstrip("…").strip()
    if not stem:
        return False
    return " ".join(markdown_plain_text(markdown).split()).startswith(stem)


def _context_units(snapshot: Mapping[str, Any], *, full: bool) -> list[Unit]:
    """What the runbook says before its steps: the description, then (with ``full``, on the
    first page) every context section in full, rendered like steps so paragraphs, lists, links,
    code and the text of HTML blocks survive. The description is not repeated when it is the
    start of a section (it usually is the first paragraph of Meaning)."""
    description = " ".join(str(snapshot.get("description") or "").split())
    sections: list[tuple[str, list[Unit]]] = []
    plain: list[str] = []
    context = snapshot.get("context") if full else None
    for section in context if isinstance(context, list) else []:
        if not isinstance(section, dict):
            continue
        markdown = str(section.get("markdown", ""))
        body = markdown_units(markdown)
        if body:
            sections.append((" ".join(str(section.get("title", "")).split()), body))
            plain.append(" ".join(markdown_plain_text(markdown).split()))
    units: list[Unit] = []
    stem = description.rstrip("…").strip()
    repeated = bool(stem) and any(text.startswith(stem) for text in plain)
    if description and not repeated:
        units.append(Unit(False, f"_{title_mrkdwn(description)}_"))
    for title, body in sections:
        head = f"*{title_mrkdwn(title)}*" if title else ""
        if head and not body[0].code:
            body = [Unit(False, f"{head}\n{body[0].text}"), *body[1:]]
        elif head:
            body = [Unit(False, head), *body]
        units.extend(body)
    return units


def _step_head(number: int, step: Mapping[str, Any], view: StepView, is_next: bool) -> str:
    title = " ".join(str(step.get("title", "")).split()) or f"Step {number}"
    safe = title_mrkdwn(title)
    if view.state == DONE:
        who = f" by {mention(view.updated_by)}" if view.updated_by else ""
        return f":white_check_mark: ~{number}. {safe}~ _done{who} {_when(view.updated_at)}_"
    if view.state == SKIPPED:
        who = f" by {mention(view.updated_by)}" if view.updated_by else ""
        return f":fast_forward: ~{number}. {safe}~ _skipped{who} {_when(view.updated_at)}_"
    marker = ":arrow_forward:" if is_next else ":white_circle:"
    if view.state == IN_PROGRESS:
        marker = ":hourglass_flowing_sand:"
    return f"{marker} *{number}. {safe}*"


def _step_units(number: int, step: Mapping[str, Any], view: StepView, is_next: bool) -> list[Unit]:
    title = " ".join(str(step.get("title", "")).split())
    markdown = str(step.get("markdown", ""))
    body = markdown_units(markdown)
    head = _step_head(number, step, view, is_next)
    if body and not body[0].code and title and _title_leads_body(title, markdown):
        marker = (
            ":hourglass_flowing_sand:"
            if view.state == IN_PROGRESS
            else (":arrow_forward:" if is_next else ":white_circle:")
        )
        units = [Unit(False, f"{marker} *{number}.* {body[0].text}"), *body[1:]]
    else:
        units = [Unit(False, head), *body]
    if not any(unit.text.strip() for unit in body):
        # also a step whose only content is an HTML comment (a note to the authors, hidden)
        units.append(Unit(False, "_No instructions were written for this step._"))
    if view.state == IN_PROGRESS and view.assignee_id:
        since = f" since {_when(view.started_at)}" if view.started_at else ""
        units.insert(1, Unit(False, f"_Assigned to {mention(view.assignee_id)}{since}_"))
    return units


def _section_starting(steps: Sequence[Mapping[str, Any]], index: int, page_start: int) -> str:
    """The runbook section (*Diagnosis*) named above step ``index``: where it starts, and
    above a page's first step, so each page says where in the runbook it is."""
    section = " ".join(str(steps[index].get("section") or "").split())
    title = " ".join(str(steps[index].get("title") or "").split())
    if not section or section == title:
        return ""
    if index == page_start:
        return section
    before = " ".join(str(steps[index - 1].get("section") or "").split())
    return section if section != before else ""


def _cut_note(step: Mapping[str, Any]) -> str:
    line = step.get("line")
    where = f" (line {line})" if isinstance(line, int) and line > 0 else ""
    return f"_… this step is too long for Slack: read the rest in the runbook file{where}._"


def _step_actions(run_id: int, index: int, view: StepView, is_next: bool) -> dict[str, Any]:
    value = str(index)
    elements: list[dict[str, Any]] = [
        _button("Done", action_id("done", run_id, index), value, "primary" if is_next else None),
        _button("Skip", action_id("skip", run_id, index), value),
    ]
    select: dict[str, Any] = {
        "type": "users_select",
        "action_id": action_id("assign", run_id, index),
        "placeholder": _plain_text("Assign…", 150),
    }
    if view.assignee_id:
        select["initial_user"] = view.assignee_id
    elements.append(select)
    if view.state == IN_PROGRESS:
        seen = f"{index}:{view.version}"
        elements.append(_button("Unassign", action_id("unassign", run_id, index), seen))
    return {
        "type": "actions",
        "block_id": step_block_id(index, view.version),
        "elements": elements,
    }


def message_text_size(blocks: Iterable[Mapping[str, Any]]) -> int:
    """Text the blocks carry, counted the one way Slack's message limit counts it."""
    return blocks_text_length(list(blocks))


def _allocate(needs: Sequence[int], available: int, first: int | None = None) -> list[int]:
    """Share ``available`` characters between steps: ``first`` (the step to do next) gets all
    it needs, leaving the others their floor of :data:`MIN_SHARE` each; then small steps get
    all they need, the long ones share the rest equally."""
    alloc = [0] * len(needs)
    left = available
    order = sorted(range(len(needs)), key=lambda i: needs[i])
    if first is not None:
        alloc[first] = min(needs[first], max(MIN_SHARE, left - MIN_SHARE * (len(needs) - 1)))
        left -= alloc[first]
        order.remove(first)
    for position, i in enumerate(order):
        fair = left // (len(order) - position)
        alloc[i] = min(needs[i], fair)
        left -= alloc[i]
    return alloc


class _Packer:
    """Packs each claimant's units (a step's, by its index, or the context's, by ``None``) into
    sections for one rendering, remembering the uncut packing it measures them by: the same
    packing gives a step's need of the page's budget and, when it fits, its sections."""

    def __init__(self) -> None:
        self._whole: dict[tuple[int | None, int], list[str]] = {}

    def whole(
        self, owner: int | None, units: Sequence[Unit], max_sections: int, note: str
    ) -> list[str]:
        """``units`` in at most ``max_sections`` sections, with no budget: their size, the
        fences closed and reopened where a code block is split included, is what they need."""
        key = (owner, max_sections)
        if key not in self._whole:
            self._whole[key], _ = pack_sections(units, max_sections=max_sections, note=note)
        return self._whole[key]

    def need(self, owner: int | None, units: Sequence[Unit], max_sections: int, note: str) -> int:
        return sum(map(text_length, self.whole(owner, units, max_sections, note)))

    def pack(
        self, owner: int | None, units: Sequence[Unit], budget: int, max_sections: int, note: str
    ) -> list[str]:
        """``units`` in sections, cut with ``note`` only when they need more than ``budget``
        characters or ``max_sections`` sections. One rule for what is cut: the page budget,
        lint's "too long for Slack" warning and the rendering all follow it."""
        texts = self.whole(owner, units, max_sections, note)
        if sum(map(text_length, texts)) <= budget:
            return texts
        texts, _ = pack_sections(units, total_limit=budget, max_sections=max_sections, note=note)
        return texts


def render_run_message(
    run: RunView, *, steps_per_page: int, page: int | None = None, closed: bool = False
) -> SlackMessage:
    """The run's message: title and progress, the context (in full on the first page unless
    the page cannot hold it with the steps; the description alone on the others), the steps of
    one page with Done / Skip / Assign, and Previous / Next when there are several pages."""
    steps = _snapshot_steps(run.snapshot)
    count = len(steps)
    pages = page_count(count, steps_per_page)
    page = min(max(run.page if page is None else page, 0), pages - 1)
    views = {v.index: v for v in run.steps}
    progress = run.progress
    next_index = run.next_step

    title = str(run.snapshot.get("title") or run.title or "Runbook")
    status = f"*{progress}*"
    if run.status == "completed" or progress.finished:
        status += " · :white_check_mark: completed"
    if closed:  # nothing can change now: no step buttons, which would all be refused
        status += " · the incident is closed (reopen it to go on)"
    if pages > 1:
        status += f" · page {page + 1} of {pages}"
    # "# Runbook: Network troubleshooting", as many are titled, is not said twice.
    named = title if _SAYS_RUNBOOK.match(title) else f"Runbook: {title}"
    head: list[dict[str, Any]] = [
        {"type": "header", "text": _plain_text(named, HEADER_TEXT)},
        {"type": "context", "elements": [_mrkdwn(status)]},
    ]
    context_units = _context_units(run.snapshot, full=page == 0)

    first = page * steps_per_page
    indexes = list(range(first, min(first + steps_per_page, count)))
    nav: list[dict[str, Any]] = []
    if page > 0:
        nav.append(_button("◀ Previous", action_id("page", run.id, page - 1), str(page - 1)))
    if page < pages - 1:
        nav.append(_button("Next ▶", action_id("page", run.id, page + 1), str(page + 1)))
    tail = [{"type": "actions", "elements": nav}] if nav else []
    divider: list[dict[str, Any]] = [{"type": "divider"}]
    if not indexes:
        divider.append({"type": "section", "text": _mrkdwn("_This runbook has no steps._")})

    # Characters and blocks left for the context and the steps of this page: the context is
    # one more claimant, so it is shown in full unless the page cannot hold it with the steps.
    claimants = len(indexes) + (1 if context_units else 0)
    fixed_text = message_text_size(head) + message_text_size(divider) + message_text_size(tail)
    available = PAGE_TEXT_BUDGET - fixed_text - 40 * claimants
    block_room = MESSAGE_BLOCKS - len(head) - len(divider) - len(tail)

    units_of: dict[int, list[Unit]] = {}
    finished: dict[int, bool] = {}
    for i in indexes:
        view = views.get(i, StepView(index=i))
        finished[i] = view.state in FINISHED_STATES
        if finished[i]:
            units_of[i] = [Unit(False, _step_head(i + 1, steps[i], view, False))]
        else:
            units_of[i] = _step_units(i + 1, steps[i], view, i == next_index)
        section = _section_starting(steps, i, first)
        if section:
            units_of[i][0] = Unit(False, f"*{title_mrkdwn(section)}*\n{units_of[i][0].text}")
    packer = _Packer()
    needs = [
        packer.need(i, units_of[i], 1 if finished[i] else STEP_SECTIONS_MAX, _cut_note(steps[i]))
        for i in indexes
    ]
    if context_units:
        needs.append(packer.need(None, context_units, CONTEXT_SECTIONS_MAX, CONTEXT_CUT_NOTE))
    budgets = _allocate(
        needs,
        max(available, MIN_SHARE * max(1, claimants)),
        indexes.index(next_index) if next_index in indexes else None,
    )
    max_sections = dict.fromkeys(indexes, STEP_SECTIONS_MAX)
    context_sections = CONTEXT_SECTIONS_MAX

    def build_context() -> list[dict[str, Any]]:
        if not context_units:
            return []
        texts = packer.pack(
            None, context_units, max(budgets[-1], MIN_SHARE), context_sections, CONTEXT_CUT_NOTE
        )
        return [{"type": "section", "text": _mrkdwn(t or " ")} for t in texts]

    def build() -> list[list[dict[str, Any]]]:
        out = []
        for i, budget in zip(indexes, budgets, strict=False):
            view = views.get(i, StepView(index=i))
            texts = packer.pack(
                i,
                units_of[i],
                max(budget, MIN_SHARE),
                1 if finished[i] else max_sections[i],
                _cut_note(steps[i]),
            )
            blocks: list[dict[str, Any]] = [
                {"type": "section", "text": _mrkdwn(t or " ")} for t in texts
            ]
            if finished[i] and not closed:
                blocks[0]["accessory"] = _button(
                    "Reopen", action_id("reopen", run.id, i), f"{i}:{view.version}"
                )
            elif not closed:
                blocks.append(_step_actions(run.id, i, view, i == next_index))
            out.append(blocks)
        return out

    about = build_context()
    step_blocks = build()
    while len(about) + sum(len(b) for b in step_blocks) > block_room:
        # Over Slack's 50 blocks: the widest step (or the context) gives up a section.
        widest = max(indexes, key=lambda i: (max_sections[i], i), default=None)
        if context_sections > 1 and (widest is None or context_sections >= max_sections[widest]):
            context_sections -= 1
            about = build_context()
            continue
        if widest is None or max_sections[widest] <= 1:
            break
        max_sections[widest] -= 1
        step_blocks = build()

    head += about + divider
    blocks = head + [b for group in step_blocks for b in group] + tail
    text = f"{title if _SAYS_RUNBOOK.match(title) else f'Runbook {title}'}: {progress}"
    if next_index is not None and next_index < count:
        step_title = " ".join(str(steps[next_index].get("title", "")).split())
        text += f". Next: step {next_index + 1}: {step_title}"
    return SlackMessage(truncate(_escape(text), FALLBACK_TEXT_MAX), blocks)


def preview_run_view(runbook: Runbook, *, run_id: int = 0) -> RunView:
    """A run of ``runbook`` that has not started: every step pending (for previews)."""
    return RunView(
        id=run_id,
        incident_id=0,
        runbook_id=runbook.id,
        title=runbook.title,
        snapshot=runbook.snapshot(),
        status="active",
        page=0,
        steps=tuple(StepView(index=i) for i in range(len(runbook.steps))),
    )


def render_runbook_pages(runbook: Runbook, *, steps_per_page: int) -> list[SlackMessage]:
    """Every page of the message the bot would post for ``runbook`` (nothing done yet)."""
    view = preview_run_view(runbook)
    pages = page_count(len(runbook.steps), steps_per_page)
    return [render_run_message(view, steps_per_page=steps_per_page, page=p) for p in range(pages)]


def steps_cut_when_next(runbook: Runbook, *, steps_per_page: int) -> list[int]:
    """Indexes of the steps Slack cannot show whole even when each is the step to do next (the
    steps before it done): the step to do gets the page's budget first, so only a step that
    alone outgrows a page is cut then. A step shown whole in the preview is whole as the next
    step too, so only the preview's cut steps are rendered again."""
    preview = preview_run_view(runbook)
    steps = _snapshot_steps(preview.snapshot)
    cut = []
    for p, page in enumerate(render_runbook_pages(runbook, steps_per_page=steps_per_page)):
        shown = _page_texts(page.blocks)
        for i in range(p * steps_per_page, min((p + 1) * steps_per_page, len(steps))):
            if _cut_note(steps[i]) not in shown:
                continue
            states = tuple(
                StepView(index=j, state=DONE) if j < i else StepView(index=j)
                for j in range(len(steps))
            )
            message = render_run_message(
                replace(preview, steps=states, page=p), steps_per_page=steps_per_page
            )
            if _cut_note(steps[i]) in _page_texts(message.blocks):
                cut.append(i)
    return cut


def _page_texts(blocks: Sequence[Mapping[str, Any]]) -> str:
    return "\n".join(
        str(b["text"].get("text", "")) for b in blocks if isinstance(b.get("text"), dict)
    )
