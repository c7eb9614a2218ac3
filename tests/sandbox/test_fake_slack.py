"""The fake Slack, driven by the real ``slack_sdk.WebClient`` as the bot drives Slack."""

from __future__ import annotations

import json
import threading
import urllib.request
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.webhook import WebhookClient

from bot.sandbox import FakeSlack, FakeSlackError

SECTION = {"type": "section", "text": {"type": "mrkdwn", "text": "*SEV2* database latency"}}
BUTTONS = {
    "type": "actions",
    "block_id": "summary_actions",
    "elements": [
        {
            "type": "button",
            "action_id": "acknowledge",
            "text": {"type": "plain_text", "text": "Acknowledge"},
            "value": "42",
        }
    ],
}
MODAL = {
    "type": "modal",
    "callback_id": "declare",
    "title": {"type": "plain_text", "text": "Declare an incident"},
    "submit": {"type": "plain_text", "text": "Declare"},
    "blocks": [
        {
            "type": "input",
            "block_id": "title",
            "label": {"type": "plain_text", "text": "Title"},
            "element": {"type": "plain_text_input", "action_id": "title"},
        }
    ],
}


def api_error(excinfo: pytest.ExceptionInfo[SlackApiError]) -> str:
    return str(excinfo.value.response["error"])


def raw_post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request) as response:
        return response.status, json.loads(response.read())


# --------------------------------------------------------------------------------------------
# Authentication and request formats


def test_auth_test_describes_the_bot(fake: FakeSlack, client: WebClient) -> None:
    response = client.auth_test()
    assert response["user_id"] == fake.bot_user_id
    assert response["bot_id"] == fake.bot_id
    assert response["team_id"] == fake.team_id
    assert fake.token.startswith("xoxb-")


def test_missing_and_unknown_tokens_are_refused(fake: FakeSlack) -> None:
    with pytest.raises(SlackApiError) as missing:
        WebClient(base_url=fake.api_url).auth_test()
    assert api_error(missing) == "not_authed"
    with pytest.raises(SlackApiError) as unknown:
        WebClient(token="xoxb-not-the-token", base_url=fake.api_url).auth_test()
    assert api_error(unknown) == "invalid_auth"


def test_unknown_method(client: WebClient) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        client.api_call("incidents.declare")
    assert api_error(excinfo) == "unknown_method"


def test_token_in_a_form_field_and_json_bodies_with_bearer(fake: FakeSlack) -> None:
    channel = fake.channel_id("incidents")
    form = f"token={fake.token}&channel={channel}&text=from+a+form".encode()
    status, body = raw_post(
        fake.api_url + "chat.postMessage",
        form,
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 200 and body["ok"], body
    status, body = raw_post(
        fake.api_url + "chat.postMessage",
        json.dumps({"channel": channel, "text": "from JSON", "blocks": [SECTION]}).encode(),
        {"Content-Type": "application/json", "Authorization": f"Bearer {fake.token}"},
    )
    assert status == 200 and body["ok"], body
    assert [m.text for m in fake.messages(channel)] == ["from a form", "from JSON"]
    assert fake.messages(channel)[1].blocks[0]["text"] == SECTION["text"]
    recorded = fake.calls_to("chat.postMessage")
    assert "token" not in recorded[0].args
    assert recorded[1].args["blocks"][0]["type"] == "section"


def test_every_call_is_recorded_with_its_outcome(fake: FakeSlack, client: WebClient) -> None:
    client.auth_test()
    with pytest.raises(SlackApiError):
        client.users_info(user="UNOBODY")
    assert [(c.method, c.ok, c.error, c.status) for c in fake.calls] == [
        ("auth.test", True, None, 200),
        ("users.info", False, "user_not_found", 200),
    ]
    assert fake.calls[1].args == {"user": "UNOBODY"}
    assert fake.calls[0].at.tzinfo is not None


# --------------------------------------------------------------------------------------------
# Messages, updates, pins, reactions


def test_post_update_and_pin_a_summary(fake: FakeSlack, client: WebClient) -> None:
    channel = fake.channel_id("incidents")
    posted = client.chat_postMessage(channel=channel, text="INC-1", blocks=[SECTION, BUTTONS])
    ts = posted["ts"]
    assert posted["channel"] == channel
    assert posted["message"]["bot_id"] == fake.bot_id
    stored = fake.message(channel, ts)
    assert stored.user == fake.bot_user_id and stored.text == "INC-1"
    assert stored.blocks[0]["block_id"], "Slack fills in missing block ids"

    updated = client.chat_update(channel=channel, ts=ts, text="INC-1 resolved", blocks=[SECTION])
    assert updated["ts"] == ts
    after = fake.message(channel, ts)
    assert after.text == "INC-1 resolved"
    assert [b["type"] for b in after.blocks] == ["section"]
    assert after.edited is not None

    client.pins_add(channel=channel, timestamp=ts)
    assert fake.pins(channel) == [ts]
    with pytest.raises(SlackApiError) as again:
        client.pins_add(channel=channel, timestamp=ts)
    assert api_error(again) == "already_pinned"
    items = client.pins_list(channel=channel)["items"]
    assert [i["message"]["ts"] for i in items] == [ts]
    with pytest.raises(SlackApiError) as missing:
        client.pins_add(channel=channel, timestamp="1.000001")
    assert api_error(missing) == "message_not_found"


def test_update_keeps_blocks_unless_given_and_refuses_other_authors(
    fake: FakeSlack, client: WebClient
) -> None:
    channel = fake.channel_id("incidents")
    ts = client.chat_postMessage(channel=channel, text="summary", blocks=[SECTION])["ts"]
    client.chat_update(channel=channel, ts=ts, text="new text only")
    assert fake.message(channel, ts).blocks[0]["text"] == SECTION["text"]
    client.chat_update(channel=channel, ts=ts, text="no blocks", blocks=[])
    assert fake.message(channel, ts).blocks == []

    person_ts = fake.user_says(channel, "ana.garcia", "I see errors on checkout")
    with pytest.raises(SlackApiError) as foreign:
        client.chat_update(channel=channel, ts=person_ts, text="edited by the bot")
    assert api_error(foreign) == "cant_update_message"
    with pytest.raises(SlackApiError) as unknown:
        client.chat_update(channel=channel, ts="123.456", text="x")
    assert api_error(unknown) == "message_not_found"


def test_thread_replies_and_history_windows(fake: FakeSlack, client: WebClient) -> None:
    channel = fake.channel_id("incidents")
    first = client.chat_postMessage(channel=channel, text="one")["ts"]
    second = client.chat_postMessage(channel=channel, text="two")["ts"]
    reply = client.chat_postMessage(channel=channel, text="reply", thread_ts=first)["ts"]
    third = client.chat_postMessage(channel=channel, text="three")["ts"]

    assert [m.text for m in fake.replies(channel, first)] == ["reply"]
    assert [m.text for m in fake.messages(channel)] == ["one", "two", "three"]
    thread = client.conversations_replies(channel=channel, ts=first)["messages"]
    assert [m["ts"] for m in thread] == [first, reply]
    assert thread[0]["reply_count"] == 1
    # as Slack does, the thread's first message leads whatever the bounds
    bounded = client.conversations_replies(
        channel=channel, ts=reply, oldest=reply, latest=reply, inclusive=True, limit=2
    )["messages"]
    assert [m["ts"] for m in bounded] == [first, reply]

    one = client.conversations_history(
        channel=channel, latest=second, oldest=second, inclusive=True, limit=1
    )
    assert [m["text"] for m in one["messages"]] == ["two"]
    exclusive = client.conversations_history(channel=channel, latest=third, oldest=first)
    assert [m["text"] for m in exclusive["messages"]] == ["two"]
    newest = client.conversations_history(channel=channel, limit=2)
    assert [m["text"] for m in newest["messages"]] == ["three", "two"]
    assert newest["has_more"] is True
    rest = client.conversations_history(
        channel=channel, limit=2, cursor=newest["response_metadata"]["next_cursor"]
    )
    assert "one" in [m["text"] for m in rest["messages"]]


def test_post_message_argument_checks(fake: FakeSlack, client: WebClient) -> None:
    channel = fake.channel_id("incidents")
    with pytest.raises(SlackApiError) as no_text:
        client.api_call("chat.postMessage", json={"channel": channel})
    assert api_error(no_text) == "no_text"
    with pytest.raises(SlackApiError) as too_long:
        client.chat_postMessage(channel=channel, text="x" * 40_001)
    assert api_error(too_long) == "msg_too_long"
    client.chat_postMessage(channel=channel, text="x" * 40_000)
    with pytest.raises(SlackApiError) as nowhere:
        client.chat_postMessage(channel="CNOSUCHONE", text="hello")
    assert api_error(nowhere) == "channel_not_found"
    with pytest.raises(SlackApiError) as outside:
        client.chat_postMessage(channel=fake.channel_id("general"), text="hello")
    assert api_error(outside) == "not_in_channel"


def test_invalid_blocks_are_rejected_with_the_reasons(fake: FakeSlack, client: WebClient) -> None:
    channel = fake.channel_id("incidents")
    header = {"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postMessage(channel=channel, text="fallback", blocks=[header])
    assert api_error(excinfo) == "invalid_blocks"
    assert any("blocks[0].text.text" in e for e in excinfo.value.response["errors"])
    assert excinfo.value.response["response_metadata"]["messages"][0].startswith("[ERROR]")
    too_many = [SECTION] * 51
    with pytest.raises(SlackApiError) as crowded:
        client.chat_postMessage(channel=channel, text="fallback", blocks=too_many)
    assert api_error(crowded) == "invalid_blocks"
    assert fake.messages(channel) == []


def test_removed_bot_and_archived_channel(fake: FakeSlack, client: WebClient) -> None:
    channel = fake.channel_id("incidents")
    ts = client.chat_postMessage(channel=channel, text="before")["ts"]
    fake.remove_bot_from_channel(channel)
    with pytest.raises(SlackApiError) as removed:
        client.chat_postMessage(channel=channel, text="after")
    assert api_error(removed) == "not_in_channel"
    client.conversations_join(channel=channel)
    fake.archive(channel)
    with pytest.raises(SlackApiError) as archived:
        client.chat_postMessage(channel=channel, text="after")
    assert api_error(archived) == "is_archived"
    with pytest.raises(SlackApiError) as pin:
        client.pins_add(channel=channel, timestamp=ts)
    assert api_error(pin) == "is_archived"


def test_ephemeral_messages_only_reach_members(fake: FakeSlack, client: WebClient) -> None:
    channel = fake.channel_id("incidents")
    ana = fake.user_id("ana.garcia")
    ts = client.chat_postEphemeral(channel=channel, user=ana, text="only you")["message_ts"]
    assert [(e.ts, e.text) for e in fake.ephemerals(channel, user=ana)] == [(ts, "only you")]
    outsider = fake.add_user("zoe.outsider", real_name="Zoe Outsider")
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postEphemeral(channel=channel, user=outsider, text="hi")
    assert api_error(excinfo) == "user_not_in_channel"


def test_permalink_delete_and_reactions(fake: FakeSlack, client: WebClient) -> None:
    channel = fake.channel_id("incidents")
    ts = client.chat_postMessage(channel=channel, text="status")["ts"]
    link = client.chat_getPermalink(channel=channel, message_ts=ts)["permalink"]
    assert link == f"https://acme.slack.com/archives/{channel}/p{ts.replace('.', '')}"
    client.reactions_add(channel=channel, timestamp=ts, name=":white_check_mark:")
    assert fake.message(channel, ts).reactions == {"white_check_mark": [fake.bot_user_id]}
    with pytest.raises(SlackApiError) as twice:
        client.reactions_add(channel=channel, timestamp=ts, name="white_check_mark")
    assert api_error(twice) == "already_reacted"
    client.chat_delete(channel=channel, ts=ts)
    assert fake.messages(channel) == []
    with pytest.raises(SlackApiError) as gone:
        client.chat_getPermalink(channel=channel, message_ts=ts)
    assert api_error(gone) == "message_not_found"


def test_direct_messages_by_user_id(fake: FakeSlack, client: WebClient) -> None:
    erin = fake.user_id("erin.walsh")
    posted = client.chat_postMessage(channel=erin, text="You are on call for INC-7")
    assert posted["channel"] == fake.im_channel(erin)
    assert [m.text for m in fake.messages(posted["channel"])] == ["You are on call for INC-7"]


# --------------------------------------------------------------------------------------------
# Channels


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("", "invalid_name_required"),
        ("Inc-1-DB", "invalid_name_specials"),
        ("inc 1", "invalid_name_specials"),
        ("inc-1-ümlaut", "invalid_name_specials"),
        ("inc.1", "invalid_name_specials"),
        ("x" * 81, "invalid_name_maxlength"),
        ("--", "invalid_name_punctuation"),
        ("incidents", "name_taken"),
    ],
)
def test_channel_name_rules(client: WebClient, name: str, error: str) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        client.conversations_create(name=name)
    assert api_error(excinfo) == error


def test_channel_names_that_slack_accepts(fake: FakeSlack, client: WebClient) -> None:
    for name in ("inc-1-db_latency", "x" * 80, "2024"):
        channel = client.conversations_create(name=name, is_private=True)["channel"]
        assert channel["name"] == name and channel["is_private"] and channel["is_member"]
        assert fake.members(channel["id"]) == [fake.bot_user_id]


def test_archived_channel_names_stay_taken(fake: FakeSlack, client: WebClient) -> None:
    channel = client.conversations_create(name="inc-9-old")["channel"]["id"]
    client.conversations_archive(channel=channel)
    with pytest.raises(SlackApiError) as excinfo:
        client.conversations_create(name="inc-9-old")
    assert api_error(excinfo) == "name_taken"
    with pytest.raises(SlackApiError) as again:
        client.conversations_archive(channel=channel)
    assert api_error(again) == "already_archived"


def test_invite_single_and_partial_failures(fake: FakeSlack, client: WebClient) -> None:
    channel = client.conversations_create(name="inc-2-checkout")["channel"]["id"]
    ana, dev = fake.user_id("ana.garcia"), fake.user_id("dev.patel")
    client.conversations_invite(channel=channel, users=ana)
    assert ana in fake.members(channel)

    with pytest.raises(SlackApiError) as again:
        client.conversations_invite(channel=channel, users=ana)
    assert api_error(again) == "already_in_channel"

    with pytest.raises(SlackApiError) as partial:
        client.conversations_invite(channel=channel, users=[dev, "UNOBODY00"])
    assert api_error(partial) == "user_not_found"
    assert partial.value.response["errors"] == [
        {"user": "UNOBODY00", "ok": False, "error": "user_not_found"}
    ]
    assert dev not in fake.members(channel), "one failure invites nobody"

    with pytest.raises(SlackApiError) as forced:
        client.conversations_invite(channel=channel, users=[dev, "UNOBODY00"], force=True)
    assert api_error(forced) == "user_not_found"
    assert dev in fake.members(channel), "force=true invites the valid ones"

    with pytest.raises(SlackApiError) as itself:
        client.conversations_invite(channel=channel, users=fake.bot_user_id)
    assert api_error(itself) == "cant_invite_self"

    joins = [m for m in fake.messages(channel, include_system=True) if m.subtype]
    assert [m.user for m in joins] == [fake.bot_user_id, ana, dev]


def test_invite_needs_the_bot_in_an_active_channel(fake: FakeSlack, client: WebClient) -> None:
    channel = client.conversations_create(name="inc-3-dns")["channel"]["id"]
    erin = fake.user_id("erin.walsh")
    fake.remove_bot_from_channel(channel)
    with pytest.raises(SlackApiError) as removed:
        client.conversations_invite(channel=channel, users=erin)
    assert api_error(removed) == "not_in_channel"
    fake.archive(channel)
    with pytest.raises(SlackApiError) as archived:
        client.conversations_invite(channel=channel, users=erin)
    assert api_error(archived) == "is_archived"
    with pytest.raises(SlackApiError) as unknown:
        client.conversations_invite(channel="CNOSUCHONE", users=erin)
    assert api_error(unknown) == "channel_not_found"


def test_private_channels_are_invisible_to_outsiders(fake: FakeSlack, client: WebClient) -> None:
    secret = fake.add_channel("security-war-room", private=True, members=["ana.garcia"])
    with pytest.raises(SlackApiError) as excinfo:
        client.conversations_info(channel=secret)
    assert api_error(excinfo) == "channel_not_found"


def test_topic_and_purpose_limits(fake: FakeSlack, client: WebClient) -> None:
    channel = client.conversations_create(name="inc-4-api")["channel"]["id"]
    client.conversations_setTopic(channel=channel, topic="t" * 250)
    client.conversations_setPurpose(channel=channel, purpose="Checkout API errors")
    info = client.conversations_info(channel=channel)["channel"]
    assert info["topic"]["value"] == "t" * 250
    assert info["purpose"]["value"] == "Checkout API errors"
    with pytest.raises(SlackApiError) as topic:
        client.conversations_setTopic(channel=channel, topic="t" * 251)
    assert api_error(topic) == "too_long"
    with pytest.raises(SlackApiError) as purpose:
        client.conversations_setPurpose(channel=channel, purpose="p" * 251)
    assert api_error(purpose) == "too_long"
    # counted as Slack's clients count, in UTF-16 code units: an emoji is two
    client.conversations_setPurpose(channel=channel, purpose="😀" * 125)
    with pytest.raises(SlackApiError) as emoji:
        client.conversations_setPurpose(channel=channel, purpose="p" + "😀" * 125)
    assert api_error(emoji) == "too_long"


def test_members_and_join(fake: FakeSlack, client: WebClient) -> None:
    general = fake.channel_id("general")
    members = client.conversations_members(channel=general, limit=2)
    assert len(members["members"]) == 2
    rest = client.conversations_members(
        channel=general, cursor=members["response_metadata"]["next_cursor"]
    )
    assert members["members"] + rest["members"] == fake.members(general)
    joined = client.conversations_join(channel=general)
    assert joined["channel"]["is_member"] is True
    assert client.conversations_join(channel=general)["warning"] == "already_in_channel"


# --------------------------------------------------------------------------------------------
# Failure injection and slack_sdk's retry handlers


def test_rate_limit_is_a_429_with_retry_after(fake: FakeSlack, client: WebClient) -> None:
    fake.fail("chat.postMessage", error="ratelimited", retry_after=12)
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postMessage(channel=fake.channel_id("incidents"), text="hello")
    assert excinfo.value.response.status_code == 429
    assert excinfo.value.response.headers["Retry-After"] == "12"
    assert api_error(excinfo) == "ratelimited"
    assert fake.messages("incidents") == []


def test_retry_handler_waits_retry_after_then_succeeds(
    fake: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []
    monkeypatch.setattr(
        "slack_sdk.http_retry.builtin_handlers.time.sleep", lambda seconds: waits.append(seconds)
    )
    client = WebClient(
        token=fake.token,
        base_url=fake.api_url,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)],
    )
    fake.fail("chat.postMessage", status=429, retry_after=7, times=2)
    posted = client.chat_postMessage(channel=fake.channel_id("incidents"), text="eventually")
    assert posted["ok"]
    assert len(waits) == 2 and all(7 <= w < 8 for w in waits)
    assert [c.status for c in fake.calls_to("chat.postMessage")] == [429, 429, 200]
    assert [m.text for m in fake.messages("incidents")] == ["eventually"]


def test_server_errors_and_injected_error_codes(fake: FakeSlack, client: WebClient) -> None:
    fake.fail("conversations.create", status=500)
    with pytest.raises(SlackApiError) as server:
        client.conversations_create(name="inc-5-cache")
    assert server.value.response.status_code == 500
    assert client.conversations_create(name="inc-5-cache")["ok"], "times=1 fails once"

    fake.fail("conversations.create", error="name_taken", times=None)
    for _ in range(3):
        with pytest.raises(SlackApiError) as taken:
            client.conversations_create(name="inc-6-queue")
        assert api_error(taken) == "name_taken"
    fake.clear_failures()
    assert client.conversations_create(name="inc-6-queue")["ok"]


def test_fail_refuses_what_it_cannot_inject(fake: FakeSlack) -> None:
    with pytest.raises(FakeSlackError):
        fake.fail("chat.postMesage", error="ratelimited")
    with pytest.raises(FakeSlackError):
        fake.fail("chat.postMessage")


# --------------------------------------------------------------------------------------------
# Files


def test_files_upload_v2_end_to_end(fake: FakeSlack, client: WebClient) -> None:
    channel = client.conversations_create(name="inc-8-postmortem")["channel"]["id"]
    content = "# INC-8 postmortem\n\nLatency rose at 03:12 UTC. — résumé ✓\n"
    response = client.files_upload_v2(
        channel=channel,
        content=content,
        filename="INC-8-postmortem.md",
        title="INC-8 postmortem (draft)",
        initial_comment="Draft postmortem attached",
    )
    assert response["file"]["title"] == "INC-8 postmortem (draft)"
    [uploaded] = fake.files()
    assert uploaded.content == content.encode("utf-8")
    assert uploaded.filename == "INC-8-postmortem.md"
    assert uploaded.channels == [channel]
    assert uploaded.initial_comment == "Draft postmortem attached"
    [shared] = [m for m in fake.messages(channel) if m.files]
    assert shared.text == "Draft postmortem attached"
    assert shared.files[0]["id"] == uploaded.id
    assert [c.method for c in fake.calls] == [
        "conversations.create",
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
    ]


def test_file_uploads_need_a_channel_the_bot_can_post_in(
    fake: FakeSlack, client: WebClient
) -> None:
    with pytest.raises(SlackApiError) as outside:
        client.files_upload_v2(channel=fake.channel_id("general"), content="x", filename="a.md")
    assert api_error(outside) == "posting_to_channel_denied"
    with pytest.raises(SlackApiError) as unknown:
        client.files_completeUploadExternal(files=[{"id": "FNOSUCHFILE"}])
    assert api_error(unknown) == "file_not_found"


# --------------------------------------------------------------------------------------------
# Views and triggers


def test_views_open_needs_a_fresh_trigger_from_slack(fake: FakeSlack, client: WebClient) -> None:
    ana = fake.user_id("ana.garcia")
    with pytest.raises(SlackApiError) as forged:
        client.views_open(trigger_id="12345.98765.abcdef", view=MODAL)
    assert api_error(forged) == "invalid_trigger_id"

    stale = fake.issue_trigger(ana)
    fake.advance(3.5)
    with pytest.raises(SlackApiError) as expired:
        client.views_open(trigger_id=stale, view=MODAL)
    assert api_error(expired) == "expired_trigger_id"

    fresh = fake.issue_trigger(ana)
    fake.advance(2.5)
    view = client.views_open(trigger_id=fresh, view=MODAL)["view"]
    assert view["id"].startswith("V") and view["callback_id"] == "declare"
    assert view["state"] == {"values": {}} and view["hash"]
    assert [v.id for v in fake.open_views(ana)] == [view["id"]]
    with pytest.raises(SlackApiError) as reused:
        client.views_open(trigger_id=fresh, view=MODAL)
    assert api_error(reused) == "exchanged_trigger_id"


def test_views_are_validated(fake: FakeSlack, client: WebClient) -> None:
    trigger = fake.issue_trigger("ana.garcia")
    no_submit = {k: v for k, v in MODAL.items() if k != "submit"}
    with pytest.raises(SlackApiError) as excinfo:
        client.views_open(trigger_id=trigger, view=no_submit)
    assert api_error(excinfo) == "invalid_arguments"
    messages = excinfo.value.response["response_metadata"]["messages"]
    assert any("submit" in m for m in messages)
    long_title = {**MODAL, "title": {"type": "plain_text", "text": "t" * 25}}
    with pytest.raises(SlackApiError) as title:
        client.views_open(trigger_id=trigger, view=long_title)
    assert api_error(title) == "invalid_arguments"


def test_views_update_by_id_or_external_id_with_hash(fake: FakeSlack, client: WebClient) -> None:
    trigger = fake.issue_trigger("ben.okafor")
    opened = client.views_open(trigger_id=trigger, view={**MODAL, "external_id": "declare-1"})
    view = opened["view"]
    renamed = {**MODAL, "title": {"type": "plain_text", "text": "Declare (step 2)"}}
    updated = client.views_update(view_id=view["id"], hash=view["hash"], view=renamed)["view"]
    assert updated["title"]["text"] == "Declare (step 2)"
    assert updated["hash"] != view["hash"]
    with pytest.raises(SlackApiError) as stale:
        client.views_update(view_id=view["id"], hash=view["hash"], view=MODAL)
    assert api_error(stale) == "hash_conflict"
    by_external = client.views_update(external_id="declare-1", view=MODAL)["view"]
    assert by_external["id"] == view["id"]
    with pytest.raises(SlackApiError) as missing:
        client.views_update(view_id="VNOSUCHVIEW", view=MODAL)
    assert api_error(missing) == "not_found"


def test_views_push_and_publish(fake: FakeSlack, client: WebClient) -> None:
    chloe = fake.user_id("chloe.martin")
    root = client.views_open(trigger_id=fake.issue_trigger(chloe), view=MODAL)["view"]
    pushed = client.views_push(trigger_id=fake.issue_trigger(chloe), view=MODAL)["view"]
    assert pushed["previous_view_id"] == root["id"] and pushed["root_view_id"] == root["id"]
    client.views_push(trigger_id=fake.issue_trigger(chloe), view=MODAL)
    with pytest.raises(SlackApiError) as full:
        client.views_push(trigger_id=fake.issue_trigger(chloe), view=MODAL)
    assert api_error(full) == "push_limit_reached"

    home = {"type": "home", "blocks": [SECTION]}
    first = client.views_publish(user_id=chloe, view=home)["view"]
    second = client.views_publish(user_id=chloe, view=home, hash=first["hash"])["view"]
    assert second["id"] == first["id"]
    with pytest.raises(SlackApiError) as conflict:
        client.views_publish(user_id=chloe, view=home, hash=first["hash"])
    assert api_error(conflict) == "hash_conflict"
    with pytest.raises(SlackApiError) as modal_as_home:
        client.views_publish(user_id=chloe, view=MODAL)
    assert api_error(modal_as_home) == "invalid_arguments"


# --------------------------------------------------------------------------------------------
# Users and user groups


def test_users_look_like_slack_users(fake: FakeSlack, client: WebClient) -> None:
    ana = client.users_info(user=fake.user_id("ana.garcia"))["user"]
    assert ana["is_admin"] is True and ana["tz"] == "Europe/Madrid"
    assert ana["profile"]["display_name"] == "Ana"
    grace = client.users_info(user=fake.user_id("grace.lee"))["user"]
    assert grace["deleted"] is True
    with pytest.raises(SlackApiError) as excinfo:
        client.users_info(user="UNOBODY00")
    assert api_error(excinfo) == "user_not_found"

    added = fake.add_user(
        "hana.sato", real_name="Hana Sato", display_name="hana", is_owner=True, tz="Asia/Tokyo"
    )
    hana = client.users_info(user=added)["user"]
    assert (hana["is_owner"], hana["is_admin"], hana["tz_offset"]) == (True, True, 9 * 3600)

    first = client.users_list(limit=3)
    rest = client.users_list(cursor=first["response_metadata"]["next_cursor"])
    listed = [u["id"] for u in first["members"] + rest["members"]]
    assert sorted(listed) == sorted(u.id for u in fake.users())


def test_user_groups(fake: FakeSlack, client: WebClient) -> None:
    members = [fake.user_id("ben.okafor"), fake.user_id("farid.haddad")]
    fake.add_usergroup("SDBA00001", "dba", members, name="Database admins")
    groups = client.usergroups_list(include_users=True)["usergroups"]
    dba = next(g for g in groups if g["handle"] == "dba")
    assert dba["id"] == "SDBA00001" and dba["users"] == members and dba["user_count"] == 2
    assert client.usergroups_users_list(usergroup="SDBA00001")["users"] == members
    oncall = client.usergroups_users_list(usergroup=fake.usergroup_id("oncall"))["users"]
    assert fake.user_id("dev.patel") in oncall
    with pytest.raises(SlackApiError) as excinfo:
        client.usergroups_users_list(usergroup="SNOSUCHGRP")
    assert api_error(excinfo) == "no_such_subteam"

    fake.add_usergroup("SOLD00001", "old-team", members, disabled=True)
    handles = [g["handle"] for g in client.usergroups_list()["usergroups"]]
    assert "old-team" not in handles
    with pytest.raises(SlackApiError) as disabled:
        client.usergroups_users_list(usergroup="SOLD00001")
    assert api_error(disabled) == "no_such_subteam"


# --------------------------------------------------------------------------------------------
# response_url


def test_response_urls_record_and_apply_posts(fake: FakeSlack, client: WebClient) -> None:
    channel = fake.channel_id("incidents")
    dev = fake.user_id("dev.patel")
    ts = client.chat_postMessage(channel=channel, text="summary", blocks=[SECTION, BUTTONS])["ts"]
    url = fake.issue_response_url(channel, dev, message_ts=ts)
    webhook = WebhookClient(url)
    assert webhook.send(text="Only you can see this").status_code == 200
    assert webhook.send(text="Acknowledged", replace_original=True).status_code == 200
    assert webhook.send(text="INC-3 acknowledged", response_type="in_channel").status_code == 200
    posts = fake.response_posts(url)
    assert [(p.response_type, p.replace_original) for p in posts] == [
        ("ephemeral", False),
        ("ephemeral", True),
        ("in_channel", False),
    ]
    assert [e.text for e in fake.ephemerals(channel, user=dev)] == ["Only you can see this"]
    assert fake.message(channel, ts).text == "Acknowledged"
    assert [m.text for m in fake.messages(channel)] == ["Acknowledged", "INC-3 acknowledged"]
    webhook.send(text="four")
    webhook.send(text="five")
    assert webhook.send(text="six").status_code == 404, "a response_url takes five posts"


def test_response_urls_expire_after_thirty_minutes(fake: FakeSlack) -> None:
    url = fake.issue_response_url("incidents", "ana.garcia")
    fake.advance(30 * 60 + 1)
    response = WebhookClient(url).send(text="too late")
    assert response.status_code == 404
    assert fake.response_posts(url)[0].error == "expired_url"


# --------------------------------------------------------------------------------------------
# Scenario helpers and concurrency


def test_people_post_react_and_join(fake: FakeSlack) -> None:
    channel = fake.channel_id("incidents")
    ts = fake.user_says(channel, "erin.walsh", "Rolled back deploy 4521")
    reply = fake.user_says(channel, "dev.patel", "Errors are dropping", thread_ts=ts)
    assert fake.message(channel, ts).user == fake.user_id("erin.walsh")
    assert fake.message(channel, reply).thread_ts == ts
    fake.user_reacts(channel, ts, "ana.garcia", ":pushpin:")
    assert fake.message(channel, ts).reactions == {"pushpin": [fake.user_id("ana.garcia")]}
    with pytest.raises(FakeSlackError):
        fake.user_says("general", "zzz.nobody", "hi")
    outsider = fake.add_user("ivan.petrov", real_name="Ivan Petrov")
    with pytest.raises(FakeSlackError, match="call join"):
        fake.user_says(channel, outsider, "hello?")
    fake.join(channel, outsider)
    fake.user_says(channel, outsider, "hello!")
    with pytest.raises(FakeSlackError, match="deactivated"):
        fake.user_says(channel, "grace.lee", "I am back")


def test_concurrent_posts_get_distinct_ordered_ts(fake: FakeSlack) -> None:
    channel = fake.channel_id("incidents")
    errors: list[BaseException] = []

    def post(n: int) -> None:
        try:
            client = WebClient(token=fake.token, base_url=fake.api_url)
            for i in range(10):
                client.chat_postMessage(channel=channel, text=f"{n}-{i}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=post, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    stored = fake.messages(channel)
    assert len(stored) == 80
    stamps = [m.ts for m in stored]
    assert len(set(stamps)) == 80
    assert stamps == sorted(stamps, key=lambda ts: tuple(int(p) for p in ts.split(".")))
    assert len(fake.calls_to("chat.postMessage")) == 80
