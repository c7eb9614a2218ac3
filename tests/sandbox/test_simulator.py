"""The simulator against a minimal Bolt app served over HTTP: Bolt verifies every signature and
parses every request as it parses Slack's, so what the bot under test receives is Slack-shaped."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier

from bot.sandbox import FakeSlack, SimulatorError, SlackSimulator
from tests.sandbox.conftest import SIGNING_SECRET, BoltHarness

Listener = Callable[..., None]

SLASH_FIELDS = {
    "token",
    "team_id",
    "team_domain",
    "channel_id",
    "channel_name",
    "user_id",
    "user_name",
    "command",
    "text",
    "api_app_id",
    "is_enterprise_install",
    "response_url",
    "trigger_id",
}


def option(value: str, text: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": text}, "value": value}


def input_block(block_id: str, element: dict[str, Any], *, optional: bool = False) -> Any:
    return {
        "type": "input",
        "block_id": block_id,
        "optional": optional,
        "label": {"type": "plain_text", "text": block_id.replace("_", " ")},
        "element": element,
    }


SEVERITIES = [option("SEV1", "SEV1 Critical"), option("SEV2", "SEV2 Major")]
DECLARE_VIEW = {
    "type": "modal",
    "callback_id": "declare",
    "private_metadata": '{"channel": "incidents"}',
    "title": {"type": "plain_text", "text": "Declare an incident"},
    "submit": {"type": "plain_text", "text": "Declare"},
    "blocks": [
        input_block("title_block", {"type": "plain_text_input", "action_id": "title"}),
        input_block(
            "severity_block",
            {
                "type": "static_select",
                "action_id": "severity",
                "options": SEVERITIES,
                "initial_option": SEVERITIES[1],
            },
        ),
        input_block("commander_block", {"type": "users_select", "action_id": "commander"}),
        input_block(
            "responders_block",
            {"type": "multi_users_select", "action_id": "responders"},
            optional=True,
        ),
        input_block(
            "channel_block",
            {"type": "conversations_select", "action_id": "channel"},
            optional=True,
        ),
        input_block(
            "flags_block",
            {
                "type": "checkboxes",
                "action_id": "flags",
                "options": [option("private", "Private"), option("customers", "Customers hit")],
            },
            optional=True,
        ),
        input_block(
            "impact_block",
            {
                "type": "radio_buttons",
                "action_id": "impact",
                "options": [option("low", "Low"), option("high", "High")],
            },
            optional=True,
        ),
        input_block(
            "started_on_block", {"type": "datepicker", "action_id": "started_on"}, optional=True
        ),
        input_block(
            "started_at_block", {"type": "timepicker", "action_id": "started_at"}, optional=True
        ),
        input_block(
            "detected_block",
            {"type": "datetimepicker", "action_id": "detected"},
            optional=True,
        ),
        input_block(
            "summary_block",
            {"type": "plain_text_input", "action_id": "summary", "multiline": True},
            optional=True,
        ),
    ],
}
SUMMARY_BLOCKS: list[dict[str, Any]] = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "*INC-1* checkout errors"}},
    {
        "type": "actions",
        "block_id": "summary_actions",
        "elements": [
            {
                "type": "button",
                "action_id": "acknowledge",
                "text": {"type": "plain_text", "text": "Acknowledge"},
                "value": "1",
            },
            {
                "type": "static_select",
                "action_id": "severity",
                "placeholder": {"type": "plain_text", "text": "Severity"},
                "options": SEVERITIES,
            },
            {"type": "users_select", "action_id": "commander"},
        ],
    },
]


def record_and_ack(store: list[dict[str, Any]]) -> Listener:
    """A Bolt listener that keeps the request body and acknowledges."""

    def listener(ack: Any, body: dict[str, Any]) -> None:
        store.append(body)
        ack()

    return listener


def post_summary(fake: FakeSlack) -> tuple[str, str]:
    client = WebClient(token=fake.token, base_url=fake.api_url)
    channel = fake.channel_id("incidents")
    ts = client.chat_postMessage(channel=channel, text="INC-1", blocks=SUMMARY_BLOCKS)["ts"]
    return channel, str(ts)


# --------------------------------------------------------------------------------------------
# Signatures


def test_every_kind_of_request_is_signed_as_slack_signs(
    fake: FakeSlack, slack: SlackSimulator, bolt: BoltHarness
) -> None:
    bolt.app.command("/incident")(lambda ack: ack())
    bolt.app.action("acknowledge")(lambda ack: ack())
    bolt.app.shortcut("declare_incident")(lambda ack: ack())
    bolt.app.event("reaction_added")(lambda event: None)
    channel, ts = post_summary(fake)
    fake.user_reacts(channel, ts, "ana.garcia", "eyes")
    replies = [
        slack.slash_command("status", user="ana.garcia", channel="incidents"),
        slack.click(channel, ts, "acknowledge", user="ana.garcia"),
        slack.global_shortcut("declare_incident", user="ana.garcia"),
        slack.event(slack.reaction_added_event(channel, ts, user="ana.garcia", reaction="eyes")),
        slack.url_verification(),
    ]
    verifier = SignatureVerifier(SIGNING_SECRET)
    for reply in replies:
        assert verifier.is_valid_request(reply.request.body, reply.request.headers)
        assert reply.status == 200, reply.text
        assert reply.problems == ()


@pytest.mark.parametrize("signing", ["forged", "unsigned", "stale"])
def test_forged_unsigned_and_stale_requests_are_refused(
    signing: Any, fake: FakeSlack, slack: SlackSimulator, bolt: BoltHarness
) -> None:
    handled: list[dict[str, Any]] = []
    bolt.app.command("/incident")(record_and_ack(handled))
    reply = slack.slash_command("declare", user="ana.garcia", channel="incidents", signing=signing)
    assert reply.status == 401
    assert handled == []
    assert not SignatureVerifier(SIGNING_SECRET).is_valid_request(
        reply.request.body, reply.request.headers
    )
    event = slack.event(
        {"type": "app_home_opened", "user": fake.user_id("ana.garcia")}, signing=signing
    )
    assert event.status == 401


def test_raw_bodies_are_sent_signed_as_given(slack: SlackSimulator) -> None:
    unknown = slack.send_raw('payload={"type":"not_a_slack_type"}')
    assert unknown.request.body == b'payload={"type":"not_a_slack_type"}'
    assert unknown.status == 404, "signature accepted, nothing handles it"
    assert slack.send_raw("payload=%7B%7D", signing="forged").status == 401


# --------------------------------------------------------------------------------------------
# Slash commands


def test_slash_command_fields_and_acknowledgement(
    fake: FakeSlack, slack: SlackSimulator, bolt: BoltHarness
) -> None:
    seen: list[dict[str, Any]] = []

    def handle(ack: Any, body: dict[str, Any], respond: Any) -> None:
        seen.append(body)
        ack(f"Declaring: {body['text']}")
        respond(text="INC-1 declared by <@" + body["user_id"] + ">", response_type="in_channel")

    bolt.app.command("/incident")(handle)
    reply = slack.slash_command(
        "declare SEV2 checkout errors", user="ana.garcia", channel="incidents"
    )
    assert reply.status == 200 and reply.problems == ()
    [body] = seen
    assert set(body) == SLASH_FIELDS
    assert body["text"] == "declare SEV2 checkout errors"
    assert body["command"] == "/incident"
    assert body["user_id"] == fake.user_id("ana.garcia") and body["user_name"] == "ana.garcia"
    assert body["channel_id"] == fake.channel_id("incidents")
    assert body["channel_name"] == "incidents"
    assert body["team_id"] == fake.team_id and body["api_app_id"] == fake.app_id
    assert body["trigger_id"] == reply.request.trigger_id
    shown = fake.ephemerals("incidents", user="ana.garcia")
    assert [e.text for e in shown] == ["Declaring: declare SEV2 checkout errors"]
    posts = fake.response_posts(body["response_url"])
    assert [p.response_type for p in posts] == ["in_channel"]
    assert [m.text for m in fake.messages("incidents")][-1].startswith("INC-1 declared by")


def test_slash_command_in_a_private_channel(
    fake: FakeSlack, slack: SlackSimulator, bolt: BoltHarness
) -> None:
    seen: list[dict[str, Any]] = []
    bolt.app.command("/incident")(record_and_ack(seen))
    fake.add_channel("sec-review", private=True, members=["ben.okafor"])
    slack.slash_command("help", user="ben.okafor", channel="sec-review")
    assert [body["channel_name"] for body in seen] == ["privategroup"]


def test_people_can_only_type_where_they_can(fake: FakeSlack, slack: SlackSimulator) -> None:
    with pytest.raises(SimulatorError, match="deactivated"):
        slack.slash_command("help", user="grace.lee", channel="incidents")
    fake.add_channel("quiet", members=["ana.garcia"])
    with pytest.raises(SimulatorError, match="not in #quiet"):
        slack.slash_command("help", user="dev.patel", channel="quiet")
    fake.archive("quiet")
    with pytest.raises(SimulatorError, match="archived"):
        slack.slash_command("help", user="ana.garcia", channel="quiet")


def test_an_answer_slower_than_slack_waits_is_dropped(fake: FakeSlack, bolt: BoltHarness) -> None:
    bolt.app.command("/incident")(lambda ack: ack("too late to be seen"))
    impatient = SlackSimulator(fake, bolt.url, SIGNING_SECRET, ack_deadline=0.0)
    reply = impatient.slash_command("help", user="ana.garcia", channel="incidents")
    assert reply.status == 200
    assert "Slack gives up" in reply.problems[0]
    assert fake.ephemerals("incidents") == []


# --------------------------------------------------------------------------------------------
# Clicks


def test_click_a_button_in_a_message(
    fake: FakeSlack, slack: SlackSimulator, bolt: BoltHarness
) -> None:
    seen: list[dict[str, Any]] = []

    def acknowledge(ack: Any, body: dict[str, Any], respond: Any) -> None:
        seen.append(body)
        ack()
        respond(text="Acknowledged by <@" + body["user"]["id"] + ">", replace_original=True)

    bolt.app.action("acknowledge")(acknowledge)
    channel, ts = post_summary(fake)
    reply = slack.click(channel, ts, "acknowledge", user="dev.patel")
    assert reply.status == 200 and reply.problems == ()
    [body] = seen
    assert body["type"] == "block_actions"
    [action] = body["actions"]
    assert (action["action_id"], action["block_id"], action["value"], action["type"]) == (
        "acknowledge",
        "summary_actions",
        "1",
        "button",
    )
    assert body["container"] == {
        "type": "message",
        "message_ts": ts,
        "channel_id": channel,
        "is_ephemeral": False,
    }
    assert body["message"]["ts"] == ts and body["message"]["bot_id"] == fake.bot_id
    assert body["channel"] == {"id": channel, "name": "incidents"}
    assert body["user"]["id"] == fake.user_id("dev.patel")
    assert fake.message(channel, ts).text.startswith("Acknowledged by")


def test_choose_in_selects(fake: FakeSlack, slack: SlackSimulator, bolt: BoltHarness) -> None:
    actions: list[dict[str, Any]] = []
    states: list[dict[str, Any]] = []

    def record(ack: Any, body: dict[str, Any]) -> None:
        actions.append(body["actions"][0])
        states.append(body["state"]["values"])
        ack()

    bolt.app.action("severity")(record)
    bolt.app.action("commander")(record)
    channel, ts = post_summary(fake)
    slack.click(channel, ts, "severity", user="ana.garcia", value="SEV1")
    slack.click(channel, ts, "commander", user="ana.garcia", value="ben.okafor")
    assert actions[0]["selected_option"]["value"] == "SEV1"
    assert states[0]["summary_actions"]["severity"]["selected_option"]["value"] == "SEV1"
    assert actions[1]["selected_user"] == fake.user_id("ben.okafor")
    with pytest.raises(SimulatorError, match="offers no option 'SEV9'"):
        slack.click(channel, ts, "severity", user="ana.garcia", value="SEV9")
    with pytest.raises(SimulatorError, match="deactivated"):
        slack.click(channel, ts, "commander", user="ana.garcia", value="grace.lee")


def test_click_and_reply_in_a_direct_message(
    fake: FakeSlack, slack: SlackSimulator, bolt: BoltHarness
) -> None:
    clicks: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    bolt.app.action("acknowledge")(record_and_ack(clicks))

    def on_message(event: dict[str, Any]) -> None:
        messages.append(event)

    bolt.app.event("message")(on_message)
    client = WebClient(token=fake.token, base_url=fake.api_url)
    dm = client.chat_postMessage(
        channel=fake.user_id("erin.walsh"), text="You are paged", blocks=SUMMARY_BLOCKS
    )
    with pytest.raises(SimulatorError, match="someone else's direct message"):
        slack.click(dm["channel"], dm["ts"], "acknowledge", user="ana.garcia")
    slack.click(dm["channel"], dm["ts"], "acknowledge", user="erin.walsh")
    slack.say(dm["channel"], "erin.walsh", "on it")
    assert clicks[0]["channel"] == {"id": dm["channel"], "name": "directmessage"}
    assert (messages[0]["channel_type"], messages[0]["text"]) == ("im", "on it")


def test_clicks_a_person_could_not_make_fail_loudly(fake: FakeSlack, slack: SlackSimulator) -> None:
    channel, ts = post_summary(fake)
    with pytest.raises(SimulatorError, match="acknowledge, severity, commander"):
        slack.click(channel, ts, "resolve", user="ana.garcia")
    with pytest.raises(SimulatorError, match="no message"):
        slack.click(channel, "1700000000.000001", "acknowledge", user="ana.garcia")
    with pytest.raises(SimulatorError, match="button"):
        slack.click(channel, ts, "acknowledge", user="ana.garcia", value="2")
    assert fake.calls_to("views.open") == []


def test_click_in_an_ephemeral_message(
    fake: FakeSlack, slack: SlackSimulator, bolt: BoltHarness
) -> None:
    seen: list[dict[str, Any]] = []

    def confirm(ack: Any, body: dict[str, Any], respond: Any) -> None:
        seen.append(body)
        ack()
        respond(delete_original=True)

    bolt.app.action("acknowledge")(confirm)
    client = WebClient(token=fake.token, base_url=fake.api_url)
    erin = fake.user_id("erin.walsh")
    ts = client.chat_postEphemeral(
        channel=fake.channel_id("incidents"), user=erin, text="Confirm?", blocks=SUMMARY_BLOCKS
    )["message_ts"]
    with pytest.raises(SimulatorError, match="someone else"):
        slack.click_ephemeral(ts, "acknowledge", user="ana.garcia")
    slack.click_ephemeral(ts, "acknowledge", user="erin.walsh")
    assert seen[0]["container"]["is_ephemeral"] is True
    assert "message" not in seen[0]
    assert fake.ephemerals(user=erin) == [], "respond(delete_original=True) removed it"


def test_click_in_the_home_tab(fake: FakeSlack, slack: SlackSimulator, bolt: BoltHarness) -> None:
    seen: list[dict[str, Any]] = []
    bolt.app.action("acknowledge")(record_and_ack(seen))
    client = WebClient(token=fake.token, base_url=fake.api_url)
    with pytest.raises(SimulatorError, match="Home tab"):
        slack.click_home("acknowledge", user="chloe.martin")
    home = client.views_publish(
        user_id=fake.user_id("chloe.martin"), view={"type": "home", "blocks": SUMMARY_BLOCKS}
    )["view"]
    slack.click_home("acknowledge", user="chloe.martin")
    assert seen[0]["container"] == {"type": "view", "view_id": home["id"]}
    assert seen[0]["view"]["type"] == "home"


# --------------------------------------------------------------------------------------------
# Modals


def open_declare_modal(fake: FakeSlack, slack: SlackSimulator, bolt: BoltHarness) -> str:
    def open_modal(ack: Any, body: dict[str, Any], client: WebClient) -> None:
        client.views_open(trigger_id=body["trigger_id"], view=DECLARE_VIEW)
        ack()

    bolt.app.command("/incident")(open_modal)
    reply = slack.slash_command("", user="ana.garcia", channel="incidents")
    assert reply.status == 200, reply.text
    [view] = fake.open_views("ana.garcia")
    return view.id


def test_submit_a_modal_with_every_kind_of_input(
    fake: FakeSlack, slack: SlackSimulator, bolt: BoltHarness
) -> None:
    submitted: list[dict[str, Any]] = []

    def on_submit(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        submitted.append(body)
        ack()

    bolt.app.view("declare")(on_submit)
    view_id = open_declare_modal(fake, slack, bolt)
    reply = slack.submit_view(
        view_id,
        {
            "title": "Checkout errors",
            "commander": "ben.okafor",
            "responders": ["dev.patel", "erin.walsh"],
            "channel": "incidents",
            "flags": ["customers"],
            "impact": "high",
            "started_on": "2024-05-01",
            "started_at": "03:12",
            "detected": 1714533120,
        },
        user="ana.garcia",
    )
    assert reply.status == 200 and reply.problems == ()
    [body] = submitted
    assert body["type"] == "view_submission"
    view = body["view"]
    assert view["id"] == view_id and view["callback_id"] == "declare"
    assert view["private_metadata"] == '{"channel": "incidents"}' and view["hash"]
    values = view["state"]["values"]
    assert values["title_block"]["title"] == {
        "type": "plain_text_input",
        "value": "Checkout errors",
    }
    assert values["severity_block"]["severity"]["selected_option"]["value"] == "SEV2"
    assert values["commander_block"]["commander"]["selected_user"] == fake.user_id("ben.okafor")
    assert values["responders_block"]["responders"]["selected_users"] == [
        fake.user_id("dev.patel"),
        fake.user_id("erin.walsh"),
    ]
    assert values["channel_block"]["channel"]["selected_conversation"] == fake.channel_id(
        "incidents"
    )
    assert [o["value"] for o in values["flags_block"]["flags"]["selected_options"]] == ["customers"]
    assert values["impact_block"]["impact"]["selected_option"]["value"] == "high"
    assert values["started_on_block"]["started_on"]["selected_date"] == "2024-05-01"
    assert values["started_at_block"]["started_at"]["selected_time"] == "03:12"
    assert values["detected_block"]["detected"]["selected_date_time"] == 1714533120
    assert values["summary_block"]["summary"] == {"type": "plain_text_input", "value": None}
    assert fake.open_views("ana.garcia") == [], "a plain ack closes the modal"


def test_validation_errors_keep_the_modal_open(
    fake: FakeSlack, slack: SlackSimulator, bolt: BoltHarness
) -> None:
    def on_submit(ack: Any, view: dict[str, Any]) -> None:
        title = view["state"]["values"]["title_block"]["title"]["value"]
        if len(title) < 5:
            ack(response_action="errors", errors={"title_block": "Say a little more"})
        else:
            ack(response_action="update", view={**DECLARE_VIEW, "callback_id": "declared"})

    bolt.app.view("declare")(on_submit)
    view_id = open_declare_modal(fake, slack, bolt)
    values = {"title": "db", "commander": "ben.okafor"}
    rejected = slack.submit_view(view_id, values, user="ana.garcia")
    assert rejected.validation_errors == {"title_block": "Say a little more"}
    assert [v.id for v in fake.open_views("ana.garcia")] == [view_id]
    accepted = slack.submit_view(view_id, {**values, "title": "db latency"}, user="ana.garcia")
    assert accepted.problems == ()
    [still_open] = fake.open_views("ana.garcia")
    assert still_open.payload["callback_id"] == "declared"


def test_submissions_a_person_could_not_make_are_refused(
    fake: FakeSlack, slack: SlackSimulator, bolt: BoltHarness
) -> None:
    view_id = open_declare_modal(fake, slack, bolt)
    with pytest.raises(SimulatorError, match="required input"):
        slack.submit_view(view_id, {"commander": "ben.okafor"}, user="ana.garcia")
    with pytest.raises(SimulatorError, match="no input"):
        slack.submit_view(
            view_id, {"title": "x", "commander": "ben.okafor", "owner": "x"}, user="ana.garcia"
        )
    with pytest.raises(SimulatorError, match="offers no option"):
        slack.submit_view(
            view_id, {"title": "x", "commander": "ben.okafor", "severity": "P1"}, user="ana.garcia"
        )
    with pytest.raises(SimulatorError, match="someone else"):
        slack.submit_view(view_id, {"title": "x"}, user="dev.patel")
    assert [v.id for v in fake.open_views("ana.garcia")] == [view_id]


# --------------------------------------------------------------------------------------------
# Shortcuts and events


def test_shortcuts(fake: FakeSlack, slack: SlackSimulator, bolt: BoltHarness) -> None:
    seen: list[dict[str, Any]] = []
    bolt.app.shortcut("declare_incident")(record_and_ack(seen))
    bolt.app.message_shortcut("capture")(record_and_ack(seen))
    channel = fake.channel_id("incidents")
    ts = fake.user_says(channel, "erin.walsh", "Rollback done at 03:40")
    slack.global_shortcut("declare_incident", user="erin.walsh")
    slack.message_shortcut("capture", channel, ts, user="ana.garcia")
    assert [(b["type"], b["callback_id"]) for b in seen] == [
        ("shortcut", "declare_incident"),
        ("message_action", "capture"),
    ]
    assert seen[1]["message"]["text"] == "Rollback done at 03:40"
    assert seen[1]["message_ts"] == ts and seen[1]["channel"]["id"] == channel


def test_events_reach_bolt_shaped_as_slack_sends_them(
    fake: FakeSlack, slack: SlackSimulator, bolt: BoltHarness
) -> None:
    seen: list[dict[str, Any]] = []

    def record(event: dict[str, Any]) -> None:
        seen.append(event)

    for kind in ("message", "reaction_added", "reaction_removed", "app_home_opened"):
        bolt.app.event(kind)(record)
    bolt.app.event("member_joined_channel")(record)
    channel = fake.channel_id("incidents")
    ts, said = slack.say(channel, "dev.patel", "p99 back under 200ms")
    _, threaded = slack.say(channel, "erin.walsh", "confirmed", thread_ts=ts)
    slack.react(channel, ts, user="ana.garcia", reaction="pushpin")
    slack.unreact(channel, ts, user="ana.garcia", reaction="pushpin")
    slack.open_home("ana.garcia")
    newcomer = fake.add_user("ivan.petrov", real_name="Ivan Petrov")
    slack.join(channel, newcomer)
    assert [r.status for r in (said, threaded)] == [200, 200]
    message, reply, added, removed, home, joined = seen
    assert (message["type"], message["text"], message["ts"]) == (
        "message",
        "p99 back under 200ms",
        ts,
    )
    assert message["user"] == fake.user_id("dev.patel") and message["channel_type"] == "channel"
    assert "thread_ts" not in message
    assert reply["thread_ts"] == ts and reply["parent_user_id"] == fake.user_id("dev.patel")
    assert added["type"] == "reaction_added" and added["reaction"] == "pushpin"
    assert added["item"] == {"type": "message", "channel": channel, "ts": ts}
    assert added["item_user"] == fake.user_id("dev.patel")
    assert removed["type"] == "reaction_removed"
    assert home["type"] == "app_home_opened" and home["tab"] == "home"
    assert home["channel"] == fake.im_channel("ana.garcia")
    assert joined["type"] == "member_joined_channel" and joined["user"] == newcomer
    with pytest.raises(SimulatorError, match="has no :eyes:"):
        slack.reaction_added_event(channel, ts, user="ana.garcia", reaction="eyes")


def test_event_retries_repeat_the_delivery_with_retry_headers(
    fake: FakeSlack, slack: SlackSimulator, bolt: BoltHarness
) -> None:
    deliveries: list[tuple[str, list[str]]] = []

    def record(body: dict[str, Any], request: Any) -> None:
        deliveries.append((body["event_id"], list(request.headers.get("x-slack-retry-num", []))))

    bolt.app.event("message")(record)
    channel = fake.channel_id("incidents")
    ts = fake.user_says(channel, "ana.garcia", "is anyone looking at this?")
    first = slack.event(slack.message_event(channel, ts))
    second = slack.retry(first)
    third = slack.retry(second, reason="http_error")
    assert third.request.headers["X-Slack-Retry-Reason"] == "http_error"
    assert second.request.body == first.request.body
    event_id = first.request.payload["event_id"]
    assert deliveries == [(event_id, []), (event_id, ["1"]), (event_id, ["2"])]
    envelope = first.request.payload
    assert envelope["type"] == "event_callback" and envelope["api_app_id"] == fake.app_id
    assert envelope["authorizations"][0]["user_id"] == fake.bot_user_id
    slack.retry(third)
    with pytest.raises(SimulatorError, match="1 to 3 times"):
        slack.retry(slack.retry(third))


def test_url_verification_echoes_the_challenge(slack: SlackSimulator) -> None:
    reply = slack.url_verification("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P")
    assert reply.status == 200
    assert reply.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}
