"""Alert names as the mixins write them head the sections of a multi-alert runbook: etcd-mixin's
lower-case ``etcdNoLeader``, kubernetes-mixin's ``CPUThrottlingHigh``, names starting with an
acronym (``HTTPErrorRateHigh``). A product heading (``PostgreSQL``) is not an alert."""

from __future__ import annotations

import pytest

from bot.runbooks.headings import alert_heading
from bot.runbooks.parser import parse_runbook
from tests.runbooks.test_probe_round2 import ALERTS


@pytest.mark.parametrize(
    ("first", "second"),
    [("etcdNoLeader", "etcdHighNumberOfFailedGRPCRequests"), ("CPUThrottlingHigh", "RDSCPUHigh")],
)
def test_alerts_named_as_the_mixins_name_them_head_their_sections(first: str, second: str) -> None:
    runbook = parse_runbook(ALERTS.format(first=first, second=second), runbook_id="alerts")
    assert [s.title for s in runbook.steps] == [f"{first}: Mitigation", f"{second}: Mitigation"]
    assert [c.title for c in runbook.context] == [f"{first}: Meaning", f"{second}: Meaning"]


@pytest.mark.parametrize(
    "heading", ["PostgreSQL", "MySQL", "HTTP", "API", "etcd", "macOS", "gRPC", "Overview"]
)
def test_a_product_or_an_acronym_is_not_an_alert(heading: str) -> None:
    assert alert_heading(heading) is None


@pytest.mark.parametrize(
    "name", ["KubeAPIDown", "HTTPErrorRateHigh", "X509CertificateExpiring", "MySQLDown"]
)
def test_alert_names_with_acronyms_are_alerts(name: str) -> None:
    assert alert_heading(name) == name
