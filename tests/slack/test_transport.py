"""Slack calls reuse open connections (bench/tls.py: half of what a call cost was opening one),
and a failure keeps its meaning for retries: a connection that could not be opened sent nothing;
one that broke after the request was written may have reached Slack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.sandbox import FakeSlack
from bot.sandbox.tls import self_signed
from bot.slack.gateway import SlackCallError, SlackGateway, build_client
from tests.ports import free_port


@pytest.fixture(params=["http", "https"])
def slack(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeSlack]:
    tls = self_signed(tmp_path) if request.param == "https" else None
    if tls is not None:
        monkeypatch.setenv("SSL_CERT_FILE", str(tls.certificate))  # trust the fake
    with FakeSlack(seed=3, tls=tls) as fake:
        yield fake


@pytest.fixture
def gateway(slack: FakeSlack) -> Iterator[SlackGateway]:
    gateway = SlackGateway(build_client(slack.token, slack.api_url))
    yield gateway
    gateway.close()


def _posted(slack: FakeSlack, channel: str) -> list[str]:
    return [m.text for m in slack.messages(channel)]


def test_consecutive_calls_share_one_connection(slack: FakeSlack, gateway: SlackGateway) -> None:
    channel = slack.channel_id("incidents")
    for n in range(10):
        gateway.post_message(channel, f"update {n}")
    assert _posted(slack, channel) == [f"update {n}" for n in range(10)]
    assert slack.connections_opened == 1


def test_a_connection_slack_closed_while_idle_is_replaced_and_nothing_is_sent_twice(
    slack: FakeSlack, gateway: SlackGateway
) -> None:
    channel = slack.channel_id("incidents")
    gateway.post_message(channel, "first")
    slack.close_idle_connections()
    gateway.post_message(channel, "second")
    assert _posted(slack, channel) == ["first", "second"]
    assert slack.connections_opened == 2


def test_a_connection_that_breaks_after_sending_may_have_reached_slack(
    slack: FakeSlack, gateway: SlackGateway
) -> None:
    channel = slack.channel_id("incidents")
    gateway.post_message(channel, "opens the connection")
    slack.fail("chat.postMessage", mode="reset", after_work=True)
    with pytest.raises(SlackCallError) as broken:
        gateway.post_message(channel, "done, then the connection was reset")
    assert (broken.value.error, broken.value.transient, broken.value.ambiguous) == (
        "connection_failed",
        True,
        True,
    )
    # What the effects list and the timeline then say: not that Slack refused, or could not
    # be reached (it did the work).
    assert str(broken.value) == (
        "No answer from Slack to chat.postMessage (connection_failed). The connection was cut "
        "or timed out after the request was sent: Slack may have done it, so Firebreak checks "
        "before trying again."
    )
    gateway.post_message(channel, "after")  # a new connection
    assert _posted(slack, channel) == [
        "opens the connection",
        "done, then the connection was reset",
        "after",
    ]


def test_a_refused_connection_sent_nothing() -> None:
    port = free_port()  # a port nothing listens on
    gateway = SlackGateway(build_client("xoxb-test", f"http://127.0.0.1:{port}/api/"))
    try:
        with pytest.raises(SlackCallError) as refused:
            gateway.post_message("C1", "nobody hears this")
    finally:
        gateway.close()
    assert (refused.value.error, refused.value.transient, refused.value.ambiguous) == (
        "connection_failed",
        True,
        False,
    )
    assert str(refused.value) == (
        "No answer from Slack to chat.postMessage (connection_failed). Slack could not be "
        "reached; Firebreak will try again shortly."
    )


def test_answers_to_response_urls_reuse_the_open_connection(
    slack: FakeSlack, gateway: SlackGateway
) -> None:
    channel = slack.channel_id("incidents")
    person = slack.user_id("ana.garcia")
    gateway.post_message(channel, "opens the connection")
    urls = [slack.issue_response_url(channel, person) for _ in range(10)]
    assert [gateway.respond(url, f"answer {n}", None) for n, url in enumerate(urls)] == [200] * 10
    assert [[p.payload.get("text") for p in slack.response_posts(url)] for url in urls] == [
        [f"answer {n}"] for n in range(10)
    ]
    assert slack.connections_opened == 1


def test_a_response_url_answer_keeps_the_sdk_s_answers_and_errors(
    slack: FakeSlack, gateway: SlackGateway
) -> None:
    channel = slack.channel_id("incidents")
    person = slack.user_id("ana.garcia")
    url = slack.issue_response_url(channel, person)
    # Slack refusing an answer is a status, as the SDK's WebhookClient returns it.
    assert [gateway.respond(url, f"answer {n}", None) for n in range(6)] == [200] * 5 + [404]
    # A connection Slack closed while idle is replaced, and the answer is sent once.
    slack.close_idle_connections()
    again = slack.issue_response_url(channel, person)
    assert gateway.respond(again, "after a pause", None) == 200
    assert [p.payload.get("text") for p in slack.response_posts(again)] == ["after a pause"]
    assert slack.connections_opened == 2


def test_a_refused_response_url_sent_nothing() -> None:
    port = free_port()  # a port nothing listens on
    gateway = SlackGateway(build_client("xoxb-test", f"http://127.0.0.1:{port}/api/"))
    try:
        with pytest.raises(SlackCallError) as refused:
            gateway.respond(f"http://127.0.0.1:{port}/response/T1/abc", "nobody hears this", None)
    finally:
        gateway.close()
    assert (refused.value.error, refused.value.transient, refused.value.ambiguous) == (
        "connection_failed",
        True,
        False,
    )
