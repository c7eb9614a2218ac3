"""Compatibility with real public runbooks: every file parses into steps and every page of every
message built from it is one Slack accepts.

The corpus is copied into ``tests/corpus`` (with its LICENSE): only that copy is tested, so the
results do not depend on what sits beside the checkout.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.runbooks.catalog import RunbookCatalog, is_runbook_file
from bot.runbooks.parser import load_runbook_file
from bot.slack.limits import message_errors
from bot.slack.runbook_messages import PAGE_TEXT_BUDGET, message_text_size, render_runbook_pages

REPO = Path(__file__).resolve().parents[2]
CORPUS_DIR = REPO / "tests" / "corpus"


def corpus_files() -> list[Path]:
    """Every runbook file of the corpus: the .md files the catalog loads plus files saved
    without the extension; not LICENSE files nor Hugo section files (``_index.md``)."""
    return [
        path
        for path in sorted(CORPUS_DIR.rglob("*"))
        if path.is_file() and not path.name.startswith(("LICENSE", "_", "."))
    ]


FILES = corpus_files()


def test_the_bundled_corpus_is_complete() -> None:
    bundled = [p for p in FILES if CORPUS_DIR in p.parents]
    assert len(bundled) >= 100
    assert (REPO / "tests" / "corpus" / "prometheus-operator" / "LICENSE").is_file()


def _name(path: Path) -> str:
    return f"bundled:{path.relative_to(CORPUS_DIR).as_posix()}"


@pytest.mark.parametrize("path", FILES, ids=_name)
def test_every_corpus_runbook_parses_into_steps_and_renders_within_slack_limits(
    path: Path,
) -> None:
    runbook = load_runbook_file(path, path.stem)

    assert runbook.steps, "a real runbook must be walkable"
    assert all(step.line >= 1 for step in runbook.steps)
    for steps_per_page in (1, 10, 20):
        for page in render_runbook_pages(runbook, steps_per_page=steps_per_page):
            assert message_errors(page.text, page.blocks) == []
            assert message_text_size(page.blocks) <= PAGE_TEXT_BUDGET


def test_hugo_section_files_with_only_front_matter_are_not_runbooks() -> None:
    directory = REPO / "tests" / "corpus" / "prometheus-operator"
    catalog = RunbookCatalog.load([directory])

    sections = list(directory.rglob("_index.md"))
    assert sections and not any(is_runbook_file(p) for p in sections)
    assert not any(r.id.endswith("_index") for r in catalog)
    assert catalog.skipped == []
    assert len(catalog) == len([p for p in directory.rglob("*.md") if is_runbook_file(p)])
