"""``firebreak alerts list | replay`` and ``firebreak policy check`` on ``[alerts]``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bot.alerts.intake import ingest
from bot.alerts.policy import AlertsPolicy
from bot.config import Policy, load_policy
from bot.db import Database
from tests.alerts.conftest import CORPUS, NOW, message
from tests.conftest import Run


def test_list_shows_one_entry_per_alert(
    run: Run, db: Database, policy: Policy, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    code, out, _ = run("alerts", "list")
    assert (code, out) == (0, "no alerts\n")
    with db.transaction() as session:
        ingest(session, policy, message("grafana/zulip-v9-mixed-firing-resolved"), now=NOW)
        ingest(session, policy, message("alertmanager/zulip-resolved-with-zero-endsat"), now=NOW)
    code, out, err = run("alerts", "list", "--json")
    assert (code, err) == (0, "")
    entries = json.loads(out)
    assert sorted((e["source"], e["key"], e["status"], e["incident"]) for e in entries) == [
        ("alertmanager", "a1bc48475b20e73d", "resolved", None),
        ("grafana", "6f9cd313db421ef1", "firing", "INC-1"),
        ("grafana", "aaafafe0953f0962", "resolved", "INC-1"),
        ("grafana", "fb31814ac93dbe7d", "resolved", "INC-1"),
    ]
    code, out, _ = run("alerts", "list")
    assert code == 0 and len(out.splitlines()) == 4
    assert "grafana      firing   INC-1" in out


def test_replay_shows_what_a_sequence_would_do_without_a_database(run: Run) -> None:
    files = [
        str(CORPUS / "datadog" / f"{name}.json")
        for name in ("keep-p2-warn", "keep-p2-recovered-empty-group-in-title", "keep-p2-triggered")
    ]
    code, out, err = run("alerts", "replay", *files, "--source", "datadog", "--json")
    assert (code, err) == (0, "")
    steps = json.loads(out)
    assert [(s["action"], s["incident"], s["severity"], s["firing"]) for s in steps] == [
        ("declare", "new incident #1", "SEV2", 1),
        ("attach", "new incident #1", "SEV2", 0),
        ("attach", "new incident #1", "SEV2", 1),
    ]
    assert not list(Path.cwd().iterdir())  # no database file was created
    code, out, _ = run(
        "alerts",
        "replay",
        str(CORPUS / "grafana" / "zulip-slack-shaped-test-not-webhook-schema.json"),
        "--source",
        "grafana",
    )
    assert code == 0
    assert out.endswith(
        "store: no incident; severity SEV3; service -; 0 firing; no runbook; "
        "a text-only body (not Grafana's webhook shape): stored, no alerts in it\n"
    )


def test_replay_reports_bad_files_one_line_each(run: Run, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[1]", encoding="utf-8")
    code, out, err = run(
        "alerts", "replay", str(bad), str(tmp_path / "missing.json"), "--source", "generic"
    )
    assert code == 1 and out == ""
    assert err.splitlines() == [
        f"{bad}: the body is a JSON array; send one JSON object per request "
        "(the generic webhook shape)",
        f"{tmp_path / 'missing.json'}: cannot read: No such file or directory",
    ]
    with pytest.raises(SystemExit) as exit_info:
        run("alerts", "replay", str(bad), "--source", "nagios")
    assert exit_info.value.code == 2


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[alerts]\ndeclare = "sometimes"\n', "alerts.declare: Input should be 'auto' or 'triage'"),
        ('[alerts]\ndeclare = "triage"\n', 'alerts: declare = "triage" needs triage_channel'),
        (
            "[alerts]\nflap_window = 30\n",
            "alerts.flap_window: invalid duration 30: a number needs a unit",
        ),
        ('[alerts]\nflap_window = "soon"\n', "alerts.flap_window: invalid duration 'soon'"),
        (
            '[alerts.severity_map]\nP1 = "SEV9"\n',
            "alerts: severity_map.P1: 'SEV9' is not one of the severities (SEV1, SEV2, SEV3, SEV4)",
        ),
        (
            '[alerts]\ntriage_channel = "#ops"\n',
            "alerts.triage_channel: '#ops' is not a Slack channel id",
        ),
        ('[[alerts.drop]]\nsource = "nagios"\n', "alerts.drop.0.source: unknown source 'nagios'"),
        (
            '[[alerts.drop]]\nlabels = { env = "(" }\n',
            "alerts.drop.0.labels: labels.env: invalid regular expression",
        ),
        ('[alerts]\non_all_resolved = "yes"\n', "alerts.on_all_resolved: Input should be"),
        ("[alerts]\nunknown = 1\n", "alerts.unknown: unknown key"),
        ('[alerts]\ninvite = ["@oncall"]\n', "alerts.invite: '@oncall' is not a Slack user id"),
    ],
)
def test_policy_check_names_the_key(run: Run, tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "firebreak.toml"
    path.write_text(toml, encoding="utf-8")
    code, out, err = run("--policy", str(path), "policy", "check")
    assert code == 2 and out == ""
    assert re.match(rf"firebreak: {re.escape(str(path))}:\d+: ", err), err  # file:line:
    assert message in err
    assert len(err.splitlines()) == 1


def test_the_documented_policy_passes(run: Run) -> None:
    root = Path(__file__).resolve().parents[2]
    code, _, err = run("--policy", str(root / "firebreak.toml"), "policy", "check")
    assert code == 0, err
    # firebreak.toml documents the [alerts] defaults exactly.
    assert load_policy(root / "firebreak.toml").alerts.model_dump() == AlertsPolicy().model_dump()


def test_replay_reports_a_pagerduty_ping_as_ignored(run: Run) -> None:
    ping = str(CORPUS / "pagerduty" / "pd-v3-pagey-ping-test-event.json")
    code, out, err = run("alerts", "replay", "--source", "pagerduty", ping)
    assert (code, err) == (0, "")
    assert out == f"{ping}: ignore: pagey.ping is not about an incident: nothing stored\n"
    code, out, _ = run("alerts", "replay", "--source", "pagerduty", "--json", ping)
    assert code == 0 and json.loads(out)[0]["action"] == "ignore"


def test_replay_attaches_a_new_datadog_cycle_and_an_opsgenie_escalate_as_live(run: Run) -> None:
    cycles = [
        str(CORPUS / "datadog" / f"probe-template-cycle-{name}.json")
        for name in ("1-triggered", "1-recovered", "2-retriggered")
    ]
    code, out, _ = run("alerts", "replay", "--source", "datadog", "--json", *cycles)
    assert code == 0
    assert [(s["action"], s["incident"]) for s in json.loads(out)] == [
        ("declare", "new incident #1"),
        ("attach", "new incident #1"),
        ("attach", "new incident #1"),
    ]
    opsgenie = [
        str(CORPUS / "opsgenie" / f"{name}.json")
        for name in (
            "probe-create-alias-and-alertid-of-escalate",
            "zulip-escalate-alert-only-alertid",
        )
    ]
    code, out, _ = run("alerts", "replay", "--source", "opsgenie", "--json", *opsgenie)
    assert [(s["action"], s["incident"]) for s in json.loads(out)] == [
        ("declare", "new incident #1"),
        ("attach", "new incident #1"),
    ]
