"""Faults as Slack really fails, seen through the real ``slack_sdk.WebClient``: every mode of
``FakeSlack.fail()``, before and after the work, with exact counts of calls and side effects."""

from __future__ import annotations

import threading

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)

from bot.sandbox import FakeSlack, FakeSlackError


@pytest.fixture
def raw(fake: FakeSlack) -> WebClient:
    """A client that never retries and gives up after two seconds, so each fault is seen as is."""
    return WebClient(token=fake.token, base_url=fake.api_url, retry_handlers=[], timeout=2)


def post(client: WebClient, fake: FakeSlack, text: str = "INC-1 declared") -> str:
    return str(client.chat_postMessage(channel=fake.channel_id("incidents"), text=text)["ts"])


# --------------------------------------------------------------------------------------------
# After the work: Slack did it, the client cannot know


def test_after_work_500_posts_the_message_and_answers_500(fake: FakeSlack, raw: WebClient) -> None:
    fake.fail("chat.postMessage", mode="500", after_work=True)
    with pytest.raises(SlackApiError) as failed:
        post(raw, fake)
    assert failed.value.response.status_code == 500
    assert failed.value.response["error"] == "internal_error"
    [message] = fake.messages("incidents")
    assert message.text == "INC-1 declared"
    [call] = fake.calls_to("chat.postMessage")
    assert (call.fault, call.status, call.ok, call.applied) == ("after_work:500", 500, False, True)
    assert call.outcome is not None and call.outcome["ts"] == message.ts


def test_after_work_reset_creates_the_channel_then_drops_the_connection(
    fake: FakeSlack, raw: WebClient
) -> None:
    fake.fail("conversations.create", mode="reset", after_work=True)
    with pytest.raises(ConnectionError):
        raw.conversations_create(name="inc-7-payments")
    created = fake.channel("inc-7-payments")
    assert created.creator == fake.bot_user_id
    [call] = fake.calls_to("conversations.create")
    assert (call.fault, call.status, call.response, call.applied) == (
        "after_work:reset",
        0,
        {},
        True,
    )
    assert call.outcome is not None and call.outcome["channel"]["id"] == created.id


def test_a_naive_retry_after_a_reset_meets_name_taken(fake: FakeSlack) -> None:
    """slack_sdk's default handler retries a reset connection once: the channel already
    exists, so the retry is refused; exactly one channel exists."""
    client = WebClient(
        token=fake.token,
        base_url=fake.api_url,
        retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=1)],
    )
    fake.fail("conversations.create", mode="reset", after_work=True)
    with pytest.raises(SlackApiError) as retried:
        client.conversations_create(name="inc-8-search")
    assert retried.value.response["error"] == "name_taken"
    assert [c.name for c in fake.channels()].count("inc-8-search") == 1
    calls = fake.calls_to("conversations.create")
    assert [(c.fault, c.applied) for c in calls] == [("after_work:reset", True), (None, False)]
    assert len(fake.calls_to("conversations.create", applied=True)) == 1


def test_after_work_hang_posts_then_never_answers(fake: FakeSlack) -> None:
    client = WebClient(token=fake.token, base_url=fake.api_url, retry_handlers=[], timeout=1)
    fake.fail("chat.postMessage", mode="hang", after_work=True, hang_seconds=60)
    with pytest.raises(TimeoutError):
        post(client, fake)
    fake.clear_failures()  # releases the held connection at once
    assert [m.text for m in fake.messages("incidents")] == ["INC-1 declared"]
    [call] = fake.calls_to("chat.postMessage")
    assert (call.fault, call.status, call.applied) == ("after_work:hang", 0, True)


def test_after_work_error_code_keeps_the_work(fake: FakeSlack, raw: WebClient) -> None:
    fake.fail("chat.postMessage", error="fatal_error", after_work=True)
    with pytest.raises(SlackApiError) as failed:
        post(raw, fake)
    assert (failed.value.response.status_code, failed.value.response["error"]) == (
        200,
        "fatal_error",
    )
    assert len(fake.messages("incidents")) == 1


def test_after_work_when_the_work_itself_fails_applies_nothing(
    fake: FakeSlack, raw: WebClient
) -> None:
    raw.conversations_create(name="inc-9-dns")
    fake.fail("conversations.create", mode="reset", after_work=True)
    with pytest.raises(ConnectionError):
        raw.conversations_create(name="inc-9-dns")
    last = fake.calls_to("conversations.create")[-1]
    assert last.applied is False
    assert last.outcome is not None and last.outcome["error"] == "name_taken"


# --------------------------------------------------------------------------------------------
# Before the work: nothing happened


def test_reset_before_the_work(fake: FakeSlack, raw: WebClient) -> None:
    fake.fail("chat.postMessage", mode="reset")
    with pytest.raises(ConnectionError):
        post(raw, fake)
    assert fake.messages("incidents") == []
    [call] = fake.calls_to("chat.postMessage")
    assert (call.fault, call.status, call.outcome, call.applied) == ("reset", 0, None, False)
    assert post(raw, fake), "times=1: the next call goes through"
    assert len(fake.messages("incidents")) == 1


def test_hang_until_the_client_times_out(fake: FakeSlack) -> None:
    client = WebClient(token=fake.token, base_url=fake.api_url, retry_handlers=[], timeout=1)
    fake.fail("chat.postMessage", mode="hang", hang_seconds=60)
    with pytest.raises(TimeoutError):
        post(client, fake)
    fake.clear_failures()
    assert fake.messages("incidents") == []
    assert [c.fault for c in fake.calls_to("chat.postMessage")] == ["hang"]


def test_a_hang_is_bounded_then_the_connection_closes(fake: FakeSlack) -> None:
    client = WebClient(token=fake.token, base_url=fake.api_url, retry_handlers=[], timeout=30)
    fake.fail("chat.postMessage", mode="hang", hang_seconds=0.2)
    with pytest.raises(ConnectionError):
        post(client, fake)
    assert fake.messages("incidents") == []


def test_stop_releases_a_hung_connection() -> None:
    fake = FakeSlack(seed=7).start()
    client = WebClient(token=fake.token, base_url=fake.api_url, retry_handlers=[], timeout=60)
    fake.fail("auth.test", mode="hang", hang_seconds=120)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            client.auth_test()
        except Exception as exc:
            errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    for _ in range(3000):  # at most 30 s for the call to arrive
        if fake.calls_to("auth.test"):
            break
        threading.Event().wait(0.01)
    fake.stop()
    caller.join(30)
    assert not caller.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], ConnectionError)


@pytest.mark.parametrize("status", [502, 503])
def test_html_error_page(fake: FakeSlack, raw: WebClient, status: int) -> None:
    fake.fail("conversations.create", mode="html", status=status)
    with pytest.raises(SlackApiError) as failed:
        raw.conversations_create(name="inc-10-cdn")
    response = failed.value.response
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("text/html")
    assert "Received a response in a non-JSON format" in str(response["error"])
    assert "inc-10-cdn" not in {c.name for c in fake.channels()}
    [call] = fake.calls_to("conversations.create")
    assert (call.fault, call.status, call.response, call.applied) == ("html", status, {}, False)


def test_html_error_page_defaults_to_503(fake: FakeSlack, raw: WebClient) -> None:
    fake.fail("auth.test", mode="html")
    with pytest.raises(SlackApiError) as failed:
        raw.auth_test()
    assert failed.value.response.status_code == 503


def test_garbage_body_with_status_200(fake: FakeSlack, raw: WebClient) -> None:
    fake.fail("chat.postMessage", mode="garbage")
    with pytest.raises(SlackApiError) as failed:
        post(raw, fake)
    assert failed.value.response.status_code == 200
    assert "non-JSON" in str(failed.value.response["error"])
    assert fake.messages("incidents") == []
    [call] = fake.calls_to("chat.postMessage")
    assert (call.fault, call.status, call.applied) == ("garbage", 200, False)


@pytest.mark.parametrize(
    ("retry_after", "header"),
    [(None, None), ("0", "0"), ("86400", "86400"), ("abc", "abc"), (30, "30")],
)
def test_429_retry_after_values(
    fake: FakeSlack, raw: WebClient, retry_after: str | int | None, header: str | None
) -> None:
    if retry_after is None:
        fake.fail("chat.postMessage", status=429, retry_after_header=False)
    else:
        fake.fail("chat.postMessage", status=429, retry_after=retry_after)
    with pytest.raises(SlackApiError) as limited:
        post(raw, fake)
    assert limited.value.response.status_code == 429
    assert limited.value.response["error"] == "ratelimited"
    assert limited.value.response.headers.get("Retry-After") == header
    assert fake.messages("incidents") == []
    [call] = fake.calls_to("chat.postMessage")
    assert (call.fault, call.applied) == ("429", False)


def test_slack_sdk_rate_limit_handler_chokes_on_a_non_numeric_retry_after(
    fake: FakeSlack,
) -> None:
    """A fact a caller must handle: slack_sdk's handler parses Retry-After with int()."""
    client = WebClient(
        token=fake.token,
        base_url=fake.api_url,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)],
    )
    fake.fail("chat.postMessage", status=429, retry_after="abc")
    with pytest.raises(ValueError):
        post(client, fake)
    assert fake.messages("incidents") == []


def test_fault_arguments_are_checked(fake: FakeSlack) -> None:
    with pytest.raises(FakeSlackError, match="rate-limit"):
        fake.fail("chat.postMessage", status=429, after_work=True)
    with pytest.raises(FakeSlackError, match="mode"):
        fake.fail("chat.postMessage", mode="explode")  # type: ignore[arg-type]
    with pytest.raises(FakeSlackError, match="hang_seconds"):
        fake.fail("chat.postMessage", mode="hang", hang_seconds=3600)
    with pytest.raises(FakeSlackError, match="times"):
        fake.fail("chat.postMessage", mode="reset", times=0)


def test_faults_last_for_times_then_stop(fake: FakeSlack, raw: WebClient) -> None:
    fake.fail("chat.postMessage", mode="500", after_work=True, times=2)
    for _ in range(2):
        with pytest.raises(SlackApiError):
            post(raw, fake)
    post(raw, fake)
    calls = fake.calls_to("chat.postMessage")
    assert [c.fault for c in calls] == ["after_work:500", "after_work:500", None]
    assert [c.applied for c in calls] == [True, True, True]
    assert len(fake.messages("incidents")) == 3
