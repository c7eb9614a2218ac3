"""``POST /alerts/<source>`` over real HTTP: authentication, bad input, storing."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from bot.alerts.auth import AlertSettings, authenticate, presented_token
from bot.alerts.models import AlertGroup, AlertRecord
from bot.alerts.receiver import alert_routes
from bot.db import Database
from bot.models import Incident, TimelineEvent
from tests.alerts.conftest import CORPUS, REFUSED, TOKEN, ServerFactory, corpus_files

GRAFANA_TESTS = {
    "cerebro-legacy-pre8-test-notification-basic-auth.json",
    "zulip-legacy-test-notification-ruleid-0.json",
    "zulip-v8-test-no-groupkey-go-time-startsat.json",
    "keep-v12-test-alert-relative-generatorurl.json",
    "zulip-v8-test-notification-resolved-but-state-alerting.json",
}
PD_SIGNED = CORPUS / "pagerduty" / "go-pagerduty-signed-raw-body-conference-number-int.json"
PD_SIGNATURE = "v1=0c0b9495b893a39e70d1fea2fe11fbe0a825f88b9f67846f6cc07dd2bc5476cd"
PD_SECRET = "lDQHScfUeXUKaQRNF+8XIiDKZ7XX3itBAYzwU0TARw8lJqRnkKl2iB1anSb0Z+IK"
"""The value of the ``secret`` constant in go-pagerduty's test that signed the corpus body."""


def counts(db: Database) -> tuple[int, int, int]:
    with db.read() as session:
        return (
            len(session.exec(select(AlertGroup)).all()),
            len(session.exec(select(AlertRecord)).all()),
            len(session.exec(select(Incident)).all()),
        )


def test_every_corpus_file_is_accepted(db: Database, serve: ServerFactory) -> None:
    server = serve(settings=AlertSettings(token=TOKEN, pagerduty_signing_secret=PD_SECRET))
    for path in corpus_files():
        headers = {"X-PagerDuty-Signature": PD_SIGNATURE} if path == PD_SIGNED else {}
        if path.parent.name == "pagerduty" and path != PD_SIGNED:
            continue  # only the signed one carries a valid signature; the rest below
        answer = server.post(f"/alerts/{path.parent.name}", path.read_bytes(), headers=headers)
        if path.name in REFUSED:
            assert answer.status == 400 and REFUSED[path.name] in answer.json()["error"]
            continue
        assert answer.status == 200, (path.name, answer.body)
        # Grafana's Test buttons: answered, stored nowhere, open nothing.
        test = path.name in GRAFANA_TESTS
        assert answer.json()["status"] == ("ignored" if test else "stored"), path.name
    unsigned = serve(settings=AlertSettings(token=TOKEN))
    for path in sorted((CORPUS / "pagerduty").glob("*.json")):
        assert unsigned.post("/alerts/pagerduty", path.read_bytes()).status == 200
    with db.read() as session:
        groups = session.exec(select(AlertGroup)).all()
        # 70 files: later messages of the same groups, 2 pings, 5 Grafana tests, 1 refused
        assert len(groups) == 41
        assert len(session.exec(select(AlertRecord)).all()) == 51


def test_unknown_source_is_404(serve: ServerFactory) -> None:
    answer = serve().post("/alerts/nagios", {"title": "x"})
    assert answer.status == 404
    assert (
        "use one of: alertmanager, grafana, datadog, pagerduty, opsgenie, generic"
        in (answer.json()["error"])
    )


def test_a_body_over_5_mb_is_413_and_nothing_stored(db: Database, serve: ServerFactory) -> None:
    big = json.dumps({"title": "x", "dedupe_key": "k", "description": "a" * (5 * 1024 * 1024)})
    answer = serve().post("/alerts/generic", big)
    assert answer.status == 413
    assert counts(db) == (0, 0, 0)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("not json", "the body is not JSON"),
        ("", "the body is empty"),
        ("[1, 2]", "the body is a JSON array"),
        ('"text"', "must be a JSON object"),
        (b"\xff\xfe", "not UTF-8"),
        ('{"title": 5, "dedupe_key": "k"}', "title must be a string"),
        ('{"title": "t"}', "dedupe_key are required"),
        ("[" * 100_000, "nested too deeply"),
    ],
)
def test_bad_bodies_are_400_with_a_clear_message(
    db: Database, serve: ServerFactory, body: str | bytes, expected: str
) -> None:
    answer = serve().post("/alerts/generic", body)
    assert answer.status == 400
    assert expected in answer.json()["error"]
    assert counts(db) == (0, 0, 0)


def test_alertmanager_without_alerts_list_is_400(serve: ServerFactory) -> None:
    answer = serve().post("/alerts/alertmanager", {"receiver": "x", "status": "firing"})
    assert answer.status == 400
    assert answer.json()["error"].startswith("no 'alerts' list")


# -- authentication ---------------------------------------------------------------------


def test_no_token_or_a_wrong_one_is_401_and_nothing_stored(
    db: Database, serve: ServerFactory
) -> None:
    server = serve()
    body = {"title": "x", "dedupe_key": "k"}
    for token in (None, "wrong", TOKEN + "x", ""):
        answer = server.post("/alerts/generic", body, token=token)
        assert answer.status == 401
        assert TOKEN not in answer.body.decode()
    answer = server.post(
        "/alerts/generic", body, token=None, headers={"Authorization": "Token " + TOKEN}
    )
    assert answer.status == 401
    assert counts(db) == (0, 0, 0)
    assert server.post("/alerts/generic", body).status == 200
    assert counts(db) == (1, 1, 1)


def test_basic_auth_with_the_token_as_password(serve: ServerFactory) -> None:
    server = serve()
    basic = base64.b64encode(f"alertmanager:{TOKEN}".encode()).decode()
    answer = server.post(
        "/alerts/alertmanager",
        (CORPUS / "alertmanager" / "zulip-no-generatorurl.json").read_bytes(),
        token=None,
        headers={"Authorization": f"Basic {basic}"},
    )
    assert answer.status == 200
    wrong = base64.b64encode(b"alertmanager:nope").decode()
    refused = server.post(
        "/alerts/alertmanager", "{}", token=None, headers={"Authorization": f"Basic {wrong}"}
    )
    assert refused.status == 401


def test_a_per_source_token_works_for_that_source_only(serve: ServerFactory) -> None:
    server = serve(settings=AlertSettings(token=None, token_grafana="grafana-only"))
    body = (CORPUS / "grafana" / "zulip-v11-values-imageurl-play-grafana.json").read_bytes()
    assert server.post("/alerts/grafana", body, token="grafana-only").status == 200
    assert server.post("/alerts/datadog", {"title": "t"}, token="grafana-only").status == 401


def test_nothing_is_accepted_when_no_token_is_configured(serve: ServerFactory) -> None:
    answer = serve(settings=AlertSettings()).post("/alerts/generic", {"title": "t"}, token="x")
    assert answer.status == 401
    assert "FIREBREAK_ALERTS_TOKEN" in answer.json()["error"]


def test_an_empty_token_in_the_environment_is_unset_and_authenticates_nothing(
    serve: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIREBREAK_ALERTS_TOKEN", "")
    monkeypatch.setenv("FIREBREAK_ALERTS_TOKEN_GENERIC", "")
    monkeypatch.setenv("FIREBREAK_PAGERDUTY_SIGNING_SECRET", "")
    settings = AlertSettings(_env_file=None)
    assert (settings.token, settings.token_generic, settings.pagerduty_signing_secret) == (
        None,
        None,
        None,
    )
    server = serve(settings=settings)
    empty_basic = base64.b64encode(b"firebreak:").decode()
    for authorization in ("Bearer ", "Bearer", f"Basic {empty_basic}", None):
        headers = {"Authorization": authorization} if authorization is not None else {}
        answer = server.post("/alerts/generic", {"title": "t"}, token=None, headers=headers)
        assert answer.status == 401, authorization
        assert "alerts are not enabled: set FIREBREAK_ALERTS_TOKEN" in answer.json()["error"]


def test_pagerduty_signature_is_verified(db: Database, serve: ServerFactory) -> None:
    server = serve(settings=AlertSettings(token=TOKEN, pagerduty_signing_secret=PD_SECRET))
    body = PD_SIGNED.read_bytes()
    missing = server.post("/alerts/pagerduty", body)
    assert missing.status == 401 and "X-PagerDuty-Signature" in missing.json()["error"]
    forged = server.post("/alerts/pagerduty", body, headers={"X-PagerDuty-Signature": "v1=00"})
    assert forged.status == 401
    tampered = server.post(
        "/alerts/pagerduty",
        body.replace(b"A little bump", b"A large bump"),
        headers={"X-PagerDuty-Signature": PD_SIGNATURE},
    )
    assert tampered.status == 401
    assert counts(db) == (0, 0, 0)
    rotated = server.post(
        "/alerts/pagerduty", body, headers={"X-PagerDuty-Signature": "v1=ab," + PD_SIGNATURE}
    )
    assert rotated.status == 200 and rotated.json()["incident"] == "INC-1"
    # With only a signing secret configured, the signature alone authenticates PagerDuty.
    signed_only = serve(settings=AlertSettings(pagerduty_signing_secret=PD_SECRET))
    again = signed_only.post(
        "/alerts/pagerduty", body, token=None, headers={"X-PagerDuty-Signature": PD_SIGNATURE}
    )
    assert again.status == 200 and again.json()["incident"] == "INC-1"


def test_authentication_rules_and_settings_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FIREBREAK_ALERTS_TOKEN", "all")
    monkeypatch.setenv("FIREBREAK_ALERTS_TOKEN_DATADOG", "dd")
    monkeypatch.setenv("FIREBREAK_PAGERDUTY_SIGNING_SECRET", "pd")
    settings = AlertSettings()
    assert sorted(settings.secrets()) == ["all", "dd", "pd"]
    assert "all" not in repr(settings) and "dd" not in repr(settings)
    ok = {"authorization": "Bearer dd", "body": b"", "pagerduty_signature": None}
    assert authenticate(settings, "datadog", **ok) is None  # type: ignore[arg-type]
    assert authenticate(settings, "grafana", **ok) is not None  # type: ignore[arg-type]
    assert presented_token("Bearer   abc ") == b"abc"
    assert presented_token("Basic !!!") is None
    assert presented_token("Basic " + base64.b64encode(b"nocolon").decode()) is None


# -- bad input that is stored and shown harmlessly ----------------------------------------


def test_pings_long_text_unicode_bad_links_and_times_are_stored_harmlessly(
    db: Database, serve: ServerFactory
) -> None:
    server = serve()
    body = {
        "version": "4",
        "groupKey": '{}:{alertname="<!channel> ☠ مرحبا"}',
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "<!channel> ☠ مرحبا", "צוות": "\u202etfel"},
                "annotations": {
                    "summary": "<!here> everything is down",
                    "description": "d" * 10_000,
                    "runbook_url": "javascript:alert(document.cookie)",
                },
                "startsAt": "2999-01-01T00:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "../../etc/passwd",
            },
            {
                "status": "firing",
                "labels": {"alertname": "second"},
                "startsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "javascript:alert(1)",
            },
        ],
    }
    answer = server.post("/alerts/alertmanager", body)
    assert answer.status == 200, answer.body
    with db.read() as session:
        incident = session.exec(select(Incident)).one()
        assert "<!" not in incident.title and "@channel" not in incident.title
        rows = session.exec(select(AlertRecord).order_by(col(AlertRecord.id))).all()
        assert [r.links for r in rows] == [[], []]
        assert len(rows[0].description) == 4000
        assert rows[0].labels["צוות"] == "\u202etfel"
        assert rows[0].starts_at is not None and rows[0].starts_at <= incident.declared_at
        assert rows[1].starts_at is None
        assert incident.impact_started_at is not None
        assert incident.impact_started_at <= incident.declared_at
        texts = [e.text for e in session.exec(select(TimelineEvent)).all()]
        assert all("<!" not in t for t in texts)


def test_times_at_the_calendars_ends_with_an_offset_are_unknown_not_a_5xx(
    db: Database, serve: ServerFactory
) -> None:
    """Year 1 east of UTC and year 9999 west of it have no UTC time: the alert is stored with
    the time unknown, as a zero time is (a 5xx would be retried by the sender for ever)."""
    server = serve()
    body = {
        "version": "4",
        "groupKey": '{}:{alertname="CalendarEnds"}',
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "CalendarEnds"},
                "startsAt": "0001-01-01T00:00:00+05:30",
                "endsAt": "9999-12-31T23:59:59-05:00",
            }
        ],
    }
    answer = server.post("/alerts/alertmanager", body)
    assert answer.status == 200, answer.body
    with db.read() as session:
        row = session.exec(select(AlertRecord)).one()
        assert (row.starts_at, row.ends_at, row.status) == (None, None, "firing")


def test_half_an_emoji_or_a_nul_from_a_template_is_stored_not_a_5xx(
    db: Database, serve: ServerFactory
) -> None:
    """Valid JSON no database can hold as it is: an emoji cut in two (a lone surrogate escape)
    and NUL characters. Senders retry a 5xx forever, so the alert is kept, cleaned."""
    server = serve()
    alertmanager = (
        '{"version": "4", "groupKey": "{}:{alertname=\\"DiskFull\\"}", "status": "firing",'
        ' "alerts": [{"status": "firing", "fingerprint": "00aa11bb22cc33dd",'
        ' "labels": {"alertname": "DiskFull", "inst\\u0000ance": "db-1\\udc00"},'
        ' "annotations": {"summary": "Disk \\ud83d full \\ud83d\\ude00"},'
        ' "startsAt": "2026-11-30T10:00:00Z"}]}'
    )
    answer = server.post("/alerts/alertmanager", alertmanager.encode())
    assert answer.status == 200, answer.body
    opsgenie = {
        "action": "Create",
        "alert": {"alias": "nul-priority", "alertId": "a1", "message": "m", "priority": "P1\u0000"},
    }
    assert server.post("/alerts/opsgenie", opsgenie).status == 200
    generic = {"title": "t\u0000", "dedupe_key": "nul-severity", "severity": "critical\u0000"}
    assert server.post("/alerts/generic", generic).status == 200
    with db.read() as session:
        rows = {r.key: r for r in session.exec(select(AlertRecord)).all()}
        disk = rows["00aa11bb22cc33dd"]
        assert disk.labels == {"alertname": "DiskFull", "instance": "db-1\ufffd"}
        assert disk.annotations["summary"] == "Disk \ufffd full \U0001f600"
        assert rows["nul-priority"].severity == "P1"
        assert rows["nul-severity"].severity == "critical"
        assert len(session.exec(select(Incident)).all()) == 3


def test_a_resolve_for_an_alert_never_seen_is_stored(db: Database, serve: ServerFactory) -> None:
    answer = serve().post(
        "/alerts/generic", {"title": "x", "dedupe_key": "never", "status": "resolved"}
    )
    assert answer.status == 200
    assert answer.json()["incident"] is None and answer.json()["disposition"] == "none"
    assert counts(db) == (1, 1, 0)


def test_a_database_failure_is_503_and_nothing_stored(
    db: Database, serve: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    import bot.alerts.receiver as receiver

    calls = 0

    def broken(*_: object, **__: object) -> object:
        nonlocal calls
        calls += 1
        raise OperationalError("INSERT", None, Exception("disk I/O error"))

    monkeypatch.setattr(receiver, "ingest", broken)
    answer = serve().post("/alerts/generic", {"title": "x", "dedupe_key": "k"})
    assert answer.status == 503
    assert "nothing was kept, retry" in answer.json()["error"]
    # A database that cannot be written is tried again while the store deadline allows (a
    # failover of a second is a slower answer, not a refusal), then refused.
    assert calls > 3
    assert counts(db) == (0, 0, 0)


def test_pagerduty_test_event_and_non_incident_events_are_200_and_store_nothing(
    db: Database, serve: ServerFactory
) -> None:
    server = serve()
    for name in ("pd-v3-pagey-ping-test-event", "probe-service-updated-not-incident"):
        answer = server.post(
            "/alerts/pagerduty", (CORPUS / "pagerduty" / f"{name}.json").read_bytes()
        )
        assert answer.status == 200, answer.body
        assert answer.json()["status"] == "ignored"
    assert counts(db) == (0, 0, 0)


HUGE = int("1" + "0" * 400)


@pytest.mark.parametrize(
    ("source", "body"),
    [
        ("generic", {"title": "t", "dedupe_key": "k", "started_at": HUGE}),
        ("opsgenie", {"action": "Create", "alert": {"alias": "a2", "createdAt": HUGE}}),
        (
            "alertmanager",
            {
                "groupKey": '{}:{alertname="A"}',
                "alerts": [{"status": "firing", "labels": {"alertname": "A"}, "startsAt": "²"}],
            },
        ),
    ],
)
def test_an_unparsable_time_is_unknown_not_a_500(
    db: Database, serve: ServerFactory, source: str, body: dict[str, object]
) -> None:
    answer = serve().post(f"/alerts/{source}", body)
    assert answer.status == 200, answer.body
    assert answer.json()["incident"] == "INC-1"
    with db.read() as session:
        assert session.exec(select(AlertRecord)).one().starts_at is None


def test_a_groupkey_that_is_an_object_is_400(db: Database, serve: ServerFactory) -> None:
    body = {"groupKey": {"a": 1}, "alerts": [{"status": "firing", "labels": {"alertname": "A"}}]}
    answer = serve().post("/alerts/alertmanager", body)
    assert answer.status == 400
    assert answer.json()["error"] == "body.groupKey must be a string"
    assert counts(db) == (0, 0, 0)


def test_put_is_taken_as_grafana_can_send_it(db: Database, serve: ServerFactory) -> None:
    """Grafana's webhook contact point has an HTTP method setting (POST or PUT)."""
    body = (CORPUS / "grafana" / "zulip-v9-mixed-firing-resolved.json").read_bytes()
    answer = serve().post("/alerts/grafana", body, method="PUT")
    assert answer.status == 200, answer.body
    assert answer.json()["status"] == "stored"


def test_a_compressed_body_is_415_saying_so(db: Database, serve: ServerFactory) -> None:
    answer = serve().post(
        "/alerts/generic", b"\x1f\x8b\x08\x00rest", headers={"Content-Encoding": "gzip"}
    )
    assert answer.status == 415
    assert answer.json()["error"] == (
        "Content-Encoding gzip is not accepted: send the body uncompressed"
    )
    assert counts(db) == (0, 0, 0)


def test_a_broken_policy_is_not_described_to_an_unauthenticated_sender(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = tmp_path / "firebreak.toml"
    policy.write_text('[alerts]\ndeclare = "sometimes"\n', encoding="utf-8")
    monkeypatch.setenv("FIREBREAK_POLICY_FILE", str(policy))
    app = Starlette(routes=alert_routes(db, settings=AlertSettings(token=TOKEN)))
    with TestClient(app) as client:
        answer = client.post("/alerts/generic", json={"title": "x"})
    assert answer.status_code == 503
    assert answer.json() == {"error": "the server's configuration is invalid; its log says why"}
    assert str(tmp_path) not in answer.text and "sometimes" not in answer.text


def _invisible_titles() -> list[tuple[str, dict[str, object]]]:
    def corpus(name: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((CORPUS / name).read_text(encoding="utf-8"))
        return data

    am = corpus("alertmanager/zulip-no-generatorurl.json")
    am["commonLabels"]["alertname"] = "\u200b"
    am["commonAnnotations"] = {}
    am["alerts"][0]["labels"] = {"alertname": "\u200b"}
    am["alerts"][0]["annotations"] = {}
    og = corpus("opsgenie/probe-create-alias-and-alertid-of-escalate.json")
    og["alert"]["message"] = "\u2060\u200e"
    pd = corpus("pagerduty/probe-triggered-priority-null.json")
    pd["event"]["data"]["title"] = "\u200b\u200b"
    dd = corpus("datadog/probe-template-cycle-1-triggered.json")
    dd["title"] = "\u200b"
    return [("alertmanager", am), ("opsgenie", og), ("pagerduty", pd), ("datadog", dd)]


@pytest.mark.parametrize(("source", "body"), _invisible_titles(), ids=lambda v: str(v)[:12])
def test_a_title_of_only_invisible_characters_still_opens_a_readable_incident(
    db: Database, serve: ServerFactory, source: str, body: dict[str, object]
) -> None:
    """Alertmanager and Datadog do not retry a 4xx: refusing the alert would lose it."""
    answer = serve().post(f"/alerts/{source}", body)
    assert answer.status == 200, answer.body
    with db.read() as session:
        [incident] = session.exec(select(Incident)).all()
    assert incident.title.strip("\u200b\u2060\u200e ")
    assert not any(c in incident.title for c in "\u200b\u2060\u200e")
