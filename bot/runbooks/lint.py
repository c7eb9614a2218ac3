"""``firebreak runbooks lint``: what would go wrong with these runbooks in an incident.

Teams run it in their own CI, so every finding is one line ``file:line: error|warning: message``
that says what to change. Errors are what breaks a runbook for responders (it cannot be loaded,
a step says nothing, a link points nowhere, a line Slack cannot show); warnings are what makes it
worse to use (very many steps, a step cut in Slack, a placeholder left in).

This module knows runbooks, not Slack: whether a runbook fits in Slack is checked by the checks
the caller passes (``checks``); the command line passes the Slack layer's
(``bot.slack.runbook_messages.fit.SLACK_CHECKS``).
"""

from __future__ import annotations

import difflib
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from bot.config import Policy
from bot.runbooks.catalog import (
    file_id,
    is_runbook_file,
    is_template,
    iter_files,
    runbook_id,
)
from bot.runbooks.document import markdown_has_text
from bot.runbooks.files import names_a_file, real_path
from bot.runbooks.parser import (
    IMPERATIVE_VERBS,
    KNOWN_KEYS,
    Level,
    Runbook,
    RunbookFileError,
    heading_kind,
    make_markdown,
    parse_runbook,
    read_runbook_text,
)

MANY_STEPS = 50
"""More steps than this is a warning: responders page through it in Slack."""
_MD = make_markdown()
_PLACEHOLDER = re.compile(
    r"^\W*(?:TODO|TBD|TBC|FIXME|XXX)\b"  # the marker as people write it: TODO, TBD later
    r"|^\W*(?i:todo|tbd|tbc|fixme)\s*(?:[:!\-–—>)\]]|$)"  # todo: ..., <todo>, [tbd], "todo"
    r"|^[^:]{1,40}:\s*[<\[(]?(?i:todo|tbd|tbc|fixme)[>\])]?\W*$"  # Owner: TODO, Pager: <TBD>
)
"""A placeholder left in: ``TODO``, ``TODO: write the command``, ``<tbd>``, ``FIXME``, or as
the value of a label (``Owner: TODO``, ``Pager/Phone: <TBD>``). Not the word in a name or a
sentence ("Todo API latency", "todo list service")."""

Add = Callable[[int, Level, str], None]
"""Records a finding for the file being checked: ``add(line, level, message)``."""
RunbookCheck = Callable[[Runbook, str, Policy, Add], None]
"""A check of one parsed runbook and its text that the caller supplies (the Slack layer's)."""


@dataclass(frozen=True, order=True)
class LintMessage:
    path: str
    line: int
    level: Level
    message: str

    def format(self) -> str:
        where = f"{self.path}:{self.line}" if self.line > 0 else self.path  # 0: the whole file
        return f"{where}: {self.level}: {self.message}"


@dataclass
class LintReport:
    messages: list[LintMessage] = field(default_factory=list)
    files: int = 0

    @property
    def errors(self) -> int:
        return sum(1 for m in self.messages if m.level == "error")

    @property
    def warnings(self) -> int:
        return sum(1 for m in self.messages if m.level == "warning")

    def summary(self) -> str:
        def plural(n: int, word: str) -> str:
            return f"{n} {word}{'' if n == 1 else 's'}"

        return (
            f"{plural(self.files, 'runbook')} checked: {plural(self.errors, 'error')}, "
            f"{plural(self.warnings, 'warning')}"
        )


@dataclass
class _Checked:
    runbook: Runbook
    display: str


def _display(path: Path) -> str:
    try:
        return str(real_path(path).relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def lint_paths(
    paths: Sequence[Path], *, policy: Policy | None = None, checks: Sequence[RunbookCheck] = ()
) -> LintReport:
    """Lint runbook directories and files. A directory is read as the bot reads it; a file
    named on the command line is always checked. ``checks`` run on every runbook after the
    built-in ones."""
    policy = policy or Policy()
    report = LintReport()
    checked: list[_Checked] = []
    for path in paths:
        if path.is_dir():
            before = report.files
            for file in iter_files(path):
                if is_runbook_file(file):
                    _lint_file(file, runbook_id(file, path), policy, report, checked, checks)
                elif is_template(file):
                    report.messages.append(LintMessage(_display(file), 0, "warning", _TEMPLATE))
                elif _ignored_markdown(file):
                    report.messages.append(
                        LintMessage(
                            _display(file),
                            1,
                            "warning",
                            "this looks like a runbook but the bot only reads files ending in "
                            ".md: rename it or remove it",
                        )
                    )
            if report.files == before:
                # A CI job pointed at the wrong directory must not pass by checking nothing.
                report.messages.append(
                    LintMessage(
                        _display(path),
                        0,
                        "error",
                        "no runbooks here: the bot reads files ending in .md, but not "
                        "CHANGELOG.md, CONTRIBUTING.md, LICENSE.md, files starting with _ (a "
                        "Hugo _index.md only when it has text), a template (TEMPLATE.md) or a "
                        "README.md whose front matter names no alerts",
                    )
                )
        elif names_a_file(path):
            if not is_runbook_file(path) and path.name.casefold() == "readme.md":
                report.messages.append(
                    LintMessage(
                        _display(path),
                        1,
                        "warning",
                        "the bot reads a README.md as its directory's index, not as a runbook: "
                        "name the alerts it answers in its front matter (alerts: [...]) or "
                        "rename it",
                    )
                )
            elif not is_runbook_file(path) and is_template(path):
                report.messages.append(LintMessage(_display(path), 0, "warning", _TEMPLATE))
            _lint_file(path, file_id(path), policy, report, checked, checks)
        else:
            report.messages.append(LintMessage(str(path), 0, "error", "no such file or directory"))
    _duplicates(checked, report)
    report.messages.sort()
    return report


_TEMPLATE = (
    "skipped: a runbook template, which the bot does not read as a runbook; to make it one, "
    "name the alerts it answers in its front matter (alerts: [...]) or rename it"
)


def _ignored_markdown(path: Path) -> bool:
    """A file without an extension whose text starts like markdown (a heading or front
    matter): probably a runbook saved without .md. LICENSE, OWNERS... are not."""
    if path.suffix or path.name.startswith(("_", ".")) or path.name.isupper():
        return False
    try:
        head = path.read_bytes()[:512]
    except OSError:
        return False
    if b"\0" in head:
        return False
    text = head.decode("utf-8", errors="ignore").lstrip()
    return text.startswith(("#", "---", "+++"))


def _lint_file(
    path: Path,
    rid: str,
    policy: Policy,
    report: LintReport,
    checked: list[_Checked],
    checks: Sequence[RunbookCheck],
) -> None:
    report.files += 1
    display = _display(path)

    def add(line: int, level: Level, message: str) -> None:
        report.messages.append(LintMessage(display, line, level, message))

    try:
        text = read_runbook_text(path)
    except RunbookFileError as exc:
        add(exc.line, "error", str(exc))
        return
    runbook = parse_runbook(text, runbook_id=rid, path=path)
    checked.append(_Checked(runbook, display))
    for problem in runbook.problems:
        add(problem.line, problem.level, problem.message)
    for key in runbook.unknown_keys:
        close = difflib.get_close_matches(key.casefold(), sorted(KNOWN_KEYS), n=1, cutoff=0.75)
        if close:
            add(1, "warning", f"unknown front-matter key {key!r}: did you mean {close[0]!r}?")
    if runbook.empty:
        add(
            1,
            "error",
            "empty runbook: write the steps as a checklist (- [ ] ...) or under a heading such "
            "as '## Mitigation'",
        )
        return
    _check_steps(runbook, add)
    _check_placeholders(text, add)
    _check_quoted_checklists(text, add)
    _check_links(runbook, path, add)
    _check_size(runbook, policy, add)
    _check_severities(runbook, policy, add)
    for check in checks:
        check(runbook, text, policy, add)


def _is_generic(title: str) -> bool:
    """A title that names a section, not an action ("Mitigation", "Steps (3)")."""
    found = re.findall(r"[a-z]+", title.casefold())
    if not found:
        return True
    return len(found) <= 3 and found[0] not in IMPERATIVE_VERBS and heading_kind(title) == "action"


def _check_steps(runbook: Runbook, add: Add) -> None:
    for number, step in enumerate(runbook.steps, start=1):
        if not markdown_has_text(step.markdown) and _is_generic(step.title):
            # "Mitigation (3)": an item of a list under a heading, named after it for want of
            # words; otherwise the step is a heading's.
            what = "item" if re.search(r"\(\d+\)$", step.title) else "heading"
            add(
                step.line,
                "error",
                f"step {number} ({step.title!r}) has no text: write what responders should do, "
                f"or remove the {what}",
            )


_TASK_BOX = re.compile(r"^\[[ xX]\]\s*")


def _check_placeholders(text: str, add: Add) -> None:
    for token in _MD.parse(text):
        if token.map is None:
            continue
        if token.type in ("fence", "code_block"):
            lines = [ln.strip("#/-; \t") for ln in token.content.splitlines() if ln.strip()]
            if lines and all(_PLACEHOLDER.match(ln) for ln in lines):
                add(
                    token.map[0] + 1,
                    "warning",
                    "code block holds only a placeholder (TODO): write the command",
                )
        elif token.type == "inline":  # a paragraph, a list item ("1. TODO"), a cell
            plain = _TASK_BOX.sub("", " ".join(token.content.split()), count=1)
            if _PLACEHOLDER.match(plain) and len(plain) < 60:
                add(token.map[0] + 1, "warning", "placeholder text (TODO): fill it in")


def _check_quoted_checklists(text: str, add: Add) -> None:
    quotes = 0
    for token in _MD.parse(text):
        if token.type == "blockquote_open":
            quotes += 1
        elif token.type == "blockquote_close":
            quotes -= 1
        elif (
            quotes
            and token.type == "bullet_list_open"
            and "contains-task-list" in str(token.attrs.get("class", ""))
            and token.map is not None
        ):
            add(
                token.map[0] + 1,
                "warning",
                "a checklist inside a quote (>) is shown as text, not as steps: take it out "
                "of the quote to give each item Done / Skip buttons",
            )


_ABSOLUTE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def _check_links(runbook: Runbook, path: Path, add: Add) -> None:
    for link in runbook.links:
        target = link.target.strip()
        if not target or target.startswith(("#", "/")) or _ABSOLUTE.match(target):
            continue
        relative = unquote(urlsplit(target).path)
        if not relative:
            continue
        resolved = path.parent / relative
        if resolved.exists() or resolved.with_name(resolved.name + ".md").exists():
            continue
        what = "image" if link.image else "link"
        add(link.line, "error", f"broken {what}: {relative} does not exist")


def _check_size(runbook: Runbook, policy: Policy, add: Add) -> None:
    count = len(runbook.steps)
    if count > MANY_STEPS:
        add(
            1,
            "warning",
            f"{count} steps: responders page through "
            f"{-(-count // policy.runbooks.steps_per_page)} pages in Slack; consider splitting "
            "the runbook",
        )


def _check_severities(runbook: Runbook, policy: Policy, add: Add) -> None:
    known = ", ".join(s.key for s in policy.severities)
    for severity in runbook.severities:
        if policy.find_severity(severity) is None:
            add(
                1,
                "warning",
                f"severity {severity!r} is not in the policy ({known}): the runbook will never "
                "be suggested for it",
            )


def _duplicates(checked: Iterable[_Checked], report: LintReport) -> None:
    ids: dict[str, list[_Checked]] = defaultdict(list)
    titles: dict[str, list[_Checked]] = defaultdict(list)
    for item in checked:
        ids[item.runbook.id.casefold()].append(item)
        titles[" ".join(item.runbook.title.split()).casefold()].append(item)
    for group in ids.values():
        for item in group[1:]:
            report.messages.append(
                LintMessage(
                    item.display,
                    1,
                    "error",
                    f"duplicate runbook id {item.runbook.id!r} (also {group[0].display}): the "
                    "bot loads only the first; rename one",
                )
            )
    alerts: dict[str, list[_Checked]] = defaultdict(list)
    for item in checked:
        for alert in dict.fromkeys(a.casefold() for a in item.runbook.alerts):
            alerts[alert].append(item)
    for claimed in alerts.values():
        if len(claimed) < 2:
            continue
        first, *others = sorted(claimed, key=lambda c: c.runbook.id)
        name = next(a for a in first.runbook.alerts if a.casefold() in alerts)
        for item in others:
            report.messages.append(
                LintMessage(
                    item.display,
                    1,
                    "warning",
                    f"alert {name!r} is also named by {first.display}: the alert chooses that "
                    "runbook (its id sorts first), this one only as a further suggestion; "
                    "name each alert in one runbook",
                )
            )
    for group in titles.values():
        for item in group[1:]:
            report.messages.append(
                LintMessage(
                    item.display,
                    1,
                    "warning",
                    f"duplicate title {item.runbook.title!r} (also {group[0].display}): "
                    "responders cannot tell them apart",
                )
            )
