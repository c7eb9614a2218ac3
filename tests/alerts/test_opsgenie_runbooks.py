"""Prometheus alerts relayed by Opsgenie's integration carry their labels and annotations in
the alert's details: ``alertname`` is the rule and ``runbook_url`` (or ``runbook``) names the
runbook, as ``labels.alertname`` and ``runbook_url`` do for the generic source."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest

from bot.alerts.routing import route
from bot.alerts.sources import parse
from bot.config import Policy
from bot.runbooks.catalog import RunbookCatalog
from tests.alerts.conftest import NOW, load

NAME = "opsgenie/probe-create-prometheus-details-runbook-url"
CORPUS = Path(__file__).resolve().parents[1] / "corpus"


@pytest.fixture
def catalog(tmp_path: Path) -> RunbookCatalog:
    shutil.copytree(CORPUS / "prometheus-operator", tmp_path / "prometheus-operator")
    return RunbookCatalog.load([tmp_path])


def test_the_details_runbook_url_names_the_runbook(catalog: RunbookCatalog) -> None:
    message = parse("opsgenie", load(NAME), now=NOW)
    [alert] = message.alerts
    assert (alert.rule, alert.runbook_url) == (
        "KubePodCrashLooping",
        "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodcrashlooping",
    )
    decided = route(Policy(), catalog, message)
    assert decided.runbook is not None
    assert decided.runbook.id == "prometheus-operator/kubernetes/KubePodCrashLooping"
    assert decided.runbook_reason == "runbook_url of the alert"


def test_without_a_url_the_details_alertname_names_the_runbook(catalog: RunbookCatalog) -> None:
    body = copy.deepcopy(load(NAME))
    del body["alert"]["details"]["runbook_url"]
    decided = route(Policy(), catalog, parse("opsgenie", body, now=NOW))
    assert decided.runbook is not None
    assert decided.runbook.id == "prometheus-operator/kubernetes/KubePodCrashLooping"
    assert decided.runbook_reason.startswith("alert KubePodCrashLooping")


def test_a_runbook_detail_is_read_as_runbook_url() -> None:
    body = copy.deepcopy(load(NAME))
    details = body["alert"]["details"]
    details["runbook"] = details.pop("runbook_url")
    [alert] = parse("opsgenie", body, now=NOW).alerts
    assert alert.runbook_url == (
        "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodcrashlooping"
    )
