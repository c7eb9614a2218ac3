"""What parsing a runbook gives: the runbook, its steps, context sections, links and problems,
and the Markdown dialect every runbook is read with."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bot.runbooks.dialect import make_markdown

MAX_FILE_BYTES = 1_048_576
"""Files over 1 MB are not runbooks anyone can read at 3 a.m.; they are skipped (lint reports)."""
TITLE_MAX = 300
"""The longest runbook title kept (the ``runbook_runs.title`` column)."""
STEP_TITLE_MAX = 120
DESCRIPTION_MAX = 300

Level = Literal["error", "warning"]


_MD = make_markdown()


def alert_key(name: str) -> str:
    """An alert name or a heading anchor as compared: letters and digits only, case ignored,
    so ``MimirIngesterUnhealthy``, ``#mimiringesterunhealthy`` and
    ``#alert-name-mimiringesterunhealthy`` are the same alert."""
    return re.sub(
        r"[\W_]", "", name.casefold().strip().removeprefix("#").removeprefix("alert-name-")
    )


ALERT_SEPARATOR = " / "
"""Between the names of the alerts one section is about (``KubePodCrashLooping /
KubePodNotReady``), in :attr:`Step.alert`."""


def alert_names(alert: str) -> list[str]:
    """The names in a section's alert (:attr:`Step.alert`): one, or those a heading names."""
    return [name for name in alert.split(ALERT_SEPARATOR) if name]


@dataclass(frozen=True)
class DeclaredAlert:
    """An alert the body of a runbook says it covers (``**Alert:** `HighErrorRate```, a table
    column headed *Alert*: ``bot.runbooks.declared``), at its 1-based line."""

    name: str
    line: int
    how: Literal["line", "table"]

    def where(self) -> str:
        """Where it is, as a match on it is explained: ``its "Alert:" line 5``."""
        if self.how == "table":
            return f"its alert table, line {self.line}"
        return f'its "Alert:" line {self.line}'


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
    section: str = ""
    """The heading the step stands under (*Diagnosis* for the items of a numbered list under
    it, *Cancelling the query* for the commands under it): shown above the section's first
    step unless that step is titled with it, so a responder knows which part of the runbook
    they are in; under a chapter, the chapter's name first (``Removing an unhealthy replica ›
    Stop patroni service on the node``). Empty when one section holds every step."""
    alert: str = ""
    """The alert whose section (``## Alert: PaymentsHighErrorRate``) the step is in, in a file
    with a section per alert (the alerts, for a heading naming several); empty elsewhere. Not
    part of the snapshot."""

    def as_dict(self) -> dict[str, Any]:
        found = {"title": self.title, "markdown": self.markdown, "line": self.line}
        return {**found, "section": self.section} if self.section else found


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
    """The alerts its front matter names."""
    declared_alerts: tuple[DeclaredAlert, ...] = ()
    """The alerts its body says it covers (an ``Alert:`` line, an alert table)."""
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

    def first_step_for(self, alerts: Iterable[str]) -> int | None:
        """The index of the first step under the section of the first of ``alerts`` (alert
        names, or ``runbook_url`` anchors such as ``mimiringesterunhealthy`` or
        ``alert-name-kubepodcrashlooping``) that has one; ``None`` when none has."""
        found = self.section_for(alerts)
        return found[0] if found is not None else None

    def section_for(self, alerts: Iterable[str]) -> tuple[int, str] | None:
        """:meth:`first_step_for` and the alert that section is about, as the runbook spells
        it (``MimirRequestErrors`` for the anchor ``#mimirrequesterrors``)."""
        for name in alerts:
            wanted = alert_key(name)
            if not wanted:
                continue
            for i, step in enumerate(self.steps):
                spelled = next((a for a in alert_names(step.alert) if alert_key(a) == wanted), None)
                if spelled is not None:
                    return i, spelled
        return None

    def snapshot(self) -> dict[str, Any]:
        """The shape stored in ``RunbookRun.snapshot`` (other modules read exactly these keys)."""
        return {
            "title": self.title,
            "description": self.description,
            "context": [c.as_dict() for c in self.context],
            "steps": [s.as_dict() for s in self.steps],
        }
