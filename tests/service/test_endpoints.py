"""What an orchestrator and Prometheus see over HTTP: ``/healthz`` (alive), ``/readyz`` (the
database is reachable and its schema current) and ``/metrics``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic.script import ScriptDirectory
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlmodel import select

from bot import migrations
from bot.clock import utcnow
from bot.config import Policy
from bot.db import Database
from bot.models import Incident
from bot.sandbox import SlackSimulator
from tests.conftest import DatabaseFactory
from tests.ports import free_port
from tests.service.conftest import (
    SECRET,
    HoldingFakeSlack,
    ServeProcess,
    eventually,
    get,
    reminder_messages,
    seed_overdue_incidents,
    web_only,
)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    answer = get(f"{url}/metrics")
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def previous_revision() -> str:
    script = ScriptDirectory.from_config(migrations.alembic_config("sqlite://"))
    down = script.get_revision(migrations.head_revision()).down_revision
    assert isinstance(down, str)
    return down


# --------------------------------------------------------------------------------------------
# Health and readiness


def test_a_running_service_is_alive_and_ready(launch: Callable[..., ServeProcess]) -> None:
    service = launch()
    health = get(f"{service.url}/healthz")
    assert (health.status, health.json()) == (200, {"status": "ok"})
    ready = get(f"{service.url}/readyz")
    assert (ready.status, ready.json()) == (200, {"status": "ok", "detail": "ok"})


def test_readiness_follows_the_schema_while_the_process_runs(
    launch: Callable[..., ServeProcess], service_database_url: str
) -> None:
    service = launch()
    # A release whose migrations have not run yet meets a database one revision behind.
    migrations.downgrade(service_database_url, previous_revision())
    behind = get(f"{service.url}/readyz")
    assert behind.status == 503
    assert behind.json() == {
        "status": "unavailable",
        "detail": "database schema is not at this version's migration",
    }
    # Alive all the same: restarting the process would not fix the schema.
    assert get(f"{service.url}/healthz").status == 200
    migrations.upgrade(service_database_url)
    assert get(f"{service.url}/readyz").status == 200


def test_an_unmigrated_database_is_not_ready(new_database_url: Callable[[], str]) -> None:
    database = Database(new_database_url())
    try:
        with web_only(database) as url:
            answer = get(f"{url}/readyz")
            assert answer.status == 503
            assert answer.json()["detail"] == "database schema is not at this version's migration"
            assert get(f"{url}/healthz").status == 200
    finally:
        database.dispose()


def test_a_schema_a_newer_version_migrated_keeps_this_replica_ready(
    new_database_url: Callable[[], str],
) -> None:
    """A rolling upgrade: the first new replica migrates; the old ones keep serving until they
    are replaced, instead of all leaving the Service at once."""
    url = new_database_url()
    migrations.upgrade(url)
    database = Database(url)
    try:
        with database.engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
        with web_only(database) as web:
            answer = get(f"{web}/readyz")
            assert (answer.status, answer.json()) == (
                200,
                {
                    "status": "ok",
                    "detail": "ok (the database schema is newer: a newer version migrated it)",
                },
            )
    finally:
        database.dispose()


def test_an_unreachable_database_is_not_ready_and_metrics_still_answer(
    tmp_path: Path, database_factory: DatabaseFactory
) -> None:
    if database_factory.backend == "postgresql":
        # Nothing listens on a port just freed: the server is down.
        url = f"postgresql://postgres@127.0.0.1:{free_port()}/firebreak"
    else:
        url = f"sqlite:///{tmp_path / 'data' / 'firebreak.db'}"
    database = Database(url)
    if database.backend == "sqlite":
        (tmp_path / "data" / "firebreak.db").mkdir()  # a file SQLite cannot open
    try:
        with web_only(database) as url:
            answer = get(f"{url}/readyz")
            assert answer.status == 503
            assert answer.json() == {
                "status": "unavailable",
                "detail": "database unreachable: OperationalError",
            }
            assert get(f"{url}/healthz").status == 200
            # A scrape during a database outage still returns the process's own metrics.
            assert ("firebreak_scheduler_lag_seconds", frozenset()) in scrape(url)
    finally:
        database.dispose()


# --------------------------------------------------------------------------------------------
# Metrics


def test_metrics_after_traffic(
    fake: HoldingFakeSlack,
    launch: Callable[..., ServeProcess],
    service_policy: Policy,
    service_database_url: str,
) -> None:
    before_start = utcnow()
    [overdue] = seed_overdue_incidents(service_database_url, fake, service_policy, count=1)
    # A Slack error on a best-effort step, and a rate limit that outlasts the client's retries.
    fake.fail("conversations.setTopic", error="restricted_action")
    fake.fail("pins.add", status=429, retry_after=0, times=4)
    service = launch()
    slack = SlackSimulator(fake, service.events_url, SECRET)
    database = Database(service_database_url)

    def incident(title: str, *, ready: Callable[[Incident], object]) -> Incident | None:
        with database.transaction() as session:
            found = session.exec(select(Incident).where(Incident.title == title)).first()
        return found if found is not None and ready(found) else None

    try:
        first = slack.slash_command("Checkout returns 500s", user="ana.garcia", channel="general")
        eventually(lambda: fake.response_posts(first.request.response_url), "the first declaration")
        slack.slash_command("", user="ben.okafor", channel="general")
        [form] = eventually(lambda: fake.open_views("ben.okafor"), "the declare form opens")
        slack.submit_view(
            form.id, {"title": "Payments API down", "severity": "SEV1"}, user="ben.okafor"
        )
        sev1 = eventually(
            lambda: incident("Payments API down", ready=lambda i: i.summary_message_ts),
            "the SEV1 incident is set up",
        )
        channel = sev1.slack_channel_id or ""
        slack.slash_command("resolve", user="ben.okafor", channel=channel)
        slack.slash_command("close", user="ben.okafor", channel=channel)
        eventually(
            lambda: incident("Payments API down", ready=lambda i: i.closed_at),
            "the SEV1 incident is closed",
        )
    finally:
        database.dispose()

    def reminders_went_out() -> Samples | None:
        samples = scrape(service.url)
        sent = [value(samples, "firebreak_reminders_sent_total", kind=k) for k in ("ack", "update")]
        # The pins rate-limited four times are retried by the effect runner until they land.
        pinned = value(samples, "firebreak_slack_api_calls_total", method="pins.add", outcome="ok")
        return samples if sent == [1.0, 1.0] and (pinned or 0) >= 2 else None

    samples = eventually(reminders_went_out, "the overdue reminders are counted")
    scraped = utcnow()

    # Incidents declared through Slack, by severity, and those still open (the one declared
    # outside Slack included); the closed SEV1 is no longer open.
    assert value(samples, "firebreak_incidents_declared_total", severity="SEV3") == 1
    assert value(samples, "firebreak_incidents_declared_total", severity="SEV1") == 1
    assert value(samples, "firebreak_incidents_open", severity="SEV3") == 2
    assert value(samples, "firebreak_incidents_open", severity="SEV1") is None

    # How fast Slack's requests were acknowledged: four commands, one form submission.
    ack = "firebreak_slack_ack_seconds"
    assert value(samples, f"{ack}_count", kind="command") == 4
    assert value(samples, f"{ack}_bucket", kind="command", le="+Inf") == 4
    assert value(samples, f"{ack}_count", kind="interaction") == 1
    assert (value(samples, f"{ack}_sum", kind="command") or 0) > 0

    # Web API calls, errors and rate limits.
    calls = "firebreak_slack_api_calls_total"
    assert value(samples, calls, method="conversations.create", outcome="ok") == 2
    assert value(samples, calls, method="conversations.setTopic", outcome="error") == 1
    # Every 429 is an error outcome, counted, and retried by the effect runner (not the client).
    assert value(samples, calls, method="pins.add", outcome="error") == 4
    assert value(samples, "firebreak_slack_rate_limited_total", method="pins.add") == 4
    assert (
        value(
            samples, "firebreak_effect_retries_total", kind="incident.refresh", reason="ratelimited"
        )
        or 0
    ) >= 4

    # The escalation was the latest reminder of the tick that sent both: it fell due
    # ``ack_within`` after the declaration and went out between start-up and the scrape.
    # (the channel also holds the summary its set-up posted). The messages follow the
    # incident's summary in its lane, retried through the rate limits: they come once it lands.
    eventually(
        lambda: len(reminder_messages(fake, overdue.channel)) >= 2, "the reminders are posted"
    )
    assert len(reminder_messages(fake, overdue.channel)) == 2
    ack_within = service_policy.severities[2].ack_within
    assert service_policy.severities[2].key == "SEV3" and ack_within is not None
    due = overdue.declared_at + ack_within
    lag = value(samples, "firebreak_scheduler_lag_seconds")
    assert lag is not None
    assert (before_start - due).total_seconds() <= lag <= (scraped - due).total_seconds()
