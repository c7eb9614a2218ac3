"""Every corpus payload parses, and each quirk listed in PROVENANCE.md is understood."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.alerts.model import (
    PayloadError,
    Status,
    clean,
    fingerprint,
    neutralise,
    parse_time,
)
from bot.alerts.routing import runbook_for
from bot.alerts.sources import SOURCES, parse
from bot.config import Policy
from bot.markup import safe_url
from bot.runbooks.catalog import RunbookCatalog
from tests.alerts.conftest import CORPUS, NOW, REFUSED, corpus_files, load, message


def test_the_corpus_is_copied_with_its_provenance() -> None:
    files = corpus_files()
    assert len(files) == 70
    assert {p.parent.name for p in files} == {
        "alertmanager",
        "grafana",
        "datadog",
        "pagerduty",
        "opsgenie",
    }
    provenance = (CORPUS / "PROVENANCE.md").read_text(encoding="utf-8")
    for path in files:
        assert f"`{path.name}`" in provenance, path.name


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_corpus_payload_parses(path: Path) -> None:
    if path.name in REFUSED:
        with pytest.raises(PayloadError, match=REFUSED[path.name]):
            parse(path.parent.name, json.loads(path.read_bytes()), now=NOW)
        return
    parsed = parse(path.parent.name, json.loads(path.read_bytes()), now=NOW)
    assert parsed.source == path.parent.name
    assert parsed.group_key
    assert len(parsed.group_key) <= 255
    assert parsed.title
    assert parsed.alerts or parsed.info or parsed.note
    for alert in parsed.alerts:
        assert alert.key and alert.status in (Status.FIRING, Status.RESOLVED)
        for link in alert.links:
            assert link.url.startswith(("http://", "https://"))


# -- Alertmanager ---------------------------------------------------------------------------


def test_fingerprint_is_alertmanagers_fnv1a_over_sorted_labels() -> None:
    for name in (
        "alertmanager/tiamxu-chinese-alertname-escaped-receiver",
        "alertmanager/kubenotifyplus-rke2-3-alerts-runbook-url-regex-route",
        "alertmanager/ericsson-resolved-relative-generatorurl",
        "alertmanager/grafana-oncall-example-numfiring-empty-urls",
        "alertmanager/kubenotifyplus-rke2-label-named-status-499",
    ):
        for raw in load(name)["alerts"]:
            assert fingerprint(raw["labels"]) == raw["fingerprint"]


def test_missing_fingerprint_is_computed_from_the_labels() -> None:
    parsed = message("alertmanager/alertmonitor-3-alerts-regex-groupkey-firing")
    raw = load("alertmanager/alertmonitor-3-alerts-regex-groupkey-firing")["alerts"]
    assert [a.key for a in parsed.alerts] == [fingerprint(r["labels"]) for r in raw]
    assert len({a.key for a in parsed.alerts}) == 3
    # The resolved copy resolves exactly the same three alerts, although endsAt is zero.
    resolved = message("alertmanager/alertmonitor-3-alerts-regex-groupkey-resolved")
    assert [a.key for a in resolved.alerts] == [a.key for a in parsed.alerts]
    assert {a.status for a in resolved.alerts} == {Status.RESOLVED}
    assert resolved.group_key == parsed.group_key
    assert parsed.group_key.startswith('{}/{severity=~"^(?:^(critical')


def test_firing_with_a_future_endsat_is_firing_and_the_pair_resolves_it() -> None:
    firing = message("alertmanager/alertmanager-bot-firing-future-endsat")
    resolved = message("alertmanager/alertmanager-bot-resolved-pair")
    assert firing.alerts[0].status == Status.FIRING
    assert resolved.alerts[0].status == Status.RESOLVED
    assert firing.group_key == resolved.group_key == '{}:{alertname="Fire"}'
    assert firing.alerts[0].key == resolved.alerts[0].key
    # +01:00 offsets are read as the instant they name
    assert firing.alerts[0].starts_at is not None
    assert firing.alerts[0].starts_at.isoformat() == "2018-11-04T21:43:58.283995+00:00"


def test_resolved_with_zero_endsat_takes_the_status_field() -> None:
    parsed = message("alertmanager/zulip-resolved-with-zero-endsat")
    assert parsed.alerts[0].status == Status.RESOLVED
    assert parsed.alerts[0].ends_at is None  # 0001-01-01 means "unset", never a date


def test_no_per_alert_status_falls_back_to_the_message_status() -> None:
    parsed = message("alertmanager/msteams-no-status-no-fingerprint-tz-offset")
    assert parsed.alerts[0].status == Status.FIRING
    assert parsed.alerts[0].runbook_url == "https://github.com/bzon/prometheus-msteams" or (
        parsed.alerts[0].runbook_url is None
    )
    assert parsed.alerts[0].starts_at is not None
    assert parsed.alerts[0].starts_at.isoformat() == "2018-03-07T11:33:21.873077+00:00"


def test_a_label_named_status_does_not_change_the_alert_status() -> None:
    parsed = message("alertmanager/kubenotifyplus-rke2-label-named-status-499")
    assert parsed.alerts[0].status == Status.FIRING
    assert parsed.alerts[0].labels["status"] == "499"
    assert "(>50%)" in parsed.alerts[0].description


def test_integer_groupkey_of_version_3() -> None:
    parsed = message("alertmanager/grovepi-version3-integer-groupkey")
    assert parsed.group_key == "666"
    assert parsed.alerts[0].links == ()


def test_unbalanced_and_regex_groupkeys_are_opaque() -> None:
    parsed = message("alertmanager/jiralerts-unbalanced-groupkey-no-fingerprint")
    assert parsed.group_key == '{}/{}/{notify="default":{alertname="Foo_Bar", instance="foo"}'


def test_null_everything_and_empty_groupkey_still_group() -> None:
    parsed = message("alertmanager/kubegems-null-everything-empty-version")
    again = message("alertmanager/kubegems-null-everything-empty-version")
    assert parsed.group_key == again.group_key != ""
    assert parsed.alerts[0].ends_at is None
    assert parsed.alerts[0].name == "kubegems-test-alert"
    assert parsed.alerts[0].key == fingerprint(
        load("alertmanager/kubegems-null-everything-empty-version")["alerts"][0]["labels"]
    )


def test_identical_labels_with_different_fingerprints_are_two_alerts() -> None:
    parsed = message("alertmanager/zulip-two-alerts-empty-grouplabels")
    assert [a.key for a in parsed.alerts] == ["a1bc48475b20e73d", "c2ea85182f28cbd9"]


def test_relative_and_empty_urls_never_become_links() -> None:
    relative = message("alertmanager/ericsson-resolved-relative-generatorurl")
    assert relative.alerts[0].links == ()
    empty = message("alertmanager/grafana-oncall-example-numfiring-empty-urls")
    assert all(a.links == () for a in empty.alerts)
    absent = message("alertmanager/zulip-no-generatorurl")
    assert absent.alerts[0].links == ()
    grafana = message("grafana/keep-v12-test-alert-relative-generatorurl")
    assert [link.kind for link in grafana.alerts[0].links] == ["silence", "dashboard", "panel"]


def test_runbook_url_and_unicode_names_are_kept() -> None:
    parsed = message("alertmanager/kubenotifyplus-rke2-3-alerts-runbook-url-regex-route")
    assert len(parsed.alerts) == 3
    assert parsed.alerts[0].runbook_url == (
        "https://github.com/kubernetes-monitoring/kubernetes-mixin/tree/master/runbook.md"
        "#alert-name-kubepodcrashlooping"
    )
    assert parsed.alerts[0].links[0].url.endswith("&g0.tab=1")
    chinese = message("alertmanager/tiamxu-chinese-alertname-escaped-receiver")
    assert chinese.title == "服务异常告警"
    assert {a.name for a in chinese.alerts} == {"服务异常告警"}


# -- Grafana --------------------------------------------------------------------------------


def test_grafana_mixed_message_has_both_statuses() -> None:
    parsed = message("grafana/zulip-v9-mixed-firing-resolved")
    assert [a.status for a in parsed.alerts] == [Status.RESOLVED, Status.RESOLVED, Status.FIRING]
    assert parsed.firing == 1
    assert [a.key for a in parsed.alerts] == [
        "aaafafe0953f0962",
        "fb31814ac93dbe7d",
        "6f9cd313db421ef1",
    ]


def test_grafana_resolved_but_state_alerting_is_resolved() -> None:
    parsed = message("grafana/zulip-v8-test-notification-resolved-but-state-alerting")
    assert parsed.alerts[0].status == Status.RESOLVED
    assert "m=+42208" in parsed.group_key


def test_grafana_empty_groupkey_groups_by_group_labels() -> None:
    parsed = message("grafana/grafana-docs-custom-payload-truncated-null-empty-groupkey")
    assert parsed.group_key.startswith("TestReceiver:groupLabels:")
    assert [a.status for a in parsed.alerts] == [Status.FIRING, Status.RESOLVED]
    assert len({a.key for a in parsed.alerts}) == 2


def test_grafana_values_and_image_url() -> None:
    parsed = message("grafana/zulip-v11-values-imageurl-play-grafana")
    kinds = [link.kind for link in parsed.alerts[0].links]
    assert kinds == ["generator", "silence", "dashboard", "panel", "image"]
    assert parsed.alerts[0].key == "e6349a25f5ef0e9e"


def test_grafana_no_value_artefact_is_shown_as_text() -> None:
    parsed = message("grafana/zulip-v9-resolved-state-ok-no-value")
    assert "<no value>" in parsed.alerts[0].title
    assert parsed.alerts[0].status == Status.RESOLVED


def test_grafana_legacy_shape() -> None:
    """The legacy shape is read (state, name, title, links) from a captured body, which is a
    notification channel's Send Test: recognised as such, so it opens nothing (round 6)."""
    parsed = message("grafana/cerebro-legacy-pre8-test-notification-basic-auth")
    assert parsed.ignored
    assert parsed.alerts[0].status == Status.FIRING
    assert parsed.alerts[0].name == "Test notification"
    assert parsed.alerts[0].title == "Test notification"  # not "[Alerting] Test notification"
    assert [link.kind for link in parsed.alerts[0].links] == ["generator", "image"]


def test_grafana_slack_shaped_text_is_stored_without_alerts() -> None:
    parsed = message("grafana/zulip-slack-shaped-test-not-webhook-schema")
    assert parsed.alerts == ()
    assert parsed.note is not None and "text-only" in parsed.note


# -- Datadog --------------------------------------------------------------------------------


def test_datadog_aggregate_and_priority() -> None:
    parsed = message("datadog/inres-vng-custom-aggregate-priority")
    assert parsed.group_key == "06ade3da0286048d242ea8e46f521c93"
    assert parsed.alerts[0].severity == "P1"
    assert parsed.alerts[0].status == Status.FIRING
    assert "%%%" not in parsed.alerts[0].description
    assert [link.kind for link in parsed.alerts[0].links] == ["monitor"]


def test_datadog_monitor_and_scope_group_a_cycle_across_event_ids() -> None:
    triggered = message("datadog/keep-log-monitor-triggered")
    recovered = message("datadog/keep-log-monitor-recovered")
    assert (
        triggered.group_key
        == recovered.group_key
        == ("monitor:160076582:service:keep-api-bugfix-yaml")
    )
    assert triggered.alerts[0].status == Status.FIRING
    assert recovered.alerts[0].status == Status.RESOLVED
    assert triggered.alerts[0].severity is None  # severity "" is no severity
    assert triggered.alerts[0].service == "keep-api-bugfix-yaml"


def test_datadog_warn_recover_trigger_is_one_group() -> None:
    names = ("keep-p2-warn", "keep-p2-recovered-empty-group-in-title", "keep-p2-triggered")
    parsed = [message(f"datadog/{n}") for n in names]
    assert {p.group_key for p in parsed} == {"monitor:134462228:service:keep-api"}
    assert [p.alerts[0].status for p in parsed] == [
        Status.FIRING,
        Status.RESOLVED,
        Status.FIRING,
    ]
    assert parsed[1].title == "Unauthorized access to API"  # "[P2] [Recovered]" stripped
    assert {p.alerts[0].severity for p in parsed} == {"P2"}


def test_datadog_nested_template_literal_id_and_null_strings() -> None:
    query = message("datadog/nudgebee-rackspace-query-alert-nested-template")
    assert query.group_key == "3f63d7b1a675db4d4f79cb6efcbb8afc"
    assert query.alerts[0].labels["monitor_id"] == "266154777"
    synthetics = message("datadog/nudgebee-rackspace-synthetics-null-strings-literal-ID")
    assert synthetics.alerts[0].severity == "P3"  # from "[P3] [Triggered] ..."
    assert synthetics.title == "[Synthetics] XYZ - A monitor that always fails" or (
        synthetics.title == "XYZ - A monitor that always fails"
    )


def test_datadog_default_template() -> None:
    parsed = message("datadog/relay-puppet-default-template-test")
    assert parsed.group_key == "monitor:18692904:"
    assert parsed.alerts[0].status == Status.FIRING
    assert parsed.title == "Host Cluster Alert"


# -- PagerDuty ------------------------------------------------------------------------------


def test_pagerduty_groups_by_incident_id_across_shapes() -> None:
    signed = message("pagerduty/go-pagerduty-signed-raw-body-conference-number-int")
    docs = message("pagerduty/pd-docs-v3-priority-updated-uuid-event-id")
    assert signed.group_key == docs.group_key == "PGR0VU2"
    assert signed.alerts[0].severity == "P1"
    assert docs.alerts[0].labels["incident_key"] == "d3640fbd41094207a1c11e58e46b1662"
    assert [i.text for i in docs.info] == ["PagerDuty: priority updated by Tenex Engineer: P1"]
    assert [i.severity for i in docs.info] == ["P1"]


def test_pagerduty_lifecycle_statuses() -> None:
    triggered = message("pagerduty/zulip-v3-incident-triggered-2021")
    resolved = message("pagerduty/zulip-v3-incident-resolved-no-assignees")
    reopened = message("pagerduty/zulip-v3-incident-reopened-new-id-format")
    assert triggered.alerts[0].status == Status.FIRING and triggered.info == ()
    assert resolved.alerts[0].status == Status.RESOLVED
    assert reopened.group_key == "Q05XJA8GDXGOB3"
    assert reopened.alerts[0].status == Status.FIRING
    assert [i.text for i in reopened.info] == ["PagerDuty: reopened by Harsh Santwani"]


def test_pagerduty_note_is_timeline_information() -> None:
    note = message("pagerduty/zulip-v3-incident-annotated-note-shape")
    assert note.group_key == "Q3B15VLMF3ASBD"
    assert note.alerts == ()
    assert note.info[0].text == (
        "PagerDuty: annotated by Harsh Santwani: "
        "Running KILL on long-running queries from the reporting-service."
    )
    assert note.info[0].key == "pagerduty:01GI0KTE33V5QXBVIJDEVJFUNE"


# -- Opsgenie -------------------------------------------------------------------------------


def test_opsgenie_alias_groups_and_actions() -> None:
    acknowledge = message("opsgenie/zulip-acknowledge-aliastest")
    close = message("opsgenie/zulip-close-aliastest")
    custom = message("opsgenie/zulip-custom-action-freeform")
    assert acknowledge.group_key == close.group_key == custom.group_key == "aliastest"
    assert acknowledge.alerts == () and acknowledge.info[0].text.startswith("Opsgenie: Acknowledge")
    assert close.alerts[0].status == Status.RESOLVED
    assert custom.info[0].text == "Opsgenie: TestAction by fili@ifountain.com"


def test_opsgenie_priorities_as_number_and_string() -> None:
    assert message("opsgenie/zulip-create-nanosecond-updatedat").alerts[0].severity == "P3"
    created = message("opsgenie/relay-puppet-create-priority-string-alias-equals-id")
    assert created.alerts[0].severity == "P3"
    assert created.group_key == "7ec331d7-f5f3-4f78-a49c-2ad886df69fe-1593475564295"
    assert created.alerts[0].starts_at is not None
    assert created.alerts[0].starts_at.year == 2020  # createdAt in milliseconds


def test_opsgenie_escalate_with_only_an_alert_id() -> None:
    parsed = message("opsgenie/zulip-escalate-alert-only-alertid")
    assert parsed.group_key == "7ba97e3a-d328-4b5e-8f9a-39e945a3869a"
    assert parsed.info[0].text == "Opsgenie: Escalate: escalation test_esc, to test@ifountain.com"


# -- Bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES)
def test_arrays_and_scalars_are_refused_with_a_clear_message(source: str) -> None:
    with pytest.raises(PayloadError, match="JSON array"):
        parse(source, [{"title": "x"}], now=NOW)
    with pytest.raises(PayloadError, match="JSON object"):
        parse(source, "text", now=NOW)


@pytest.mark.parametrize(
    ("source", "body", "expected"),
    [
        ("alertmanager", {"receiver": "x", "status": "firing"}, "no 'alerts' list"),
        ("alertmanager", {"alerts": "many"}, "'alerts' must be a list"),
        ("alertmanager", {"alerts": [1]}, r"alerts\[0\] must be an object"),
        ("alertmanager", {"groupKey": {"a": 1}, "alerts": []}, "groupKey must be a string"),
        ("alertmanager", {"alerts": [{"labels": ["a"]}]}, r"alerts\[0\].labels must be an object"),
        (
            "alertmanager",
            {"alerts": [{"status": ["firing"]}]},
            r"alerts\[0\].status must be a string",
        ),
        ("grafana", {"receiver": "x"}, "no 'alerts' list"),
        ("datadog", {"foo": 1}, "no title or body"),
        ("datadog", {"title": {"a": 1}}, "title must be a string"),
        ("pagerduty", {"incident": {}}, "no 'event' object"),
        ("pagerduty", {"event": {"event_type": "incident.triggered"}}, "event.data"),
        ("opsgenie", {"alert": {}}, "no 'action'"),
        ("opsgenie", {"action": "Create", "alert": {}}, "neither alias nor alertId"),
        ("generic", {"title": "x"}, "dedupe_key are required"),
        ("generic", {"title": 5, "dedupe_key": "k"}, "title must be a string"),
        ("generic", {"title": "x", "dedupe_key": "k", "status": "on"}, "status must be"),
    ],
)
def test_wrong_shapes_say_what_is_wrong(source: str, body: object, expected: str) -> None:
    with pytest.raises(PayloadError, match=expected):
        parse(source, body, now=NOW)


def test_broadcasts_in_titles_never_ping() -> None:
    parsed = parse(
        "generic",
        {"title": "<!channel> db down <!here|here> <@U123> @channel", "dedupe_key": "k"},
        now=NOW,
    )
    assert "<!" not in parsed.title and "<@" not in parsed.title
    assert "@channel" not in parsed.title and "@here" not in parsed.title
    assert parsed.title == neutralise(parsed.title)
    assert parsed.title.replace("\u2060", "") == "@channel db down @here @U123 @channel"


def test_long_descriptions_are_shortened_and_unicode_kept() -> None:
    parsed = parse(
        "generic",
        {
            "title": "שגיאה בשרת \u202eevil",
            "dedupe_key": "rtl",
            "description": "x" * 10_000,
            "labels": {"צוות": "תשתיות"},
        },
        now=NOW,
    )
    assert len(parsed.alerts[0].description) == 4000
    assert parsed.alerts[0].description.endswith("\u2026")
    assert parsed.alerts[0].labels == {"צוות": "תשתיות"}
    assert parsed.title.startswith("שגיאה בשרת")


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "../../etc/passwd",
        "/etc/passwd",
        "file:///etc/passwd",
        "data:text/html,<script>",
        "?orgId=1",
        "http://",
        "https://exa mple.com",
        "https://example.com/<script>",
        "",
    ],
)
def test_unsafe_urls_never_become_links(url: str) -> None:
    assert safe_url(url) is None
    parsed = parse(
        "generic",
        {"title": "t", "dedupe_key": "k", "links": {"dashboard": url}, "runbook_url": url or None},
        now=NOW,
    )
    assert parsed.alerts[0].links == ()


def test_times_zero_missing_future_and_epochs() -> None:
    assert parse_time("0001-01-01T00:00:00Z", now=NOW) is None
    assert parse_time(None, now=NOW) is None
    assert parse_time("yesterday", now=NOW) is None
    assert parse_time("2999-01-01T00:00:00Z", now=NOW) == NOW
    assert parse_time("2026-11-30T10:00:00+05:30", now=NOW) == datetime(
        2026, 11, 30, 4, 30, tzinfo=UTC
    )
    # The calendar's ends with an offset have no time in UTC: unknown, never an error.
    assert parse_time("0001-01-01T00:00:00+05:30", now=NOW) is None
    assert parse_time("9999-12-31T23:59:59-05:00", now=NOW) is None
    assert parse_time(1420452191104, now=NOW) == parse_time(1420452191.104, now=NOW)
    nanos = parse_time(1420452224764002246, now=NOW)
    assert nanos is not None and nanos.year == 2015
    assert parse_time("1733930133000", now=NOW) is not None
    assert parse_time(10**400, now=NOW) is None  # a float overflows
    assert parse_time("1" + "0" * 400, now=NOW) is None
    assert parse_time("²", now=NOW) is None  # isdigit(), but not a number
    assert parse_time(float("nan"), now=NOW) is None


def test_clean_removes_controls_and_keeps_text() -> None:
    assert clean("a\x00b\x1bc") == "abc"
    assert clean("  line\r\nnext ") == "line\nnext"
    assert clean("a\nb", multiline=False) == "a b"


def test_grafana_no_data_and_error_alerts_are_named_after_their_rule() -> None:
    """Grafana raises ``DatasourceNoData`` / ``DatasourceError`` for a rule whose query returns
    nothing or fails, with the rule in ``rulename``: an incident called "DatasourceNoData"
    says nothing, and no runbook is written for it."""
    body = load("grafana/zulip-v11-values-imageurl-play-grafana")
    first = body["alerts"][0]
    no_data = {
        **first,
        "labels": {"alertname": "DatasourceNoData", "rulename": "CPU high", "grafana_folder": "x"},
        "annotations": {},
    }
    failed = {
        **first,
        "fingerprint": "b" * 16,
        "labels": {"alertname": "DatasourceError", "rulename": "Disk full"},
        "annotations": {"Error": "[sse.dataQueryError] failed: context deadline exceeded"},
    }
    grouped = {
        **body,
        "groupLabels": {"alertname": "DatasourceNoData", "grafana_folder": "x"},
        "commonAnnotations": {},
    }
    alone = parse("grafana", {**grouped, "alerts": [no_data]}, now=NOW)
    assert alone.title == "CPU high (no data)"  # the incident's title and channel name
    parsed = parse("grafana", {**body, "alerts": [no_data, failed]}, now=NOW)
    # named for the timeline ("Alert firing: CPU high (no data)", not the rule firing), and
    # matched to runbooks by the rule
    assert [(a.name, a.rule, a.title, a.description) for a in parsed.alerts] == [
        ("CPU high (no data)", "CPU high", "CPU high (no data)", ""),
        (
            "Disk full (query failed)",
            "Disk full",
            "Disk full (query failed)",
            "[sse.dataQueryError] failed: context deadline exceeded",
        ),
    ]


def test_an_alert_with_no_name_is_titled_by_its_labels_not_just_alert() -> None:
    """Rules written without ``alertname`` (recording-rule alerts, a vmalert or Thanos ruler,
    a hand-posted alert) still say which target fires: its first labels, as Alertmanager's UI
    lists them, and the group's own labels for the incident."""

    def body(group_labels: dict[str, str]) -> dict[str, object]:
        labels = {"job": "node", "instance": "db-1:9100", "severity": "critical"}
        return {
            "version": "4",
            "groupKey": '{}:{job="node"}',
            "status": "firing",
            "receiver": "firebreak",
            "groupLabels": group_labels,
            "commonLabels": labels,
            "commonAnnotations": {},
            "alerts": [{"status": "firing", "labels": labels, "annotations": {}}],
        }

    ungrouped = parse("alertmanager", body({}), now=NOW)
    assert ungrouped.title == "instance=db-1:9100 job=node"
    assert ungrouped.alerts[0].title == "instance=db-1:9100 job=node"
    grouped = parse("alertmanager", body({"job": "node"}), now=NOW)
    assert grouped.title == "job=node"


def test_grafana_organisations_with_the_same_rule_are_separate_groups() -> None:
    """Grafana's ``groupKey`` names the contact point and labels, not the organisation:
    staging (org 7) and production (org 1) with the same contact point, folder and rule would
    share one incident. The first organisation keeps the key it always had."""
    body = load("grafana/zulip-v11-values-imageurl-play-grafana")
    first = parse("grafana", {**body, "orgId": 1}, now=NOW)
    other = parse("grafana", {**body, "orgId": 7}, now=NOW)
    unnamed = parse("grafana", {k: v for k, v in body.items() if k != "orgId"}, now=NOW)
    assert first.group_key == unnamed.group_key
    assert other.group_key != first.group_key
    assert parse("grafana", {**body, "orgId": "7"}, now=NOW).group_key == other.group_key


def test_a_grafana_no_data_alert_is_matched_to_its_rules_runbook(tmp_path: Path) -> None:
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    (runbooks / "cpu.md").write_text(
        "---\nalerts: [CPU high]\n---\n# CPU saturation\n\n## Steps\n\n1. Find the busy pod\n",
        encoding="utf-8",
    )
    body = load("grafana/zulip-v11-values-imageurl-play-grafana")
    no_data = {
        **body["alerts"][0],
        "status": "firing",
        "labels": {"alertname": "DatasourceNoData", "rulename": "CPU high"},
        "annotations": {},
    }
    message = parse("grafana", {**body, "status": "firing", "alerts": [no_data]}, now=NOW)
    runbook, reason = runbook_for(RunbookCatalog.load([runbooks]), Policy(), message, "SEV3")
    assert runbook is not None and runbook.id == "cpu", reason


def test_datadog_keeps_a_monitors_own_brackets_and_strips_only_its_tags() -> None:
    """``[prod] API latency`` and ``[staging] API latency`` are two monitors: only the tags
    Datadog itself puts in front (state, priority, TEST) are taken off the name."""

    def title(raw: str) -> str:
        return parse("datadog", {"id": "1", "title": raw, "body": "x"}, now=NOW).title

    assert title("[Triggered on {host:web-1}] [prod] API latency") == "[prod] API latency"
    assert title("[P1] [Re-Warn] [staging] API latency") == "[staging] API latency"
    assert title("[TEST] [No Data] Queue depth") == "Queue depth"


def test_pagerduty_escalations_and_reassignments_say_to_whom() -> None:
    body = load("pagerduty/zulip-v3-incident-triggered-2021")
    body["event"].update(id="01ESC", event_type="incident.escalated")
    body["event"]["data"]["assignees"] = [
        {"id": "P1", "summary": "Ben Oncall", "type": "user_reference"},
        {"id": "P2", "summary": "Chloe Lead", "type": "user_reference"},
    ]
    [info] = parse("pagerduty", body, now=NOW).info
    assert info.text.endswith(" to Ben Oncall, Chloe Lead")
    body["event"]["event_type"] = "incident.reassigned"
    body["event"]["data"]["assignees"] = []
    body["event"]["data"]["assignments"] = [{"assignee": {"summary": "Dev Night"}}]
    [info] = parse("pagerduty", body, now=NOW).info
    assert info.text.endswith(" to Dev Night")
