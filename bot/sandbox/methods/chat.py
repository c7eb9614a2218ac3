"""``chat.*`` (post, update, ephemeral, permalink, delete), ``pins.*`` and
``reactions.*``."""

from __future__ import annotations

from bot.sandbox.args import (
    Args,
    deep_copy,
    epoch,
)
from bot.sandbox.records import (
    EMOJI_NAME,
    EVENT_TYPE,
    JSON,
    ApiError,
    Channel,
    Ephemeral,
    Message,
    Pin,
)
from bot.sandbox.workspace import Workspace


def checked_metadata(args: Args) -> tuple[JSON | None, list[str]]:
    """Message metadata as Slack takes it: not a JSON object is ``invalid_metadata_format``;
    an ``event_type`` other than letters, digits, underscores and hyphens, or an
    ``event_payload`` that is not an object, is ignored with an ``invalid_metadata_schema``
    warning (the message is still posted)."""
    metadata = args.decoded("metadata", "invalid_metadata_format")
    if metadata is None:
        return None, []
    if not isinstance(metadata, dict):
        raise ApiError("invalid_metadata_format")
    event_type = metadata.get("event_type")
    payload = metadata.get("event_payload")
    if (
        not isinstance(event_type, str)
        or not EVENT_TYPE.match(event_type)
        or not isinstance(payload, dict)
    ):
        return None, ["invalid_metadata_schema"]
    return {"event_type": event_type, "event_payload": deep_copy(payload)}, []


def with_warnings(warnings: list[str]) -> JSON:
    if not warnings:
        return {}
    return {"warning": ",".join(warnings), "response_metadata": {"warnings": warnings}}


class ChatMethods(Workspace):
    def _chat_post_message(self, args: Args) -> JSON:
        channel = self._target_channel(args.text("channel"))
        self._require_active(channel)
        self._require_member(channel)
        text, blocks, attachments = self._content(args, required=True)
        metadata, warnings = checked_metadata(args)
        message = self._post(
            channel,
            text,
            blocks,
            attachments,
            args.text("thread_ts") or None,
            broadcast=args.flag("reply_broadcast"),
            metadata=metadata,
        )
        return {
            "channel": channel.id,
            "ts": message.ts,
            "message": self._message_json(channel, message),
            **with_warnings(warnings),
        }

    def _chat_update(self, args: Args) -> JSON:
        channel = self._visible_channel(args.text("channel"))
        message = self._existing_message(channel, args.text("ts"))
        if message.user != self.bot_user_id or message.subtype is not None:
            raise ApiError("cant_update_message")
        self._require_active(channel)
        text, blocks, attachments = self._content(args, required=False)
        metadata, warnings = checked_metadata(args)
        if text is None and blocks is None and attachments is None:
            raise ApiError("no_text")
        if metadata is not None:
            message.metadata = metadata
        if text is not None:
            message.text = text
        if blocks is not None:
            message.blocks = blocks
        if attachments is not None:
            message.attachments = attachments
        message.edited = {"user": self.bot_user_id, "ts": self._next_ts()}
        return {
            "channel": channel.id,
            "ts": message.ts,
            "text": message.text,
            "message": self._message_json(channel, message),
            **with_warnings(warnings),
        }

    def _chat_post_ephemeral(self, args: Args) -> JSON:
        channel = self._target_channel(args.text("channel"))
        user_id = args.text("user")
        person = self._users.get(user_id or "")
        if person is None:
            raise ApiError("user_not_found")
        self._require_active(channel)
        self._require_member(channel)
        if person.id not in channel.members:
            raise ApiError("user_not_in_channel")
        text, blocks, _ = self._content(args, required=True)
        ephemeral = Ephemeral(
            channel.id,
            person.id,
            self._next_ts(),
            text or "",
            blocks or [],
            args.text("thread_ts") or None,
        )
        self._ephemerals.append(ephemeral)
        return {"message_ts": ephemeral.ts}

    def _chat_get_permalink(self, args: Args) -> JSON:
        channel = self._visible_channel(args.text("channel"))
        message = self._existing_message(channel, args.text("message_ts"))
        link = (
            f"https://{self.team_domain}.slack.com/archives/{channel.id}/"
            f"p{message.ts.replace('.', '')}"
        )
        if message.is_reply:
            link += f"?thread_ts={message.thread_ts}&cid={channel.id}"
        return {"channel": channel.id, "permalink": link}

    def _chat_delete(self, args: Args) -> JSON:
        channel = self._visible_channel(args.text("channel"))
        message = self._existing_message(channel, args.text("ts"))
        if message.user != self.bot_user_id:
            raise ApiError("cant_delete_message")
        del channel.messages[message.ts]
        channel.pins.pop(message.ts, None)
        return {"channel": channel.id, "ts": message.ts}

    def _pins_add(self, args: Args) -> JSON:
        channel = self._visible_channel(args.text("channel"))
        ts = args.text("timestamp")
        if not ts:
            raise ApiError("no_item_specified")
        self._require_active(channel)
        self._require_member(channel)
        message = self._existing_message(channel, ts)
        if message.ts in channel.pins:
            raise ApiError("already_pinned")
        channel.pins[message.ts] = Pin(message.ts, self.bot_user_id, epoch(self.now()))
        return {}

    def _pins_remove(self, args: Args) -> JSON:
        channel = self._visible_channel(args.text("channel"))
        ts = args.text("timestamp")
        if not ts:
            raise ApiError("no_item_specified")
        self._require_member(channel)
        if ts not in channel.pins:
            raise ApiError("no_pin")
        del channel.pins[ts]
        return {}

    def _pins_list(self, args: Args) -> JSON:
        channel = self._visible_channel(args.text("channel"))
        items = []
        for pin in channel.pins.values():
            message = channel.messages[pin.ts]
            items.append(
                {
                    "type": "message",
                    "created": pin.created,
                    "created_by": pin.created_by,
                    "channel": channel.id,
                    "message": {
                        **self._message_json(channel, message),
                        "permalink": self._chat_get_permalink(
                            Args({"channel": channel.id, "message_ts": pin.ts})
                        )["permalink"],
                    },
                }
            )
        return {"items": items}

    def _reaction_target(self, args: Args) -> tuple[Channel, Message, str]:
        channel = self._visible_channel(args.text("channel"))
        name = (args.text("name") or "").strip(":")
        if not args.text("timestamp"):
            raise ApiError("no_item_specified")
        message = self._existing_message(channel, args.text("timestamp"))
        if not name or not EMOJI_NAME.match(name):
            raise ApiError("invalid_name")
        return channel, message, name

    def _reactions_add(self, args: Args) -> JSON:
        channel, message, name = self._reaction_target(args)
        self._require_active(channel)
        users = message.reactions.setdefault(name, [])
        if self.bot_user_id in users:
            raise ApiError("already_reacted")
        users.append(self.bot_user_id)
        return {}

    def _reactions_remove(self, args: Args) -> JSON:
        _, message, name = self._reaction_target(args)
        users = message.reactions.get(name, [])
        if self.bot_user_id not in users:
            raise ApiError("no_reaction")
        users.remove(self.bot_user_id)
        if not users:
            del message.reactions[name]
        return {}
