"""GOV.UK's developer docs keep each page's source as ``name.html.md``: the runbook's id is
``name``, as the site publishes ``name.html``, so it is started by either name and found from
an alert's ``runbook_url`` pointing at the published page."""

from __future__ import annotations

import json
from pathlib import Path

from bot.alerts.routing import runbooks_named_by
from bot.runbooks.catalog import RunbookCatalog
from bot.runbooks.lint import lint_paths
from bot.slack.runbook_messages.fit import SLACK_CHECKS
from tests.conftest import Run

# Excerpt of alphagov/govuk-developer-docs source/manual/alerts/aws-rds-storage.html.md
# @0a9862f0.
RDS_STORAGE = """\
---
owner_slack: "#re-govuk"
title: AWS RDS Instance Storage Utilization
section: Icinga alerts
---

This alert relates to disk usage of our databases (RDS) in AWS. There are two
ways to check the current usage.

- Access the AWS web console and view the statistics.
- Access the `db-admin` instance via SSH and access the database console.
"""


def _catalog(tmp_path: Path) -> RunbookCatalog:
    page = tmp_path / "runbooks" / "manual" / "alerts" / "aws-rds-storage.html.md"
    page.parent.mkdir(parents=True)
    page.write_text(RDS_STORAGE, encoding="utf-8")
    return RunbookCatalog.load([tmp_path / "runbooks"])


def test_the_id_of_an_html_md_page_is_its_published_name(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path)

    assert [r.id for r in catalog] == ["manual/alerts/aws-rds-storage"]
    for typed in (
        "aws-rds-storage",
        "aws-rds-storage.html",
        "aws-rds-storage.html.md",
        "manual/alerts/aws-rds-storage.html",
    ):
        found = catalog.get(typed)
        assert found is not None, typed
        assert found.title == "AWS RDS Instance Storage Utilization"


def test_an_alert_linking_to_the_published_page_finds_the_runbook(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path)
    url = "https://docs.publishing.service.gov.uk/manual/alerts/aws-rds-storage.html"

    assert [r.id for r in runbooks_named_by(catalog, url)] == ["manual/alerts/aws-rds-storage"]


def test_a_page_and_a_runbook_of_the_same_name_are_duplicates(tmp_path: Path) -> None:
    directory = tmp_path / "runbooks"
    directory.mkdir()
    (directory / "disk.md").write_text("# Disk\n\n- [ ] Check `df -h`\n", encoding="utf-8")
    (directory / "disk.html.md").write_text("# Disk page\n\n- [ ] Free space\n", encoding="utf-8")

    catalog = RunbookCatalog.load([directory])
    report = lint_paths([directory], checks=SLACK_CHECKS)

    assert [r.title for r in catalog] == ["Disk page"]  # the first file in name order
    assert [p.message.split(" (")[0] for p in catalog.skipped] == ["duplicate runbook id 'disk'"]
    assert any(
        m.level == "error" and m.message.startswith("duplicate runbook id 'disk'")
        for m in report.messages
    )


def test_show_gives_the_id_the_bot_uses(run: Run, tmp_path: Path) -> None:
    page = tmp_path / "elsewhere" / "aws-rds-storage.html.md"
    page.parent.mkdir()
    page.write_text(RDS_STORAGE, encoding="utf-8")

    code, out, _ = run("runbooks", "show", str(page), "--json")

    assert code == 0
    assert json.loads(out)["id"] == "aws-rds-storage"
