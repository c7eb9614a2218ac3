"""``firebreak alerts replay`` says when an alert's runbook was found only by a generic file
name (``runbook.md``, ``index.md``: every repository has one) that names none of the firing
alerts, so whoever tunes the catalog knows to name the alert in the runbook."""

from __future__ import annotations

from pathlib import Path

from bot.alerts.replay import Rehearsal, Step
from bot.config import Policy
from bot.runbooks.catalog import RunbookCatalog
from tests.alerts.conftest import NOW
from tests.alerts.test_generic_runbook_names import PAYMENTS, alertmanager

URL = "https://git.example.com/sre/runbooks/-/blob/main/payments/runbook.md"


def replay(tmp_path: Path, text: str, url: str = URL, name: str = "PaymentsFailoverNeeded") -> Step:
    (tmp_path / "payments").mkdir()
    (tmp_path / "payments" / "runbook.md").write_text(text, encoding="utf-8")
    catalog = RunbookCatalog.load([tmp_path])
    message = alertmanager(name, url, "Payments are failing in eu-west-1.")
    return Rehearsal(Policy(), catalog).play(message, NOW)


def test_a_match_on_a_generic_file_name_alone_is_called_weak(tmp_path: Path) -> None:
    step = replay(tmp_path, PAYMENTS)
    assert step.runbook == "payments/runbook"
    assert step.runbook_reason == (
        "runbook_url of the alert; weak: only by the generic file name runbook.md, and the "
        "runbook does not name PaymentsFailoverNeeded (add it to its alerts: front matter)"
    )
    assert step.as_dict()["runbook_reason"] == step.runbook_reason


def test_a_generic_file_that_names_the_alert_is_not_weak(tmp_path: Path) -> None:
    named = PAYMENTS.replace(
        "# Payments service runbook\n",
        "# Payments service runbook\n\n**Alert:** `PaymentsFailoverNeeded`\n**Severity:** page\n",
    )
    step = replay(tmp_path, named)
    assert (step.runbook, step.runbook_reason) == ("payments/runbook", "runbook_url of the alert")
