"""Loading runbook directories and matching incidents to runbooks."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pytest

from bot.config import policy_from_dict
from bot.runbooks.catalog import Match, RunbookCatalog
from bot.runbooks.parser import parse_runbook
from bot.runbooks.words import stem, words
from bot.slack.limits import message_errors
from bot.slack.runbook_messages import render_runbook_pages


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_loads_markdown_files_with_ids_relative_to_their_directory(tmp_path: Path) -> None:
    write(tmp_path, "kubernetes/KubePodCrashLooping.md", "# KubePodCrashLooping\n- [ ] a\n")
    write(tmp_path, "disk-full.md", "---\ntitle: Disk full\n---\n- [ ] df -h\n")
    write(tmp_path, "kubernetes/_index.md", "---\ntitle: kubernetes\n---\n")
    write(tmp_path, "README.md", "# How we write runbooks\n")
    write(tmp_path, "notes.txt", "not a runbook")
    write(tmp_path, ".git/config.md", "# hidden\n")

    catalog = RunbookCatalog.load([tmp_path])

    assert sorted(catalog.runbooks) == ["disk-full", "kubernetes/KubePodCrashLooping"]
    assert catalog.skipped == []


def test_bad_files_are_skipped_with_a_warning_and_do_not_hide_the_others(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path, "good.md", "- [ ] fine\n")
    (tmp_path / "binary.md").write_bytes(b"\x00\x01\x02PNG")
    (tmp_path / "huge.md").write_text("- [ ] x\n" * 700_000)  # 5.6 MB
    caplog.set_level(logging.WARNING, logger="bot.runbooks.catalog")

    catalog = RunbookCatalog.load([tmp_path, tmp_path / "missing"])

    assert list(catalog.runbooks) == ["good"]
    reasons = {p.path.name: p.message for p in catalog.skipped}
    assert "binary" in reasons["binary.md"]
    assert "over 1 MB" in reasons["huge.md"]
    assert "not found" in reasons["missing"]
    assert sum("skipping runbook" in r.getMessage() for r in caplog.records) == 2


def test_the_same_id_in_two_directories_keeps_the_first(tmp_path: Path) -> None:
    write(tmp_path / "team", "db.md", "# Team DB\n- [ ] a\n")
    write(tmp_path / "shared", "db.md", "# Shared DB\n- [ ] a\n")

    catalog = RunbookCatalog.load([tmp_path / "team", tmp_path / "shared"])

    assert catalog.runbooks["db"].title == "Team DB"
    assert [p.path for p in catalog.skipped] == [tmp_path / "shared" / "db.md"]


def test_directories_come_from_the_policy_relative_to_its_file(tmp_path: Path) -> None:
    write(tmp_path / "books", "a.md", "- [ ] a\n")
    policy = policy_from_dict({"runbooks": {"paths": ["books"]}})
    policy._base_dir = tmp_path

    assert list(RunbookCatalog.from_policy(policy).runbooks) == ["a"]


def test_runbooks_are_addressable_by_id_title_and_file_name() -> None:
    catalog = RunbookCatalog.of(
        [
            parse_runbook("# Kafka consumer lag\n- [ ] a\n", runbook_id="queues/kafka-lag"),
            parse_runbook("# Disk full\n- [ ] a\n", runbook_id="disk-full"),
        ]
    )

    assert catalog.get("queues/kafka-lag") is catalog.runbooks["queues/kafka-lag"]
    assert catalog.get("QUEUES/Kafka-Lag.md") is catalog.runbooks["queues/kafka-lag"]
    assert catalog.get("kafka consumer lag") is catalog.runbooks["queues/kafka-lag"]
    assert catalog.get("kafka-lag") is catalog.runbooks["queues/kafka-lag"]
    assert catalog.get("nothing") is None
    # as people type it: in quotes of any kind, or with the runbook directory in front
    for typed in ('"Kafka consumer lag"', "“kafka consumer lag”", "'kafka-lag'", "«kafka-lag»"):
        assert catalog.get(typed) is catalog.runbooks["queues/kafka-lag"], typed
    assert catalog.get("runbooks/queues/kafka-lag.md") is catalog.runbooks["queues/kafka-lag"]
    assert catalog.get("runbooks/nothing.md") is None


def test_words_split_alert_names_and_stem_plurals() -> None:
    assert [w for w, _ in words("KubePodCrashLooping")] == [
        "kubepodcrashlooping",
        "kube",
        "pod",
        "crash",
        "loop",
    ]
    assert stem("disks") == stem("disk") == "disk"
    assert stem("crashes") == "crash"
    assert stem("running") == "run"
    assert stem("status") == "status"


CATALOG_TEXTS = {
    "payments/checkout-errors": (
        "---\ntitle: Checkout errors\nservices: [payments]\ntags: [errors]\n---\n"
        "- [ ] Check the payment provider\n"
    ),
    "kubernetes/KubePodCrashLooping": "# KubePodCrashLooping\n\n## Mitigation\n\nFix the pod.\n",
    "explicit-alert": "---\ntitle: Pods restarting\nalerts: [PodRestartStorm]\n---\n- [ ] x\n",
    "disk-full": (
        "---\ntitle: Disk full\ndescription: A filesystem is full.\ntags: [disk, storage]\n---\n"
        "- [ ] Free space with du and df\n"
    ),
    "search/disk-full": (
        "---\ntitle: Search disk full\nservices: [search]\n---\n- [ ] Free disk space\n"
    ),
    "sev1-only": (
        "---\ntitle: Total outage disk failover\nseverities: [SEV1]\n---\n- [ ] Fail over\n"
    ),
    "unrelated": "# Rotate certificates\n\n## Mitigation\n\nCheck the dates with openssl.\n",
}


@pytest.fixture
def catalog() -> RunbookCatalog:
    return RunbookCatalog.of(
        [parse_runbook(t, runbook_id=rid) for rid, t in CATALOG_TEXTS.items()],
        policy=policy_from_dict({}),
    )


def ids(matches: Sequence[Match]) -> list[str]:
    return [m.runbook.id for m in matches]


def test_alert_match_outranks_service_which_outranks_keywords(catalog: RunbookCatalog) -> None:
    matches = catalog.match(
        title="Disk full and errors",
        service="payments",
        severity="SEV2",
        alerts=["KubePodCrashLooping"],
    )

    assert ids(matches)[:3] == [
        "kubernetes/KubePodCrashLooping",
        "payments/checkout-errors",
        "disk-full",
    ]
    assert matches[0].reasons[0] == "alert KubePodCrashLooping (its file name)"
    assert matches[1].reasons[0] == "service payments"
    assert matches[2].reasons == ("keywords: disk, full",)
    assert matches[0].score > matches[1].score > matches[2].score


def test_an_alert_in_front_matter_matches_case_insensitively(catalog: RunbookCatalog) -> None:
    (match,) = catalog.match(alerts=["podrestartstorm"])

    assert (match.runbook.id, match.reasons) == ("explicit-alert", ("alert podrestartstorm",))


def test_severities_narrow_the_matches(catalog: RunbookCatalog) -> None:
    assert "sev1-only" in ids(catalog.match(title="disk failover", severity="SEV1"))
    assert "sev1-only" in ids(catalog.match(title="disk failover", severity="1"))
    assert "sev1-only" not in ids(catalog.match(title="disk failover", severity="SEV3"))
    assert "sev1-only" in ids(catalog.match(title="disk failover"))


def test_a_runbook_for_another_service_ranks_below_a_general_one(catalog: RunbookCatalog) -> None:
    matches = ids(catalog.match(title="disk full", service="checkout"))

    assert matches.index("disk-full") < matches.index("search/disk-full")
    assert ids(catalog.match(title="disk full", service="search"))[0] == "search/disk-full"


def test_an_incident_with_nothing_in_common_matches_nothing(catalog: RunbookCatalog) -> None:
    assert catalog.match(title="Office coffee machine broken") == []


def test_body_words_alone_do_not_suggest_a_runbook(catalog: RunbookCatalog) -> None:
    assert catalog.match(title="openssl") == []
    assert ids(catalog.search("openssl")) == ["unrelated"]


def test_search_puts_the_exact_name_first(catalog: RunbookCatalog) -> None:
    results = catalog.search("disk full")

    assert ids(results)[0] == "disk-full"
    assert results[0].reasons == ("name",)
    assert "search/disk-full" in ids(results)
    assert ids(catalog.search("KubePodCrashLooping"))[0] == "kubernetes/KubePodCrashLooping"
    assert catalog.search("   ") == []


def test_suggestions_are_cut_to_the_policy_count() -> None:
    texts = {f"disk-{i}": f"# Disk full {i}\n- [ ] df\n" for i in range(5)}
    runbooks = [parse_runbook(t, runbook_id=rid) for rid, t in texts.items()]

    one = RunbookCatalog.of(runbooks, policy=policy_from_dict({"runbooks": {"suggestions": 1}}))
    assert len(one.suggest(title="disk full")) == 1
    none = RunbookCatalog.of(runbooks, policy=policy_from_dict({"runbooks": {"suggestions": 0}}))
    assert none.suggest(title="disk full") == []
    assert len(none.suggest(title="disk full", limit=4)) == 4


BAD_INPUTS: dict[str, str | bytes] = {
    "invalid-yaml.md": "---\ntitle: [unclosed\n---\n# Disk\n\n- [ ] df -h\n",
    "binary.md": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00",
    "five-mb.md": "- [ ] step\n" * (5 * 1024 * 1024 // 11),
    "unterminated.md": "# X\n\n## Mitigation\n\n```sh\nkubectl get pods\n",
    "html.md": "<details><summary>More</summary><p>a <b>b</b> &amp; <script>x()</script></p>",
    "three-hundred.md": "\n".join(f"{i}. step {i}" for i in range(1, 301)),
    "long-step.md": "# L\n\n## Mitigation\n\n" + "word " * 4_000,
    "empty.md": "",
}


def test_bad_files_never_break_loading_or_produce_a_message_slack_rejects(
    tmp_path: Path,
) -> None:
    for name, content in BAD_INPUTS.items():
        if isinstance(content, bytes):
            (tmp_path / name).write_bytes(content)
        else:
            write(tmp_path, name, content)

    catalog = RunbookCatalog.load([tmp_path])

    assert {p.path.name for p in catalog.skipped} == {"binary.md", "five-mb.md"}
    assert len(catalog) == len(BAD_INPUTS) - 2
    for loaded in catalog:
        assert loaded.steps or loaded.empty
        for page in render_runbook_pages(loaded, steps_per_page=10):
            assert message_errors(page.text, page.blocks) == []


# --------------------------------------------------------------------------------------------
# What drives matching: meaningful words, not the filler of incident reports

STARTER = Path(__file__).resolve().parents[2] / "runbooks"


@pytest.fixture(scope="module")
def starter() -> RunbookCatalog:
    return RunbookCatalog.load([STARTER], policy=policy_from_dict({}))


def test_filler_words_are_not_keywords_and_signal_words_are() -> None:
    assert [w for w, _ in words("Customers see spinners since the deploy")] == ["spinner", "deploy"]
    assert [w for w, _ in words("Page the on-call: users report errors after the runbook")] == [
        "call",
        "error",
    ]
    assert [w for w, _ in words("Disk latency slow, outage")] == [
        "disk",
        "latency",
        "slow",
        "outage",
    ]
    # times, dates and severity labels say when and how bad, not what
    assert words("SEV1 since 02:40 UTC on Monday") == []


def test_an_http_status_also_matches_its_class() -> None:
    assert ("5xx", "503s") in words("HTTP 503s")
    assert ("4xx", "429") in words("429 Too Many Requests")


def test_filler_in_an_incident_does_not_suggest_an_unrelated_runbook(
    starter: RunbookCatalog,
) -> None:
    """The leaked-credential runbook says "page the security on-call", "customers" and "since":
    an incident written with those words is not a security incident."""
    slow = ids(
        starter.suggest(title="Login page slow", summary="Customers see spinners since the deploy")
    )
    assert "leaked-credential" not in slow
    assert set(slow[:2]) == {"high-latency", "bad-deploy-rollback"}

    checkout = ids(
        starter.suggest(
            title="Checkout returns 500s for EU customers",
            summary="Card payments from the EU fail with HTTP 500 since about 02:40 UTC.",
        )
    )
    assert checkout[0] == "high-error-rate"
    assert "leaked-credential" not in checkout


def test_a_search_made_only_of_filler_finds_nothing(starter: RunbookCatalog) -> None:
    assert starter.search("definitely-no-such-runbook") == []
    assert starter.search("see the runbook since customers") == []
    assert ids(starter.search("runbook for kafka lag"))[0] == "kafka-consumer-lag"


# (title, summary, the first suggestions in any order, runbooks that must not be offered)
REALISTIC_INCIDENTS: list[tuple[str, str, set[str], set[str]]] = [
    (
        "Checkout returns 500s for EU customers",
        "Card payments from the EU fail with HTTP 500 since about 02:40 UTC.",
        {"high-error-rate"},
        {"leaked-credential", "disk-full", "kafka-consumer-lag", "cloud-zone-degradation"},
    ),
    (
        "Login page slow",
        "Customers see spinners since the deploy",
        {"high-latency", "bad-deploy-rollback"},
        {"leaked-credential", "disk-full", "certificate-expiry", "database-connection-exhaustion"},
    ),
    (
        "Elevated 5xx on the orders API after the 14:05 release",
        "Users see errors at checkout since the new version went out.",
        {"bad-deploy-rollback", "high-error-rate"},
        {"leaked-credential", "disk-full", "kafka-consumer-lag", "certificate-expiry"},
    ),
    (
        "Orders consumer group falling behind",
        "Kafka lag on the orders topic keeps growing; order confirmation emails are delayed.",
        {"kafka-consumer-lag"},
        {"leaked-credential", "certificate-expiry", "database-connection-exhaustion"},
    ),
    (
        "Postgres: too many clients",
        "API pods cannot get a database connection; the PgBouncer pool is saturated.",
        {"database-connection-exhaustion"},
        {"leaked-credential", "disk-full", "certificate-expiry", "kafka-consumer-lag"},
    ),
    (
        "/var full on db-3",
        "No space left on device; writes failing since the backup job ran overnight.",
        {"disk-full"},
        {"leaked-credential", "certificate-expiry", "kafka-consumer-lag", "cloud-zone-degradation"},
    ),
    (
        "TLS certificate expired on api.example.com",
        "Browsers show an invalid certificate warning since midnight.",
        {"certificate-expiry"},
        {"leaked-credential", "disk-full", "kafka-consumer-lag", "database-connection-exhaustion"},
    ),
    (
        "AWS access key committed to a public GitHub repo",
        "A scanner flagged the key in a commit; it may have been used.",
        {"leaked-credential"},
        {"disk-full", "kafka-consumer-lag", "high-latency", "database-connection-exhaustion"},
    ),
    (
        "Stripe API down",
        "Card payments fail; the provider times out and their status page reports an outage.",
        {"third-party-outage"},
        {"leaked-credential", "disk-full", "kafka-consumer-lag"},
    ),
    (
        "eu-west-1a degraded",
        "Instances in one availability zone are unreachable; the provider confirms a zone problem.",
        {"cloud-zone-degradation"},
        {"leaked-credential", "disk-full", "kafka-consumer-lag", "certificate-expiry"},
    ),
]


@pytest.mark.parametrize(
    ("title", "summary", "first", "unrelated"),
    REALISTIC_INCIDENTS,
    ids=[title for title, *_ in REALISTIC_INCIDENTS],
)
def test_starter_runbooks_are_suggested_for_realistic_incidents(
    starter: RunbookCatalog, title: str, summary: str, first: set[str], unrelated: set[str]
) -> None:
    suggested = ids(starter.suggest(title=title, summary=summary, limit=3))

    assert set(suggested[: len(first)]) == first, suggested
    assert not set(suggested) & unrelated, suggested


def test_what_every_alert_says_and_its_links_do_not_choose_a_runbook(
    starter: RunbookCatalog,
) -> None:
    """An alert-declared incident's summary opens with Firebreak's own line, and a Datadog body
    ends in its monitor links and notification handles: none of that says what is wrong."""
    datadog = starter.suggest(
        title="Redis memory above 90%",
        summary=(
            "Opened by Datadog alerts (1 firing).\n\nRedis used memory is 93% of maxmemory on "
            "host:cache-2 @webhook-firebreak @slack-ops-alerts\n\n[[Monitor Status]"
            "(https://app.datadoghq.com/monitors/42?group=host%3Acache-2)] · [[Edit Monitor]"
            "(https://app.datadoghq.com/monitors#42/edit)] https://status.example.com/incidents"
        ),
    )
    reasons = {reason for match in datadog for reason in match.reasons}
    for noise in ("https", "monitor", "opened", "firing", "webhook", "firebreak", "datadoghq"):
        assert not any(noise in reason for reason in reasons), reasons
    assert [w for w, _ in words("Opened by Alertmanager alerts (3 firing).")] == ["alertmanager"]
