"""The fake workspace's state and what every Web API method shares: the clock, ids and message
timestamps, the JSON shapes Slack returns for users, channels, messages, views and files, and
the checks Slack applies before it acts (visibility of private channels, membership, archived
channels, existing messages, triggers, external ids)."""

from __future__ import annotations

import random
import string
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.clock import utcnow
from bot.sandbox.args import Args, deep_copy, epoch, error_lines
from bot.sandbox.blocks import checked_view, message_content, with_ids
from bot.sandbox.records import (
    EPOCH,
    ID_ALPHABET,
    JSON,
    TRIGGER_TTL,
    ApiCall,
    ApiError,
    Channel,
    Ephemeral,
    Failure,
    FakeSlackError,
    Message,
    ResponsePost,
    ResponseUrl,
    Trigger,
    UploadedFile,
    User,
    Usergroup,
    View,
    truthy,
)
from bot.slack.limits import MESSAGE_TEXT, message_errors, text_length


class Workspace:
    """The workspace's state behind one lock, its clock, and the shapes Slack returns; the
    checks and writes every Web API method shares."""

    _methods: dict[str, Callable[[Args], JSON]]
    app_token: str
    """The app-level token (``xapp-``) that ``apps.connections.open`` takes."""
    """The Web API methods by name (``chat.postMessage``...), filled in by ``FakeSlack``."""

    def __init__(
        self,
        *,
        team_name: str = "Acme Corp",
        team_domain: str = "acme",
        bot_name: str = "firebreak",
        seed: int | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._lock = threading.RLock()
        self._random = random.Random(seed)
        self._clock = clock
        self._offset = timedelta(0)
        self._last_ts = 0

        self.team_name = team_name
        self.team_domain = team_domain
        self.team_id = self._new_id("T", 8)
        self.app_id = self._new_id("A", 10)
        self.bot_id = self._new_id("B", 10)
        self.bot_user_id = self._new_id("U", 10)
        self.bot_name = bot_name
        self.token = "xoxb-" + "-".join(
            (
                str(self._random.randrange(10**11, 10**12)),
                str(self._random.randrange(10**12, 10**13)),
                "".join(self._random.choices(string.ascii_letters + string.digits, k=24)),
            )
        )

        self._users: dict[str, User] = {}
        self._channels: dict[str, Channel] = {}
        self._ims: dict[str, str] = {}
        self._usergroups: dict[str, Usergroup] = {}
        self._ephemerals: list[Ephemeral] = []
        self._views: dict[str, View] = {}
        self._modal_stacks: dict[str, list[str]] = {}
        self._home_views: dict[str, str] = {}
        self._triggers: dict[str, Trigger] = {}
        self._response_urls: dict[str, ResponseUrl] = {}
        self._response_posts: list[ResponsePost] = []
        self._files: dict[str, UploadedFile] = {}
        self._calls: list[ApiCall] = []
        self._failures: list[Failure] = []
        self._errors: list[str] = []

        self._users[self.bot_user_id] = User(
            id=self.bot_user_id,
            team_id=self.team_id,
            name=bot_name,
            real_name=bot_name.capitalize(),
            is_bot=True,
            bot_id=self.bot_id,
        )

    # ----------------------------------------------------------------------------------------
    # Clock

    def now(self) -> datetime:
        return self._clock() + self._offset

    def advance(self, seconds: float | timedelta) -> None:
        """Move the fake's clock forward (trigger and response_url expiry, message ts)."""
        step = seconds if isinstance(seconds, timedelta) else timedelta(seconds=seconds)
        with self._lock:
            self._offset += step

    # ----------------------------------------------------------------------------------------
    # Setting up the workspace

    def _new_id(self, prefix: str, length: int = 10) -> str:
        return prefix + "".join(self._random.choices(ID_ALPHABET, k=length))

    def _next_ts(self) -> str:
        micros = (self.now() - EPOCH) // timedelta(microseconds=1)
        if micros <= self._last_ts:
            micros = self._last_ts + 1
        self._last_ts = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    # ----------------------------------------------------------------------------------------
    # Shapes Slack returns

    def _user_json(self, user: User) -> JSON:
        zone = ZoneInfo(user.tz)
        now = self.now().astimezone(zone)
        offset = now.utcoffset() or timedelta(0)
        profile: JSON = {
            "real_name": user.real_name,
            "display_name": user.display_name,
            "real_name_normalized": user.real_name,
            "display_name_normalized": user.display_name,
            "email": user.email,
            "image_48": f"https://avatars.example.com/{user.id}_48.png",
            "image_72": f"https://avatars.example.com/{user.id}_72.png",
            "team": self.team_id,
        }
        if user.bot_id:
            profile["bot_id"] = user.bot_id
            profile.pop("email")
        return {
            "id": user.id,
            "team_id": self.team_id,
            "name": user.name,
            "deleted": user.deleted,
            "color": "9f69e7",
            "real_name": user.real_name,
            "tz": user.tz,
            "tz_label": now.tzname() or user.tz,
            "tz_offset": int(offset.total_seconds()),
            "profile": profile,
            "is_admin": user.is_admin,
            "is_owner": user.is_owner,
            "is_primary_owner": user.is_primary_owner,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": user.is_bot,
            "is_app_user": False,
            "updated": user.updated,
        }

    def _channel_json(self, channel: Channel) -> JSON:
        if channel.is_im:
            return {
                "id": channel.id,
                "created": channel.created,
                "is_im": True,
                "is_org_shared": False,
                "user": channel.im_user,
                "is_user_deleted": bool(channel.im_user and self._users[channel.im_user].deleted),
                "priority": 0,
            }
        return {
            "id": channel.id,
            "name": channel.name,
            "is_channel": True,
            "is_group": False,
            "is_im": False,
            "is_mpim": False,
            "is_private": channel.is_private,
            "created": channel.created,
            "creator": channel.creator,
            "is_archived": channel.is_archived,
            "is_general": channel.is_general,
            "unlinked": 0,
            "name_normalized": channel.name,
            "is_shared": False,
            "is_ext_shared": False,
            "is_org_shared": False,
            "pending_shared": [],
            "is_pending_ext_shared": False,
            "is_member": self.bot_user_id in channel.members,
            "topic": dict(channel.topic),
            "purpose": dict(channel.purpose),
            "previous_names": [],
            "num_members": len(channel.members),
            "context_team_id": self.team_id,
        }

    def _message_json(
        self, channel: Channel, message: Message, *, with_metadata: bool = True
    ) -> JSON:
        """The message as Slack returns it; ``conversations.history`` and ``.replies`` leave
        out ``metadata`` unless asked for it (``include_all_metadata=true``)."""
        data: JSON = {"type": "message"}
        if message.subtype:
            data["subtype"] = message.subtype
        data.update({"user": message.user, "text": message.text, "ts": message.ts})
        data["team"] = self.team_id
        if message.client_msg_id:
            data["client_msg_id"] = message.client_msg_id
        if message.blocks:
            data["blocks"] = deep_copy(message.blocks)
        if message.attachments:
            data["attachments"] = deep_copy(message.attachments)
        if message.bot_id:
            data["bot_id"] = message.bot_id
            data["app_id"] = message.app_id
            data["bot_profile"] = {
                "id": message.bot_id,
                "app_id": message.app_id,
                "name": self.bot_name,
                "deleted": False,
                "team_id": self.team_id,
            }
        if message.inviter:
            data["inviter"] = message.inviter
        if message.is_reply:
            data["thread_ts"] = message.thread_ts
            parent = channel.messages.get(message.thread_ts or "")
            if parent is not None:
                data["parent_user_id"] = parent.user
        else:
            replies = [
                m for m in channel.messages.values() if m.thread_ts == message.ts and m.is_reply
            ]
            if replies:
                users = list(dict.fromkeys(r.user for r in replies))
                data.update(
                    {
                        "thread_ts": message.ts,
                        "reply_count": len(replies),
                        "reply_users_count": len(users),
                        "latest_reply": replies[-1].ts,
                        "reply_users": users[:5],
                    }
                )
        if message.edited:
            data["edited"] = dict(message.edited)
        if message.reactions:
            data["reactions"] = [
                {"name": name, "users": list(users), "count": len(users)}
                for name, users in message.reactions.items()
            ]
        if message.ts in channel.pins:
            data["pinned_to"] = [channel.id]
        if message.files:
            data["files"] = deep_copy(message.files)
            data["upload"] = False
        if message.metadata and with_metadata:
            data["metadata"] = deep_copy(message.metadata)
        return data

    def _view_json(self, view: View) -> JSON:
        payload = view.payload
        data: JSON = {
            "id": view.id,
            "team_id": self.team_id,
            "type": view.type,
            "blocks": deep_copy(payload.get("blocks", [])),
            "private_metadata": payload.get("private_metadata", ""),
            "callback_id": payload.get("callback_id", ""),
            "state": {"values": deep_copy(view.state_values)},
            "hash": view.hash,
            "clear_on_close": bool(payload.get("clear_on_close", False)),
            "notify_on_close": bool(payload.get("notify_on_close", False)),
            "root_view_id": view.root_view_id,
            "previous_view_id": view.previous_view_id,
            "app_id": self.app_id,
            "external_id": view.external_id,
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        if view.type == "modal":
            data["title"] = deep_copy(payload.get("title"))
            data["close"] = deep_copy(payload.get("close"))
            data["submit"] = deep_copy(payload.get("submit"))
        return data

    def _file_json(self, found: UploadedFile) -> JSON:
        return {
            "id": found.id,
            "created": found.created,
            "timestamp": found.created,
            "name": found.filename,
            "title": found.title or found.filename,
            "mimetype": "text/plain" if found.snippet_type else "application/octet-stream",
            "filetype": found.snippet_type or "binary",
            "user": found.user,
            "size": len(found.content or b""),
            "channels": [c for c in found.channels if not self._channels[c].is_private],
            "groups": [c for c in found.channels if self._channels[c].is_private],
            "url_private": f"{self.base_url}/files/{found.id}/{found.filename}",
            "permalink": f"https://{self.team_domain}.slack.com/files/{found.user}/{found.id}",
            "shares": self._file_shares(found),
        }

    def _file_shares(self, found: UploadedFile) -> JSON:
        """Where the file was shared, as ``files.info`` reports it: ``public`` and ``private``
        map a channel id to the shares (the message ts) there; absent when not shared."""
        shares: JSON = {}
        for channel_id, ts in found.shares.items():
            channel = self._channels[channel_id]
            message = channel.messages.get(ts)
            replies = [m for m in channel.messages.values() if m.thread_ts == ts and m.is_reply]
            share: JSON = {
                "reply_users": list(dict.fromkeys(r.user for r in replies)),
                "reply_users_count": len({r.user for r in replies}),
                "reply_count": len(replies),
                "ts": ts,
                "channel_name": channel.name,
                "team_id": self.team_id,
                "share_user_id": found.user,
                "source": "UNKNOWN",
                "is_silent_share": False,
            }
            if message is not None and message.thread_ts:
                share["thread_ts"] = message.thread_ts
            kind = "private" if channel.is_private else "public"
            shares.setdefault(kind, {}).setdefault(channel_id, []).append(share)
        return shares

    # ----------------------------------------------------------------------------------------
    # Shared checks

    def _visible_channel(self, ref: str | None, *, by_name: bool = False) -> Channel:
        """A channel the bot can see: public channels, and private ones it is in."""
        if not ref:
            raise ApiError("channel_not_found")
        channel = self._channels.get(ref)
        if channel is None and by_name:
            name = ref.lstrip("#")
            channel = next(
                (c for c in self._channels.values() if c.name == name and not c.is_im), None
            )
        if channel is None or (channel.is_private and self.bot_user_id not in channel.members):
            raise ApiError("channel_not_found")
        return channel

    def _target_channel(self, ref: str | None) -> Channel:
        """Where ``chat.postMessage`` goes: a channel id or name, or a user id (their DM)."""
        if ref and ref[0] in "UW" and ref in self._users:
            if self._users[ref].deleted:
                raise ApiError("user_disabled")
            return self._im_for(ref)
        return self._visible_channel(ref, by_name=True)

    def _im_for(self, user_id: str) -> Channel:
        channel_id = self._ims.get(user_id)
        if channel_id is None:
            channel = Channel(
                id=self._new_id("D", 10),
                name=user_id,
                created=epoch(self.now()),
                creator=self.bot_user_id,
                is_im=True,
                im_user=user_id,
                members=[self.bot_user_id, user_id],
            )
            self._channels[channel.id] = channel
            self._ims[user_id] = channel.id
            channel_id = channel.id
        return self._channels[channel_id]

    def _require_member(self, channel: Channel) -> None:
        if self.bot_user_id not in channel.members:
            raise ApiError("not_in_channel")

    def _require_active(self, channel: Channel) -> None:
        if channel.is_archived:
            raise ApiError("is_archived")

    def _existing_message(self, channel: Channel, ts: str | None) -> Message:
        message = channel.messages.get(ts or "")
        if message is None:
            raise ApiError("message_not_found")
        return message

    def _content(
        self, args: Args, *, required: bool
    ) -> tuple[str | None, list[JSON] | None, list[JSON] | None]:
        return message_content(args, self._random, required=required)

    def _checked_view(self, args: Args, *, kind: str | None) -> JSON:
        return checked_view(args, self._random, kind=kind)

    @property
    def base_url(self) -> str:
        """Where the workspace is served (set by the HTTP server)."""
        raise FakeSlackError("the fake Slack is not running: use it as a context manager")

    def _system_message(
        self, channel: Channel, user: str, subtype: str, text: str, *, inviter: str | None = None
    ) -> str:
        """The messages Slack itself adds to a channel (joins, topic and purpose changes)."""
        message = Message(
            channel=channel.id,
            ts=self._next_ts(),
            user=user,
            text=f"<@{user}> {text}",
            subtype=subtype,
            inviter=inviter,
        )
        channel.messages[message.ts] = message
        return message.ts

    def _post(
        self,
        channel: Channel,
        text: str | None,
        blocks: list[JSON] | None,
        attachments: list[JSON] | None = None,
        thread_ts: str | None = None,
        *,
        broadcast: bool = False,
        files: list[JSON] | None = None,
        metadata: JSON | None = None,
    ) -> Message:
        if thread_ts is not None:
            parent = channel.messages.get(thread_ts)
            if parent is not None and parent.is_reply:
                thread_ts = parent.thread_ts
        message = Message(
            channel=channel.id,
            ts=self._next_ts(),
            user=self.bot_user_id,
            text=text or "",
            blocks=blocks or [],
            attachments=attachments or [],
            thread_ts=thread_ts,
            reply_broadcast=broadcast and thread_ts is not None,
            bot_id=self.bot_id,
            app_id=self.app_id,
            files=files or [],
            metadata=metadata,
        )
        channel.messages[message.ts] = message
        return message

    def _deliver(
        self,
        payload: JSON,
        channel_id: str,
        user: str,
        original: tuple[str, str] | None,
        source: str,
    ) -> str | None:
        channel = self._channels[channel_id]
        if truthy(payload.get("delete_original")):
            if original is None:
                return None
            kind, ts = original
            if kind == "ephemeral":
                for item in self._ephemerals:
                    if item.ts == ts:
                        item.deleted = True
            else:
                channel.messages.pop(ts, None)
                channel.pins.pop(ts, None)
            return None
        text = payload.get("text")
        blocks = payload.get("blocks")
        if text is None and not blocks:
            return "no_text"
        if isinstance(text, str) and text_length(text) > MESSAGE_TEXT:
            return "msg_too_long"
        if blocks is not None and (not isinstance(blocks, list) or message_errors(None, blocks)):
            return "invalid_blocks"
        blocks = with_ids(blocks, self._random) or []
        text = "" if text is None else str(text)
        if truthy(payload.get("replace_original")) and original is not None:
            kind, ts = original
            if kind == "ephemeral":
                for item in self._ephemerals:
                    if item.ts == ts and not item.deleted:
                        item.text, item.blocks = text, blocks
                return None
            message = channel.messages.get(ts)
            if message is None:
                return "message_not_found"
            message.text, message.blocks = text, blocks
            message.edited = {"user": self.bot_user_id, "ts": self._next_ts()}
            return None
        thread_ts = payload.get("thread_ts")
        if payload.get("response_type") == "in_channel":
            self._post(channel, text, blocks, None, str(thread_ts) if thread_ts else None)
        else:
            self._ephemerals.append(
                Ephemeral(
                    channel_id,
                    user,
                    self._next_ts(),
                    text,
                    blocks,
                    str(thread_ts) if thread_ts else None,
                    source,
                )
            )
        return None

    def _new_hash(self) -> str:
        return f"{epoch(self.now())}.{self._random.getrandbits(32):08x}"

    def _create_view(self, user: str, view: JSON, *, root: str | None) -> View:
        new = View(
            id=self._new_id("V", 10),
            user=user,
            type=str(view.get("type")),
            payload=deep_copy(view),
            hash=self._new_hash(),
            external_id=str(view.get("external_id") or ""),
        )
        new.root_view_id = root or new.id
        self._views[new.id] = new
        return new

    def _close_view(self, view_id: str) -> None:
        found = self._views.get(view_id)
        if found is None:
            raise FakeSlackError(f"no view {view_id}")
        stack = self._modal_stacks.get(found.user, [])
        if view_id in stack:
            for closed in stack[stack.index(view_id) :]:
                self._views[closed].is_open = False
            del stack[stack.index(view_id) :]
        found.is_open = False

    def _exchange_trigger(self, args: Args) -> Trigger:
        trigger_id = args.text("trigger_id") or args.text("interactivity_pointer")
        if not trigger_id:
            raise ApiError(
                "invalid_arguments",
                response_metadata=error_lines("missing required field: trigger_id"),
            )
        trigger = self._triggers.get(trigger_id)
        if trigger is None:
            raise ApiError("invalid_trigger_id")
        if trigger.exchanged:
            raise ApiError("exchanged_trigger_id")
        if self.now() - trigger.issued_at > TRIGGER_TTL:
            raise ApiError("expired_trigger_id")
        return trigger

    def _check_external_id(self, view: JSON, *, except_view: str | None = None) -> None:
        external_id = view.get("external_id")
        if external_id and any(
            v.external_id == external_id and v.id != except_view for v in self._views.values()
        ):
            raise ApiError("duplicate_external_id")
