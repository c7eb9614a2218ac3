"""``conversations.*``: create, invite, topic and purpose, info, members, join, open,
history, replies, archive."""

from __future__ import annotations

from bot.sandbox.args import (
    Args,
    epoch,
    error_lines,
    paginate,
    ts_key,
)
from bot.sandbox.records import (
    CHANNEL_NAME_PATTERN,
    JSON,
    RESERVED_NAMES,
    ApiError,
    Channel,
)
from bot.sandbox.workspace import Workspace
from bot.slack.limits import CHANNEL_NAME, PURPOSE, TOPIC, text_length

LIST_TYPES = frozenset({"public_channel", "private_channel", "mpim", "im"})


class ConversationsMethods(Workspace):
    def _conversations_create(self, args: Args) -> JSON:
        name = args.text("name")
        if not name:
            raise ApiError("invalid_name_required")
        if len(name) > CHANNEL_NAME:
            raise ApiError("invalid_name_maxlength")
        if not CHANNEL_NAME_PATTERN.match(name):
            raise ApiError("invalid_name_specials")
        if not name.strip("-_"):
            raise ApiError("invalid_name_punctuation")
        if name in RESERVED_NAMES:
            raise ApiError("invalid_name")
        if any(c.name == name for c in self._channels.values() if not c.is_im):
            raise ApiError("name_taken")
        channel = Channel(
            id=self._new_id("C", 10),
            name=name,
            created=epoch(self.now()),
            creator=self.bot_user_id,
            is_private=args.flag("is_private"),
            members=[self.bot_user_id],
        )
        self._channels[channel.id] = channel
        self._system_message(channel, self.bot_user_id, "channel_join", "has joined the channel")
        return {"channel": self._channel_json(channel)}

    def _conversations_invite(self, args: Args) -> JSON:
        channel = self._visible_channel(args.text("channel"))
        raw = args.text("users")
        if not raw:
            raise ApiError("no_user")
        ids = list(dict.fromkeys(u.strip() for u in raw.split(",") if u.strip()))
        if not ids:
            raise ApiError("no_user")
        if len(ids) > 1000:
            raise ApiError("too_many_users")
        self._require_active(channel)
        self._require_member(channel)
        errors: list[JSON] = []
        valid: list[str] = []
        removed = False
        for user_id in ids:
            person = self._users.get(user_id)
            if user_id == self.bot_user_id:
                code = "cant_invite_self"
            elif person is None:
                code = "user_not_found"
            elif person.deleted:
                code, removed = "cant_invite", True
            elif user_id in channel.members:
                code = "already_in_channel"
            else:
                valid.append(user_id)
                continue
            errors.append({"user": user_id, "ok": False, "error": code})
        # Slack: if any invite fails, nobody is invited; except that deactivated ("removed")
        # accounts fail on their own, and force=true invites the valid ones anyway.
        only_removed = all(e["error"] == "cant_invite" for e in errors)
        if not errors or args.flag("force") or (removed and only_removed):
            for user_id in valid:
                channel.members.append(user_id)
                self._system_message(
                    channel,
                    user_id,
                    "channel_join",
                    "has joined the channel",
                    inviter=self.bot_user_id,
                )
        if errors:
            raise ApiError(errors[0]["error"], errors=errors)
        return {"channel": self._channel_json(channel)}

    def _set_text_field(self, args: Args, name: str, limit: int, subtype: str) -> JSON:
        channel = self._visible_channel(args.text("channel"))
        value = args.text(name) or ""
        if text_length(value) > limit:
            raise ApiError("too_long")
        self._require_active(channel)
        self._require_member(channel)
        setattr(
            channel,
            name,
            {"value": value, "creator": self.bot_user_id, "last_set": epoch(self.now())},
        )
        verb = "set the channel topic" if name == "topic" else "set the channel description"
        self._system_message(channel, self.bot_user_id, subtype, f"{verb}: {value}")
        return {"channel": self._channel_json(channel)}

    def _conversations_set_topic(self, args: Args) -> JSON:
        return self._set_text_field(args, "topic", TOPIC, "channel_topic")

    def _conversations_set_purpose(self, args: Args) -> JSON:
        return self._set_text_field(args, "purpose", PURPOSE, "channel_purpose")

    def _conversations_info(self, args: Args) -> JSON:
        channel = self._visible_channel(args.text("channel"))
        return {"channel": self._channel_json(channel)}

    def _conversations_members(self, args: Args) -> JSON:
        channel = self._visible_channel(args.text("channel"))
        page, cursor = paginate(list(channel.members), args)
        return {"members": page, "response_metadata": {"next_cursor": cursor}}

    def _conversations_join(self, args: Args) -> JSON:
        channel = self._visible_channel(args.text("channel"))
        if channel.is_private or channel.is_im:
            raise ApiError("method_not_supported_for_channel_type")
        self._require_active(channel)
        if self.bot_user_id in channel.members:
            return {
                "channel": self._channel_json(channel),
                "warning": "already_in_channel",
                "response_metadata": {"warnings": ["already_in_channel"]},
            }
        channel.members.append(self.bot_user_id)
        self._system_message(channel, self.bot_user_id, "channel_join", "has joined the channel")
        return {"channel": self._channel_json(channel)}

    def _conversations_open(self, args: Args) -> JSON:
        raw = args.text("users") or ""
        ids = [u.strip() for u in raw.split(",") if u.strip()]
        if not ids:
            raise ApiError("users_list_not_supplied")
        if len(ids) > 1:
            raise ApiError(
                "invalid_arguments",
                response_metadata=error_lines("the fake opens direct messages with one user"),
            )
        person = self._users.get(ids[0])
        if person is None:
            raise ApiError("user_not_found")
        if person.deleted:
            raise ApiError("user_disabled")
        existed = ids[0] in self._ims
        channel = self._im_for(ids[0])
        return {"channel": {"id": channel.id}, "no_op": existed, "already_open": existed}

    def _history_bounds(self, args: Args) -> tuple[int | None, int, bool]:
        try:
            latest_text = args.text("latest")
            latest = ts_key(latest_text) if latest_text else None
        except ValueError:
            raise ApiError("invalid_ts_latest") from None
        try:
            oldest_text = args.text("oldest")
            oldest = ts_key(oldest_text) if oldest_text else 0
        except ValueError:
            raise ApiError("invalid_ts_oldest") from None
        return latest, oldest, args.flag("inclusive")

    @staticmethod
    def _within(ts: str, latest: int | None, oldest: int, inclusive: bool) -> bool:
        key = ts_key(ts)
        above = key > oldest or (inclusive and key == oldest)
        below = latest is None or key < latest or (inclusive and key == latest)
        return above and below

    def _conversations_history(self, args: Args) -> JSON:
        channel = self._visible_channel(args.text("channel"))
        self._require_member(channel)
        latest, oldest, inclusive = self._history_bounds(args)
        selected = [
            m
            for m in reversed(channel.messages.values())
            if (not m.is_reply or m.reply_broadcast)
            and self._within(m.ts, latest, oldest, inclusive)
        ]
        page, cursor = paginate(selected, args)
        return {
            "messages": [
                self._message_json(channel, m, with_metadata=args.flag("include_all_metadata"))
                for m in page
            ],
            "has_more": bool(cursor),
            "pin_count": len(channel.pins),
            "response_metadata": {"next_cursor": cursor},
        }

    def _conversations_replies(self, args: Args) -> JSON:
        channel = self._visible_channel(args.text("channel"))
        self._require_member(channel)
        message = channel.messages.get(args.text("ts") or "")
        if message is None:
            raise ApiError("thread_not_found")
        parent_ts = message.thread_ts or message.ts
        parent = channel.messages.get(parent_ts)
        thread = [m for m in channel.messages.values() if m.thread_ts == parent_ts and m.is_reply]
        latest, oldest, inclusive = self._history_bounds(args)
        selected = [m for m in thread if self._within(m.ts, latest, oldest, inclusive)]
        # As Slack does: the thread's first message leads the first page whatever the bounds
        # (later pages, past it, go on with the replies).
        if parent is not None:
            selected.insert(0, parent)
        page, cursor = paginate(selected, args, default_limit=1000)
        return {
            "messages": [
                self._message_json(channel, m, with_metadata=args.flag("include_all_metadata"))
                for m in page
            ],
            "has_more": bool(cursor),
            "response_metadata": {"next_cursor": cursor},
        }

    def _conversations_archive(self, args: Args) -> JSON:
        channel = self._visible_channel(args.text("channel"))
        if channel.is_archived:
            raise ApiError("already_archived")
        if channel.is_general:
            raise ApiError("cant_archive_general")
        if channel.is_im:
            raise ApiError("method_not_supported_for_channel_type")
        self._require_member(channel)
        channel.is_archived = True
        return {}

    def _conversations_list(self, args: Args) -> JSON:
        raw = args.text("types") or "public_channel"
        types = {t.strip() for t in raw.split(",") if t.strip()}
        if not types or not types <= LIST_TYPES:
            raise ApiError("invalid_types")
        try:
            int(args.text("limit") or "0")
        except ValueError:
            raise ApiError("invalid_limit") from None
        exclude_archived = args.flag("exclude_archived")
        selected = [
            c
            for c in self._channels.values()
            if self._list_type(c) in types
            and (not c.is_private or self.bot_user_id in c.members)
            and not (exclude_archived and c.is_archived)
        ]
        page, cursor = paginate(selected, args)
        return {
            "channels": [self._channel_json(c) for c in page],
            "response_metadata": {"next_cursor": cursor},
        }

    @staticmethod
    def _list_type(channel: Channel) -> str:
        if channel.is_im:
            return "im"
        return "private_channel" if channel.is_private else "public_channel"
