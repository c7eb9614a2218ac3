"""Compatibility with real public runbooks: every file parses into steps and every page of every
message built from it is one Slack accepts.

The corpus is copied into ``tests/corpus`` (with its LICENSE) so a clean clone can run this; when
the shared corpus directory sits next to the repository it is tested as well.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.runbooks.catalog import RunbookCatalog, is_runbook_file
from bot.runbooks.parser import load_runbook_file
from bot.slack.limits import message_errors
from bot.slack.runbook_messages import PAGE_TEXT_BUDGET, message_text_size, render_runbook_pages

REPO = Path(__file__).resolve().parents[2]
CORPUS_DIRS = [REPO / "tests" / "corpus", REPO.parent / "shared" / "corpus" / "runbooks"]


def corpus_files() -> list[Path]:
    """Every runbook file of the corpora: the .md files the catalog loads plus files saved
    without the extension; not LICENSE files nor Hugo section files (``_index.md``)."""
    files: list[Path] = []
    for directory in CORPUS_DIRS:
        if not directory.is_dir():
            continue
        for path in sorted(directory.rglob("*")):
            if not path.is_file() or path.name.startswith(("LICENSE", "_", ".")):
                continue
            files.append(path)
    return files


FILES = corpus_files()


def test_the_bundled_corpus_is_complete() -> None:
    bundled = [p for p in FILES if (REPO / "tests" / "corpus") in p.parents]
    assert len(bundled) >= 100
    assert (REPO / "tests" / "corpus" / "prometheus-operator" / "LICENSE").is_file()


def _name(path: Path) -> str:
    for label, directory in zip(("bundled", "shared"), CORPUS_DIRS, strict=True):
        if directory in path.parents:
            return f"{label}:{path.relative_to(directory).as_posix()}"
    return str(path)


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


def test_hugo_section_files_are_not_runbooks() -> None:
    directory = REPO / "tests" / "corpus" / "prometheus-operator"
    catalog = RunbookCatalog.load([directory])

    sections = list(directory.rglob("_index.md"))
    assert sections and not any(is_runbook_file(p) for p in sections)
    assert not any(r.id.endswith("_index") for r in catalog)
    assert catalog.skipped == []
    assert len(catalog) == len([p for p in directory.rglob("*.md") if is_runbook_file(p)])
