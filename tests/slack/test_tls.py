"""Slack over HTTPS: every call Firebreak makes to Slack verifies Slack's certificate, and they
all share one TLS context. Python otherwise builds a context per connection, loading every
system CA certificate each time (about 20 ms of CPU per Slack call, bench/tls.py)."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.sandbox import FakeSlack
from bot.sandbox.tls import self_signed
from bot.slack.gateway import SlackCallError, SlackGateway, build_client


@pytest.fixture
def slack(tmp_path: Path) -> Iterator[FakeSlack]:
    with FakeSlack(seed=3, tls=self_signed(tmp_path)) as fake:
        yield fake


def _count_contexts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    built: list[int] = []
    real: Callable[..., ssl.SSLContext] = ssl.create_default_context

    def counting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        built.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", counting)
    monkeypatch.setattr(ssl, "_create_default_https_context", counting)
    return built


def test_every_slack_call_over_https_shares_one_verified_tls_context(
    slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert slack.tls is not None
    monkeypatch.setenv("SSL_CERT_FILE", str(slack.tls.certificate))  # trust the fake
    gateway = SlackGateway(build_client(slack.token, slack.api_url))
    built = _count_contexts(monkeypatch)
    channel = slack.channel_id("incidents")
    person = slack.user_id("ana.garcia")
    answer_to = slack.issue_response_url(channel, person)

    posted = [gateway.post_message(channel, f"Update {n}") for n in range(5)]
    status = gateway.respond(answer_to, "Declared INC-7", None)
    file_id = gateway.start_upload("inc-7-postmortem.md", b"# INC-7 postmortem")

    assert len(set(posted)) == 5
    assert [m.text for m in slack.messages(channel)[-5:]] == [f"Update {n}" for n in range(5)]
    assert status == 200
    assert [(p.payload.get("text"), p.response_type) for p in slack.response_posts(answer_to)] == [
        ("Declared INC-7", "ephemeral")
    ]
    assert [(f.id, f.content) for f in slack.files()] == [(file_id, b"# INC-7 postmortem")]
    assert built == [], "a TLS context was built for a call instead of the client's one"


def test_a_certificate_slack_cannot_prove_is_refused(
    slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)  # the system's CAs do not know it
    gateway = SlackGateway(build_client(slack.token, slack.api_url))
    channel = slack.channel_id("incidents")
    answer_to = slack.issue_response_url(channel, slack.user_id("ana.garcia"))

    with pytest.raises(SlackCallError) as refused:
        gateway.post_message(channel, "Update")
    assert refused.value.error == "connection_failed"
    with pytest.raises(SlackCallError):
        gateway.respond(answer_to, "Declared INC-7", None)
    assert slack.calls == []  # nothing reached a server that could not prove who it is
    assert slack.response_posts() == []
