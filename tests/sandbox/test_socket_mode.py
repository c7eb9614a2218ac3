"""Socket Mode as slack_sdk's own client meets it: ``apps.connections.open`` with the app-level
token, ``hello``, envelopes acknowledged by ``envelope_id``, and reconnecting on ``disconnect``."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.builtin.client import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from bot.sandbox import FakeSlack, FakeSlackError, SimulatorError
from bot.sandbox.socket_mode import SocketModeServer

BOUND = 30.0


def open_url(fake: FakeSlack) -> str:
    web = WebClient(base_url=fake.api_url)
    return str(web.apps_connections_open(app_token=fake.app_token)["url"])


@pytest.fixture
def app(fake: FakeSlack) -> Iterator[tuple[SocketModeClient, list[SocketModeRequest]]]:
    """slack_sdk's Socket Mode client, answering each slash command with 'ok <text>'."""
    web = WebClient(token=fake.token, base_url=fake.api_url)
    client = SocketModeClient(app_token=fake.app_token, web_client=web)
    received: list[SocketModeRequest] = []

    def listener(client: SocketModeClient, request: SocketModeRequest) -> None:
        received.append(request)
        payload = {"text": f"ok {request.payload.get('text', '')}"}
        if request.type != "slash_commands":
            payload = {}
        client.send_socket_mode_response(
            SocketModeResponse(envelope_id=request.envelope_id, payload=payload)
        )

    client.socket_mode_request_listeners.append(listener)  # type: ignore[arg-type]
    client.connect()
    fake.socket_mode.wait_for_connections(1, BOUND)
    yield client, received
    client.close()


def test_apps_connections_open_takes_only_the_app_level_token(
    fake: FakeSlack, client: WebClient
) -> None:
    with pytest.raises(SlackApiError) as bot_token:
        client.apps_connections_open(app_token=fake.token)
    assert bot_token.value.response["error"] == "not_allowed_token_type"
    with pytest.raises(SlackApiError) as wrong:
        client.apps_connections_open(app_token="xapp-1-A0-1-deadbeef")
    assert wrong.value.response["error"] == "invalid_auth"
    app_client = WebClient(token=fake.app_token, base_url=fake.api_url)
    with pytest.raises(SlackApiError) as elsewhere:
        app_client.auth_test()
    assert elsewhere.value.response["error"] == "not_allowed_token_type"
    url = client.apps_connections_open(app_token=fake.app_token)["url"]
    assert url.startswith("ws://127.0.0.1:") and f"app_id={fake.app_id}" in url


def test_hello_then_an_envelope_acknowledged_by_its_id(fake: FakeSlack) -> None:
    url = open_url(fake)
    with connect(url, open_timeout=BOUND) as socket:
        hello = json.loads(socket.recv(timeout=BOUND))
        assert hello["type"] == "hello" and hello["num_connections"] == 1
        assert hello["connection_info"] == {"app_id": fake.app_id}
        envelope = fake.socket_mode.slash_command("hi", user="ana.garcia", channel="incidents")
        sent = json.loads(socket.recv(timeout=BOUND))
        assert sent["envelope_id"] == envelope.envelope_id
        assert (sent["type"], sent["accepts_response_payload"]) == ("slash_commands", True)
        assert sent["payload"]["command"] == "/incident" and sent["payload"]["text"] == "hi"
        assert sent["payload"]["user_id"] == fake.user_id("ana.garcia")
        socket.send(json.dumps({"envelope_id": envelope.envelope_id}))
        assert fake.socket_mode.wait_for_ack(envelope, BOUND) == {
            "envelope_id": envelope.envelope_id
        }
    assert fake.ephemerals() == [], "an acknowledgement without a payload shows nothing"


def test_events_api_envelopes_carry_retry_fields(fake: FakeSlack) -> None:
    url = open_url(fake)
    with connect(url, open_timeout=BOUND) as socket:
        socket.recv(timeout=BOUND)
        event = {"type": "event_callback", "event": {"type": "app_home_opened"}}
        envelope = fake.socket_mode.send("events_api", event)
        sent = json.loads(socket.recv(timeout=BOUND))
        assert (sent["accepts_response_payload"], sent["retry_attempt"], sent["retry_reason"]) == (
            False,
            0,
            "",
        )
        assert sent["payload"] == event
        assert not envelope.acked.is_set()


def test_a_url_is_good_for_one_connection(fake: FakeSlack) -> None:
    url = open_url(fake)
    with connect(url, open_timeout=BOUND) as socket:
        socket.recv(timeout=BOUND)
    with pytest.raises(InvalidStatus) as refused:
        connect(url, open_timeout=BOUND)
    assert refused.value.response.status_code == 403
    with pytest.raises(InvalidStatus):
        connect(url.replace("ticket=", "ticket=x"), open_timeout=BOUND)


def test_slack_sdk_client_gets_commands_and_its_answer_is_shown(
    fake: FakeSlack, app: tuple[SocketModeClient, list[SocketModeRequest]]
) -> None:
    _, received = app
    envelope = fake.socket_mode.slash_command("status", user="ana.garcia", channel="incidents")
    ack = fake.socket_mode.wait_for_ack(envelope, BOUND)
    assert ack == {"envelope_id": envelope.envelope_id, "payload": {"text": "ok status"}}
    assert [(r.type, r.envelope_id) for r in received] == [("slash_commands", envelope.envelope_id)]
    [shown] = fake.ephemerals(user="ana.garcia")
    assert (shown.text, shown.channel, shown.source) == (
        "ok status",
        fake.channel_id("incidents"),
        "ack",
    )


@pytest.mark.parametrize("reason", ["refresh_requested", "warning", "link_disabled"])
def test_disconnect_makes_the_client_open_a_new_connection(
    fake: FakeSlack, app: tuple[SocketModeClient, list[SocketModeRequest]], reason: str
) -> None:
    first = fake.socket_mode.slash_command("one", user="ana.garcia", channel="incidents")
    fake.socket_mode.wait_for_ack(first, BOUND)
    fake.socket_mode.disconnect(reason)  # type: ignore[arg-type]
    fake.socket_mode.wait_for_connections(2, BOUND)
    second = fake.socket_mode.slash_command("two", user="ana.garcia", channel="incidents")
    assert fake.socket_mode.wait_for_ack(second, BOUND)["payload"] == {"text": "ok two"}
    assert (first.connection, second.connection) == (1, 2)
    assert len(fake.calls_to("apps.connections.open")) == 2


def test_sending_needs_an_open_connection(fake: FakeSlack) -> None:
    with pytest.raises(FakeSlackError, match="no open connection"):
        fake.socket_mode.send("events_api", {"type": "event_callback"})


def test_commands_are_checked_as_a_person_could_type_them(fake: FakeSlack) -> None:
    with pytest.raises(SimulatorError, match="deactivated"):
        fake.socket_mode.slash_command("x", user="grace.lee", channel="incidents")


def test_stop_closes_connections_and_the_server(fake: FakeSlack) -> None:
    server = SocketModeServer(fake)
    url = server.open_url()
    with connect(url, open_timeout=BOUND) as socket:
        socket.recv(timeout=BOUND)
        server.stop()
        with pytest.raises(Exception):  # noqa: B017 (closed by the server: any close is fine)
            socket.recv(timeout=BOUND)
    assert server.open_connections == 0
