"""What a client needs to repeat a call safely, as Slack offers it: channels found by name with
``conversations.list``, messages found by their metadata, uploads found by their shares."""

from __future__ import annotations

import json
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.sandbox import FakeSlack

EFFECT = {"event_type": "firebreak_effect", "event_payload": {"effect": "msg-42"}}


def list_all(client: WebClient, **kwargs: Any) -> list[dict[str, Any]]:
    channels: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = client.conversations_list(cursor=cursor, **kwargs)
        channels += page["channels"]
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            return channels


# --------------------------------------------------------------------------------------------
# conversations.list


def test_list_defaults_to_public_channels(fake: FakeSlack, client: WebClient) -> None:
    fake.add_channel("secret-plans", private=True, members=["ana.garcia"], bot_member=True)
    names = [c["name"] for c in list_all(client)]
    assert names == ["general", "incidents"]


def test_a_private_channel_is_listed_only_with_the_bot_in_it(
    fake: FakeSlack, client: WebClient
) -> None:
    fake.add_channel("hr-private", private=True, members=["ben.okafor"])
    fake.add_channel("sec-private", private=True, members=["ben.okafor"], bot_member=True)
    both = list_all(client, types="public_channel,private_channel")
    assert [c["name"] for c in both] == ["general", "incidents", "sec-private"]
    private = list_all(client, types="private_channel")
    assert [(c["name"], c["is_private"]) for c in private] == [("sec-private", True)]


def test_exclude_archived(fake: FakeSlack, client: WebClient) -> None:
    fake.add_channel("inc-1-old", archived=True)
    assert "inc-1-old" in [c["name"] for c in list_all(client)]
    assert "inc-1-old" not in [c["name"] for c in list_all(client, exclude_archived=True)]


def test_paging_with_limit_and_cursor(fake: FakeSlack, client: WebClient) -> None:
    for number in range(1, 6):
        client.conversations_create(name=f"inc-{number}-x", is_private=number % 2 == 0)
    first = client.conversations_list(types="public_channel,private_channel", limit=3)
    assert len(first["channels"]) == 3 and first["response_metadata"]["next_cursor"]
    everything = list_all(client, types="public_channel,private_channel", limit=3)
    assert [c["name"] for c in everything] == ["general", "incidents"] + [
        f"inc-{n}-x" for n in range(1, 6)
    ]
    assert len(fake.calls_to("conversations.list")) == 1 + 3


def test_channel_json_has_what_a_lookup_needs(fake: FakeSlack, client: WebClient) -> None:
    fake.advance(60)
    before = int(fake.now().timestamp())  # the fake's clock runs: a second may turn meanwhile
    created = client.conversations_create(name="inc-7-db", is_private=True)["channel"]
    client.conversations_setPurpose(channel=created["id"], purpose="firebreak:INC-7")
    after = int(fake.now().timestamp())
    [listed] = [c for c in list_all(client, types="private_channel") if c["name"] == "inc-7-db"]
    assert listed["id"] == created["id"]
    assert listed["creator"] == fake.bot_user_id
    assert listed["is_private"] is True and listed["is_archived"] is False
    assert before <= listed["created"] <= after
    purpose = dict(listed["purpose"])
    assert before <= purpose.pop("last_set") <= after
    assert purpose == {"value": "firebreak:INC-7", "creator": fake.bot_user_id}
    assert listed["topic"] == {"value": "", "creator": "", "last_set": 0}


def test_list_rejects_unknown_types_and_bad_limits(fake: FakeSlack, client: WebClient) -> None:
    with pytest.raises(SlackApiError) as types:
        client.conversations_list(types="public_channel,shared_channel")
    assert types.value.response["error"] == "invalid_types"
    with pytest.raises(SlackApiError) as limit:
        client.api_call("conversations.list", params={"limit": "many"})
    assert limit.value.response["error"] == "invalid_limit"


# --------------------------------------------------------------------------------------------
# Message metadata


def test_metadata_is_returned_only_with_include_all_metadata(
    fake: FakeSlack, client: WebClient
) -> None:
    channel = fake.channel_id("incidents")
    ts = client.chat_postMessage(channel=channel, text="posted", metadata=EFFECT)["ts"]
    plain = client.conversations_history(channel=channel)["messages"]
    assert [m["ts"] for m in plain] == [ts] and "metadata" not in plain[0]
    full = client.conversations_history(channel=channel, include_all_metadata=True)["messages"]
    assert full[0]["metadata"] == EFFECT


def test_replies_return_metadata_only_when_asked(fake: FakeSlack, client: WebClient) -> None:
    channel = fake.channel_id("incidents")
    parent = client.chat_postMessage(channel=channel, text="summary")["ts"]
    reply = client.chat_postMessage(
        channel=channel, text="update", thread_ts=parent, metadata=EFFECT
    )["ts"]
    plain = client.conversations_replies(channel=channel, ts=parent)["messages"]
    assert [("metadata" in m) for m in plain] == [False, False]
    full = client.conversations_replies(channel=channel, ts=parent, include_all_metadata=True)
    assert [(m["ts"], m.get("metadata")) for m in full["messages"]] == [
        (parent, None),
        (reply, EFFECT),
    ]


def test_metadata_sent_as_a_json_string_in_a_form(fake: FakeSlack, client: WebClient) -> None:
    channel = fake.channel_id("incidents")
    client.api_call(
        "chat.postMessage",
        data={"channel": channel, "text": "form", "metadata": json.dumps(EFFECT)},
    )
    [message] = fake.messages("incidents")
    assert message.metadata == EFFECT


def test_chat_update_replaces_metadata(fake: FakeSlack, client: WebClient) -> None:
    channel = fake.channel_id("incidents")
    ts = client.chat_postMessage(channel=channel, text="v1", metadata=EFFECT)["ts"]
    client.chat_update(channel=channel, ts=ts, text="v2")
    assert fake.message("incidents", ts).metadata == EFFECT, "no metadata: kept"
    newer = {"event_type": "firebreak_effect", "event_payload": {"effect": "msg-43"}}
    client.chat_update(channel=channel, ts=ts, text="v3", metadata=newer)
    history = client.conversations_history(channel=channel, include_all_metadata=True)
    assert history["messages"][0]["metadata"] == newer


@pytest.mark.parametrize(
    "metadata",
    [
        {"event_type": "firebreak.effect", "event_payload": {"effect": "x"}},
        {"event_type": "with space", "event_payload": {}},
        {"event_type": "", "event_payload": {}},
        {"event_payload": {"effect": "x"}},
        {"event_type": "firebreak_effect", "event_payload": "x"},
    ],
)
def test_invalid_metadata_schema_is_a_warning_and_is_ignored(
    fake: FakeSlack, client: WebClient, metadata: dict[str, Any]
) -> None:
    channel = fake.channel_id("incidents")
    posted = client.chat_postMessage(channel=channel, text="still posted", metadata=metadata)
    assert posted["ok"] and posted["warning"] == "invalid_metadata_schema"
    assert posted["response_metadata"]["warnings"] == ["invalid_metadata_schema"]
    [message] = fake.messages("incidents")
    assert message.text == "still posted" and message.metadata is None


def test_event_types_may_have_letters_digits_underscores_and_hyphens(
    fake: FakeSlack, client: WebClient
) -> None:
    metadata = {"event_type": "Incident-2_declared", "event_payload": {"n": 2}}
    posted = client.chat_postMessage(
        channel=fake.channel_id("incidents"), text="ok", metadata=metadata
    )
    assert "warning" not in posted.data
    assert fake.messages("incidents")[0].metadata == metadata


def test_metadata_that_is_not_an_object_is_an_error(fake: FakeSlack, client: WebClient) -> None:
    channel = fake.channel_id("incidents")
    for bad in ("not json", "[1, 2]"):
        with pytest.raises(SlackApiError) as failed:
            client.api_call(
                "chat.postMessage", data={"channel": channel, "text": "x", "metadata": bad}
            )
        assert failed.value.response["error"] == "invalid_metadata_format"
    assert fake.messages("incidents") == []


# --------------------------------------------------------------------------------------------
# files.info shares


def upload(client: WebClient, **kwargs: Any) -> str:
    response = client.files_upload_v2(content="# draft\n", filename="draft.md", **kwargs)
    return str(response["files"][0]["id"])


def test_files_info_shows_where_a_file_was_shared(fake: FakeSlack, client: WebClient) -> None:
    public = fake.channel_id("incidents")
    private = client.conversations_create(name="inc-3-private", is_private=True)["channel"]["id"]
    first = upload(client, channel=public)
    second = upload(client, channel=private)
    shares = client.files_info(file=first)["file"]["shares"]
    [message] = fake.messages("incidents")
    assert list(shares) == ["public"]
    [share] = shares["public"][public]
    assert share["ts"] == message.ts and share["channel_name"] == "incidents"
    private_shares = client.files_info(file=second)["file"]["shares"]
    assert list(private_shares) == ["private"] and list(private_shares["private"]) == [private]


def test_an_unshared_file_has_no_shares(fake: FakeSlack, client: WebClient) -> None:
    file_id = upload(client)
    info = client.files_info(file=file_id)["file"]
    assert info["shares"] == {} and info["channels"] == [] and info["groups"] == []


def test_a_file_shared_in_a_thread_says_so(fake: FakeSlack, client: WebClient) -> None:
    channel = fake.channel_id("incidents")
    parent = client.chat_postMessage(channel=channel, text="summary")["ts"]
    file_id = upload(client, channel=channel, thread_ts=parent)
    [share] = client.files_info(file=file_id)["file"]["shares"]["public"][channel]
    assert share["thread_ts"] == parent and share["ts"] != parent
