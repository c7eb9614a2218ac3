"""What ``firebreak serve`` writes to its log: JSON lines only, timestamps in UTC, a request id
on every Slack request, and never a credential or the words of a private incident, even at
DEBUG."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlmodel import select

from bot.clock import utcnow
from bot.db import Database
from bot.models import EventKind, Incident, TimelineEvent
from bot.sandbox import BotReply, SlackSimulator
from tests.service.conftest import BOUND, SECRET, HoldingFakeSlack, ServeProcess, eventually

# One word no log line has any reason to contain, in each piece of the private incident.
TITLE = "Quillfeather payroll export readable by everyone"
SUMMARY = "Marrowbone spreadsheet with salaries shared company-wide"
MESSAGE = "The zephyrine bucket ACL was flipped to public at 02:10"
NOTE = "Contract ottershine-4471 with the payroll vendor is involved"
UPDATE = "Revoked the brackenfold link; auditing who downloaded it"
FORGED = "saltmarsh: this note comes with a forged signature"
PRIVATE_WORDS = (
    "quillfeather",
    "marrowbone",
    "zephyrine",
    "ottershine",
    "brackenfold",
    "saltmarsh",
)
APP_TOKEN = "xapp-1-A0FIREBREAK-1234567890123-0f1e2d3c4b5a69788796a5b4c3d2e1f0"


def assert_clean(service: ServeProcess, *secrets: str) -> list[dict[str, object]]:
    """Every line of stderr is a JSON log record and none names a secret or private words."""
    records = service.log_records()
    assert records, "the service logged nothing"
    for line in [*service.stderr, *service.stdout]:
        for secret in secrets:
            assert secret not in line, f"a credential is in the log: {line}"
        lowered = line.lower()
        for word in PRIVATE_WORDS:
            assert word not in lowered, f"private incident text is in the log: {line}"
    for record in records:
        assert {"time", "level", "logger", "message", "request_id"} <= record.keys(), record
    return records


def test_a_private_incident_at_debug_leaves_json_lines_without_secrets_or_its_words(
    fake: HoldingFakeSlack, launch: Callable[..., ServeProcess], service_database_url: str
) -> None:
    started = utcnow()
    # Slack refusing a step logs a warning; the topic it refused carries the title.
    fake.fail("conversations.setTopic", error="restricted_action")
    service = launch(FIREBREAK_LOG_LEVEL="DEBUG", TZ="America/New_York")
    slack = SlackSimulator(fake, service.events_url, SECRET)
    database = Database(service_database_url)

    def incident() -> Incident | None:
        with database.transaction() as session:
            found = session.exec(select(Incident)).first()
        return found if found is not None and found.summary_message_ts else None

    def recorded(kind: str) -> bool:
        with database.transaction() as session:
            return bool(session.exec(select(TimelineEvent).where(TimelineEvent.kind == kind)).all())

    replies: list[BotReply] = []
    try:
        replies.append(slack.slash_command("", user="ana.garcia", channel="general"))
        [form] = eventually(lambda: fake.open_views("ana.garcia"), "the declare form opens")
        declared = slack.submit_view(
            form.id,
            {"title": TITLE, "summary": SUMMARY, "private": ["private"]},
            user="ana.garcia",
        )
        replies.append(declared)
        channel = eventually(incident, "the private incident is set up").slack_channel_id or ""
        assert fake.channel_json(channel)["is_private"] is True

        ts = fake.user_says(channel, "ana.garcia", MESSAGE)
        replies.append(slack.react(channel, ts, user="ana.garcia", reaction="pushpin"))
        eventually(lambda: recorded(EventKind.MESSAGE), "the message is captured")
        replies.append(slack.slash_command(f"note {NOTE}", user="ana.garcia", channel=channel))
        eventually(lambda: recorded(EventKind.NOTE), "the note is recorded")
        replies.append(slack.slash_command(f"update {UPDATE}", user="ana.garcia", channel=channel))
        eventually(lambda: recorded(EventKind.STATUS_UPDATE), "the update is recorded")
        replies.append(slack.open_home("ben.okafor"))
        eventually(lambda: fake.home_view("ben.okafor"), "the home tab is published")
        forged = slack.slash_command(
            f"note {FORGED}", user="ana.garcia", channel=channel, signing="forged"
        )
        assert forged.status == 401
        replies.append(forged)
    finally:
        database.dispose()
    service.terminate()
    assert service.wait() == 0, service.output()
    finished = utcnow()

    records = assert_clean(service, fake.token, SECRET)
    assert service.stdout == []

    # Times are UTC, whatever the machine's timezone.
    for record in records:
        moment = datetime.fromisoformat(str(record["time"]))
        assert moment.utcoffset() is not None and moment.utcoffset() == UTC.utcoffset(None)
        assert started.replace(microsecond=0) <= moment <= finished

    # Each Slack request has its id in the log, and the work it started carries the same id.
    request_ids = [reply.headers.get("x-request-id") for reply in replies]
    assert all(request_ids) and len(set(request_ids)) == len(request_ids)
    logged_ids = {record["request_id"] for record in records}
    assert [rid for rid in request_ids if rid not in logged_ids] == []
    [declared_line] = [r for r in records if r["message"] == "incident declared"]
    assert declared_line["request_id"] == declared.headers["x-request-id"]

    # Nothing an operator would chase or wade through, even at DEBUG: no terminal colour
    # codes, no markdown parser tracing, no warning about Bolt's own reading of the token.
    assert not any("color_message" in r for r in records)
    assert not any(str(r["logger"]).startswith("markdown_it") for r in records)
    assert [r["message"] for r in records if str(r["logger"]).startswith("slack_bolt")] == []


def test_socket_mode_start_up_failure_keeps_the_tokens_out_of_the_log(
    fake: HoldingFakeSlack, launch: Callable[..., ServeProcess]
) -> None:
    # An app-level token this Slack does not know: start-up stops with one line naming the
    # setting (a configuration error, exit 2), and neither token appears anywhere.
    service = launch(wait=False, SLACK_APP_TOKEN=APP_TOKEN, FIREBREAK_LOG_LEVEL="DEBUG")
    assert service.wait() == 2
    output = service.output()
    assert APP_TOKEN not in output and fake.token not in output and SECRET not in output
    assert service.stderr[-1] == (
        "firebreak: environment: SLACK_APP_TOKEN: Slack refused it (invalid_auth): use this "
        "app's app-level token (xapp-...), with the connections:write scope"
    )
    assert "Traceback" not in output


# Whatever logs it: a library's exception message, a traceback, a nested structured field.
LEAKY_PROCESS = """
import logging, sys
from bot.observability import configure_logging

log_format, secret, token = sys.argv[1:]
configure_logging("DEBUG", log_format, [secret])
log = logging.getLogger("somewhere.deep")
try:
    raise RuntimeError("the server said no to " + token + " signed with " + secret)
except RuntimeError:
    log.exception("call failed")
log.warning("retrying", extra={"request": {"auth": [token]}}, stack_info=True)
"""


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_tracebacks_and_nested_fields_are_scrubbed_too(log_format: str) -> None:
    token = "xoxb-2024-5150-Zm9yZ2V0LW1lLW5vdA"
    result = subprocess.run(
        [sys.executable, "-c", LEAKY_PROCESS, log_format, SECRET, token],
        capture_output=True,
        text=True,
        timeout=BOUND,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "RuntimeError: the server said no to [redacted] signed with [redacted]" in result.stderr
    assert token not in result.stderr and SECRET not in result.stderr


RESPONSE_URL = "https://hooks.slack.com/commands/T0123ABC/4567890123/q5bXcDeFgHiJkLmNoPq"

CHATTY_PROCESS = """
import logging, sys
from bot.observability import configure_logging

configure_logging("DEBUG", "text", [])
logging.getLogger("httpx").info("HTTP Request: POST %s 200 OK", sys.argv[1])
path = sys.argv[1].removeprefix("https://hooks.slack.com")
logging.getLogger("urllib3.connectionpool").debug(
    '%s://%s:%s "%s %s %s" %s %s', "https", "hooks.slack.com", 443, "POST", path, "HTTP/1.1", 200, 2
)
logging.getLogger("slack_sdk.web.base_client").error("Failed to send a request to Slack")
logging.getLogger("bot.somewhere").warning("answer to %s failed", sys.argv[1])
"""


def test_a_response_url_never_reaches_the_log() -> None:
    """A ``response_url`` lets whoever holds it post as the app for 30 minutes: the lines
    httpx (INFO) and urllib3 (DEBUG) write per request, which name it, are not logged even at
    DEBUG, and any other line has it redacted. The Web
    API client's own ERROR per failed call is left to the gateway, which reports it once."""
    result = subprocess.run(
        [sys.executable, "-c", CHATTY_PROCESS, RESPONSE_URL],
        capture_output=True,
        text=True,
        timeout=BOUND,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].endswith("answer to [redacted] failed"), lines
    assert "hooks.slack.com" not in result.stderr


def test_a_misspelt_setting_is_named_at_start_up(launch: Callable[..., ServeProcess]) -> None:
    service = launch(FIREBREAK_LOG_LEVL="DEBUG", FIREBREAK_NOT_A_THING="1")
    warnings = [r["message"] for r in service.log_records() if r["level"] == "WARNING"]
    named = [w for w in warnings if w.startswith("environment variable FIREBREAK_")]
    assert sorted(named) == [  # each once
        "environment variable FIREBREAK_LOG_LEVL is not a Firebreak setting (did you mean "
        "FIREBREAK_LOG_LEVEL?): ignored",
        "environment variable FIREBREAK_NOT_A_THING is not a Firebreak setting: ignored",
    ]
