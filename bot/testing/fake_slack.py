"""A fake Slack Web API over real HTTP, for end-to-end tests and ``firebreak demo``.

The bot talks to it exactly as it talks to Slack: ``WebClient(base_url=fake.api_url)`` sends the
same form, JSON and multipart bodies, the same ``Authorization: Bearer`` header, and reads the
same response shapes, error codes, HTTP 429s with ``Retry-After`` and HTTP 500s. The fake follows
Slack's documented behaviour rather than what the bot happens to need: channel-name rules,
``already_in_channel``, ``not_in_channel`` when the bot was removed, ``invalid_blocks`` for a
payload over Block Kit's limits, ``expired_trigger_id`` when a modal opens more than three
seconds after the click, ``hash_conflict`` on a stale view update. A bot that passes against the
fake therefore meets the failures it will meet in production.

State lives in memory behind one lock: every request is handled atomically, so two replicas or
a burst of threads see a consistent workspace. Time comes from a controllable clock
(``advance()``), so expiry rules are tested without sleeping.

Typical use::

    with FakeSlack() as fake:
        client = WebClient(token=fake.token, base_url=fake.api_url)
        ...
        assert fake.messages(channel)[-1].text == "..."
"""

from __future__ import annotations

import base64
import contextlib
import copy
import email.parser
import email.policy
import json
import random
import re
import string
import threading
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.clock import utcnow
from bot.slack.limits import CHANNEL_NAME, MESSAGE_TEXT, PURPOSE, TOPIC, message_errors, view_errors

JSON = dict[str, Any]
_T = TypeVar("_T")

TRIGGER_TTL = timedelta(seconds=3)
"""A ``trigger_id`` can open a modal for three seconds after the interaction."""
RESPONSE_URL_TTL = timedelta(minutes=30)
RESPONSE_URL_USES = 5
"""A ``response_url`` accepts five posts within thirty minutes."""
VIEW_STACK_LIMIT = 3
VIEW_SIZE_LIMIT = 250_000
PAGE_LIMIT_MAX = 1000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ID_ALPHABET = string.ascii_uppercase + string.digits
_CHANNEL_NAME = re.compile(r"^[a-z0-9_-]+$")
_EMOJI_NAME = re.compile(r"^[a-z0-9_+'-]+(::skin-tone-[2-6])?$")
_RESERVED_NAMES = frozenset({"here", "channel", "everyone", "group", "archive", "archived"})


class ApiError(Exception):
    """A Web API error: the response becomes ``{"ok": false, "error": code, **extra}``."""

    def __init__(self, code: str, **extra: Any) -> None:
        super().__init__(code)
        self.code = code
        self.extra = extra


class FakeSlackError(Exception):
    """A scenario the fake cannot set up (an unknown user or channel, a person who is not in
    the channel they post to). Raised to the test, never sent over HTTP."""


# --------------------------------------------------------------------------------------------
# Workspace records


@dataclass
class User:
    id: str
    team_id: str
    name: str
    real_name: str
    display_name: str = ""
    email: str = ""
    is_admin: bool = False
    is_owner: bool = False
    is_primary_owner: bool = False
    deleted: bool = False
    is_bot: bool = False
    bot_id: str | None = None
    tz: str = "UTC"
    updated: int = 0


@dataclass
class Message:
    """A message as stored in a channel. ``user`` is the author (the bot user for the bot's
    messages); ``subtype`` is set for system messages such as ``channel_join``."""

    channel: str
    ts: str
    user: str
    text: str = ""
    blocks: list[JSON] = field(default_factory=list)
    attachments: list[JSON] = field(default_factory=list)
    thread_ts: str | None = None
    reply_broadcast: bool = False
    bot_id: str | None = None
    app_id: str | None = None
    subtype: str | None = None
    client_msg_id: str | None = None
    edited: JSON | None = None
    reactions: dict[str, list[str]] = field(default_factory=dict)
    files: list[JSON] = field(default_factory=list)
    metadata: JSON | None = None
    inviter: str | None = None

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts


@dataclass
class Pin:
    ts: str
    created_by: str
    created: int


@dataclass
class Channel:
    id: str
    name: str
    created: int
    creator: str
    is_private: bool = False
    is_im: bool = False
    im_user: str | None = None
    is_general: bool = False
    is_archived: bool = False
    members: list[str] = field(default_factory=list)
    topic: JSON = field(default_factory=lambda: {"value": "", "creator": "", "last_set": 0})
    purpose: JSON = field(default_factory=lambda: {"value": "", "creator": "", "last_set": 0})
    messages: dict[str, Message] = field(default_factory=dict)
    pins: dict[str, Pin] = field(default_factory=dict)


@dataclass
class Usergroup:
    id: str
    handle: str
    name: str
    users: list[str]
    description: str = ""
    disabled: bool = False
    created: int = 0
    created_by: str = ""


@dataclass
class Ephemeral:
    """A message only ``user`` sees (``chat.postEphemeral``, a response_url post, an ack)."""

    channel: str
    user: str
    ts: str
    text: str = ""
    blocks: list[JSON] = field(default_factory=list)
    thread_ts: str | None = None
    source: str = "chat.postEphemeral"
    deleted: bool = False


@dataclass
class View:
    id: str
    user: str
    type: str
    payload: JSON
    hash: str
    external_id: str = ""
    root_view_id: str = ""
    previous_view_id: str | None = None
    is_open: bool = True
    state_values: dict[str, dict[str, JSON]] = field(default_factory=dict)


@dataclass
class Trigger:
    id: str
    user: str
    issued_at: datetime
    exchanged: bool = False


@dataclass
class ResponseUrl:
    id: str
    url: str
    channel: str
    user: str
    issued_at: datetime
    original: tuple[str, str] | None = None
    """What the interaction came from: ("message", ts) or ("ephemeral", ts); None for commands."""
    uses: int = 0


@dataclass(frozen=True)
class ResponsePost:
    """One post to a response_url (or a message in the HTTP acknowledgement of a command)."""

    url: str
    payload: JSON
    at: datetime
    status: int
    error: str | None = None

    @property
    def response_type(self) -> str:
        return str(self.payload.get("response_type") or "ephemeral")

    @property
    def replace_original(self) -> bool:
        return _truthy(self.payload.get("replace_original"))

    @property
    def delete_original(self) -> bool:
        return _truthy(self.payload.get("delete_original"))


@dataclass
class UploadedFile:
    id: str
    filename: str
    length: int
    upload_token: str
    user: str
    created: int
    alt_txt: str | None = None
    snippet_type: str | None = None
    content: bytes | None = None
    title: str = ""
    channels: list[str] = field(default_factory=list)
    initial_comment: str | None = None
    thread_ts: str | None = None
    completed: bool = False


@dataclass(frozen=True)
class ApiCall:
    method: str
    args: JSON
    response: JSON
    status: int
    at: datetime

    @property
    def ok(self) -> bool:
        return bool(self.response.get("ok"))

    @property
    def error(self) -> str | None:
        error = self.response.get("error")
        return str(error) if error is not None else None


@dataclass
class _Failure:
    method: str
    error: str
    status: int
    retry_after: int | None
    remaining: int | None


# --------------------------------------------------------------------------------------------
# Argument handling: Slack accepts strings (form) and JSON values alike


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    return isinstance(value, str) and value.strip().lower() in ("true", "1", "yes")


class _Args:
    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = dict(data)

    def text(self, name: str) -> str | None:
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            return value
        if isinstance(value, int | float):
            return str(value)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return ",".join(value)
        return json.dumps(value)

    def required(self, name: str, error: str) -> str:
        value = self.text(name)
        if not value:
            raise ApiError(error)
        return value

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.data.get(name)
        return default if value is None or value == "" else _truthy(value)

    def number(self, name: str, default: int) -> int:
        value = self.data.get(name)
        if value is None or value == "":
            return default
        try:
            return int(str(value))
        except ValueError:
            raise ApiError("invalid_arguments", response_metadata=_messages(f"{name}")) from None

    def decoded(self, name: str, error: str) -> Any:
        value = self.data.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise ApiError(error) from None
        return value


def _messages(*lines: str) -> JSON:
    return {"messages": [f"[ERROR] {line}" for line in lines]}


def _ts_key(ts: str) -> int:
    """A message ts as integer microseconds, for ordering and range filters."""
    seconds, _, fraction = ts.partition(".")
    if not seconds.isdigit() or (fraction and not fraction.isdigit()):
        raise ValueError(ts)
    return int(seconds) * 1_000_000 + int((fraction + "000000")[:6])


def _epoch(moment: datetime) -> int:
    return int((moment - _EPOCH).total_seconds())


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode("ascii")


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        kind, _, value = base64.urlsafe_b64decode(cursor.encode("ascii")).decode().partition(":")
        if kind != "offset" or not value.isdigit():
            raise ValueError(cursor)
        return int(value)
    except ValueError:
        raise ApiError("invalid_cursor") from None


def _page(items: list[Any], args: _Args, default_limit: int = 100) -> tuple[list[Any], str]:
    limit = args.number("limit", default_limit)
    if limit <= 0:
        limit = default_limit
    limit = min(limit, PAGE_LIMIT_MAX)
    start = _offset(args.text("cursor"))
    page = items[start : start + limit]
    more = start + limit < len(items)
    return page, _cursor(start + limit) if more else ""


def _parse_multipart(content_type: str, body: bytes) -> JSON:
    parser = email.parser.BytesParser(policy=email.policy.HTTP)
    head = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n"
    message = parser.parsebytes(head + body)
    fields: JSON = {}
    if not message.is_multipart():
        raise ApiError("invalid_form_data")
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        raw = part.get_payload(decode=True)
        payload = raw if isinstance(raw, bytes) else b""
        if part.get_filename():
            fields[str(name)] = payload
        else:
            fields[str(name)] = payload.decode("utf-8", errors="replace")
    return fields


def _deep(value: _T) -> _T:
    return copy.deepcopy(value)


# --------------------------------------------------------------------------------------------
# The server


class FakeSlack:
    """An in-memory Slack workspace served over HTTP on 127.0.0.1 (a free port).

    Seeded with a realistic team (``seed_workspace=True``): a handful of people in different
    timezones (an admin, an owner, a deactivated account, another app's bot), an ``@oncall``
    user group, ``#general`` (without the bot) and ``#incidents`` (with the bot)."""

    def __init__(
        self,
        *,
        team_name: str = "Acme Corp",
        team_domain: str = "acme",
        bot_name: str = "firebreak",
        seed: int | None = None,
        clock: Callable[[], datetime] = utcnow,
        seed_workspace: bool = True,
    ) -> None:
        self._lock = threading.RLock()
        self._random = random.Random(seed)
        self._clock = clock
        self._offset = timedelta(0)
        self._last_ts = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

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
        self._failures: list[_Failure] = []
        self._errors: list[str] = []

        self._users[self.bot_user_id] = User(
            id=self.bot_user_id,
            team_id=self.team_id,
            name=bot_name,
            real_name=bot_name.capitalize(),
            is_bot=True,
            bot_id=self.bot_id,
        )
        self._methods: dict[str, Callable[[_Args], JSON]] = {
            "api.test": self._api_test,
            "auth.test": self._auth_test,
            "team.info": self._team_info,
            "bots.info": self._bots_info,
            "conversations.create": self._conversations_create,
            "conversations.invite": self._conversations_invite,
            "conversations.setTopic": self._conversations_set_topic,
            "conversations.setPurpose": self._conversations_set_purpose,
            "conversations.info": self._conversations_info,
            "conversations.members": self._conversations_members,
            "conversations.join": self._conversations_join,
            "conversations.open": self._conversations_open,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "conversations.archive": self._conversations_archive,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.getPermalink": self._chat_get_permalink,
            "chat.delete": self._chat_delete,
            "pins.add": self._pins_add,
            "pins.remove": self._pins_remove,
            "pins.list": self._pins_list,
            "reactions.add": self._reactions_add,
            "reactions.remove": self._reactions_remove,
            "views.open": self._views_open,
            "views.push": self._views_push,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "users.info": self._users_info,
            "users.list": self._users_list,
            "users.lookupByEmail": self._users_lookup_by_email,
            "usergroups.list": self._usergroups_list,
            "usergroups.users.list": self._usergroups_users_list,
            "files.getUploadURLExternal": self._files_get_upload_url_external,
            "files.completeUploadExternal": self._files_complete_upload_external,
            "files.info": self._files_info,
        }
        if seed_workspace:
            self._seed()

    # ----------------------------------------------------------------------------------------
    # Lifecycle

    def start(self) -> Self:
        """Listen on 127.0.0.1 at a free port and serve requests on a background thread."""
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="fake-slack", kwargs={"poll_interval": 0.05}
        )
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join()
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise FakeSlackError("the fake Slack is not running: use it as a context manager")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def api_url(self) -> str:
        """The Web API base URL, usable as ``WebClient(base_url=...)``."""
        return f"{self.base_url}/api/"

    @property
    def errors(self) -> list[str]:
        """Tracebacks of requests the fake itself failed on (should stay empty)."""
        with self._lock:
            return list(self._errors)

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
        return prefix + "".join(self._random.choices(_ID_ALPHABET, k=length))

    def _next_ts(self) -> str:
        micros = (self.now() - _EPOCH) // timedelta(microseconds=1)
        if micros <= self._last_ts:
            micros = self._last_ts + 1
        self._last_ts = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _seed(self) -> None:
        # name, real name, display name, timezone, role ("admin", "owner", "deleted" or "")
        people = [
            ("ana.garcia", "Ana García", "Ana", "Europe/Madrid", "admin"),
            ("ben.okafor", "Ben Okafor", "Ben", "Europe/London", "owner"),
            ("chloe.martin", "Chloé Martin", "Chloé", "Europe/Paris", ""),
            ("dev.patel", "Dev Patel", "dev", "Asia/Kolkata", ""),
            ("erin.walsh", "Erin Walsh", "Erin", "America/New_York", ""),
            ("farid.haddad", "Farid Haddad", "Farid", "America/Los_Angeles", ""),
            ("grace.lee", "Grace Lee", "", "Asia/Seoul", "deleted"),
        ]
        ids = {}
        for name, real_name, display, tz, role in people:
            ids[name] = self.add_user(
                name,
                real_name=real_name,
                display_name=display,
                tz=tz,
                is_admin=role == "admin",
                is_owner=role == "owner",
                deleted=role == "deleted",
            )
        self.add_user("uptime-monitor", real_name="Uptime Monitor", is_bot=True)
        active = [ids[name] for name, *_ in people if name != "grace.lee"]
        general = self.add_channel("general", members=active, purpose="Company-wide news")
        self._channels[general].is_general = True
        self.add_channel(
            "incidents",
            members=active,
            bot_member=True,
            topic="Open incidents are announced here",
        )
        self.add_usergroup(
            self._new_id("S", 10),
            "oncall",
            [ids["ana.garcia"], ids["dev.patel"], ids["erin.walsh"]],
            name="On-call engineers",
        )
        self.add_usergroup(
            self._new_id("S", 10),
            "incident-commanders",
            [ids["ben.okafor"], ids["chloe.martin"]],
            name="Incident commanders",
        )

    def add_user(
        self,
        name: str,
        *,
        real_name: str | None = None,
        display_name: str | None = None,
        email: str | None = None,
        is_admin: bool = False,
        is_owner: bool = False,
        deleted: bool = False,
        is_bot: bool = False,
        tz: str = "UTC",
    ) -> str:
        """Add a person (or another app's bot user) and return the user id."""
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise FakeSlackError(f"unknown timezone {tz!r}") from None
        with self._lock:
            if any(u.name == name for u in self._users.values()):
                raise FakeSlackError(f"a user named {name!r} already exists")
            user = User(
                id=self._new_id("U", 10),
                team_id=self.team_id,
                name=name,
                real_name=real_name if real_name is not None else name,
                display_name=display_name if display_name is not None else "",
                email=email if email is not None else ("" if is_bot else f"{name}@example.com"),
                is_admin=is_admin or is_owner,
                is_owner=is_owner,
                is_primary_owner=is_owner
                and not any(u.is_primary_owner for u in self._users.values()),
                deleted=deleted,
                is_bot=is_bot,
                bot_id=self._new_id("B", 10) if is_bot else None,
                tz=tz,
                updated=_epoch(self.now()),
            )
            self._users[user.id] = user
            return user.id

    def add_channel(
        self,
        name: str,
        *,
        private: bool = False,
        members: Iterable[str] = (),
        bot_member: bool = False,
        topic: str = "",
        purpose: str = "",
        archived: bool = False,
    ) -> str:
        """Add a channel people created (not the bot) and return its id."""
        with self._lock:
            if any(c.name == name for c in self._channels.values() if not c.is_im):
                raise FakeSlackError(f"a channel named #{name} already exists")
            member_ids = [self._user(m).id for m in members]
            creator = member_ids[0] if member_ids else next(iter(self._human_ids()), "")
            channel = Channel(
                id=self._new_id("C", 10),
                name=name,
                created=_epoch(self.now()),
                creator=creator,
                is_private=private,
                members=list(dict.fromkeys(member_ids)),
                is_archived=archived,
            )
            if bot_member:
                channel.members.append(self.bot_user_id)
            stamp = _epoch(self.now())
            channel.topic = {"value": topic, "creator": creator if topic else "", "last_set": stamp}
            channel.purpose = {
                "value": purpose,
                "creator": creator if purpose else "",
                "last_set": stamp,
            }
            self._channels[channel.id] = channel
            return channel.id

    def add_usergroup(
        self,
        id: str,
        handle: str,
        users: Iterable[str],
        *,
        name: str | None = None,
        description: str = "",
        disabled: bool = False,
    ) -> str:
        """Add a user group (``@handle``) with the given members and return its id."""
        with self._lock:
            if not id.startswith("S"):
                raise FakeSlackError(f"user group ids start with S (got {id!r})")
            member_ids = [self._user(u).id for u in users]
            self._usergroups[id] = Usergroup(
                id=id,
                handle=handle.lstrip("@"),
                name=name or handle.lstrip("@"),
                users=member_ids,
                description=description,
                disabled=disabled,
                created=_epoch(self.now()),
                created_by=next(iter(self._human_ids()), ""),
            )
            return id

    def _human_ids(self) -> list[str]:
        return [u.id for u in self._users.values() if not u.is_bot and not u.deleted]

    # ----------------------------------------------------------------------------------------
    # Lookups for tests (by id or by name)

    def _user(self, ref: str) -> User:
        user = self._users.get(ref)
        if user is None:
            user = next((u for u in self._users.values() if u.name == ref.lstrip("@")), None)
        if user is None:
            raise FakeSlackError(f"no user {ref!r} in the fake workspace")
        return user

    def _channel(self, ref: str) -> Channel:
        channel = self._channels.get(ref)
        if channel is None:
            name = ref.lstrip("#")
            channel = next(
                (c for c in self._channels.values() if c.name == name and not c.is_im), None
            )
        if channel is None:
            raise FakeSlackError(f"no channel {ref!r} in the fake workspace")
        return channel

    def user_id(self, name: str) -> str:
        """The id of the user with this name (``ana.garcia`` or ``@ana.garcia``)."""
        with self._lock:
            return self._user(name).id

    def channel_id(self, name: str) -> str:
        """The id of the channel with this name (``incidents`` or ``#incidents``)."""
        with self._lock:
            return self._channel(name).id

    def usergroup_id(self, handle: str) -> str:
        with self._lock:
            for group in self._usergroups.values():
                if group.handle == handle.lstrip("@"):
                    return group.id
        raise FakeSlackError(f"no user group @{handle.lstrip('@')}")

    def user(self, ref: str) -> User:
        with self._lock:
            return _deep(self._user(ref))

    def channel(self, ref: str) -> Channel:
        with self._lock:
            return _deep(self._channel(ref))

    def users(self) -> list[User]:
        with self._lock:
            return _deep(list(self._users.values()))

    def channels(self) -> list[Channel]:
        with self._lock:
            return _deep([c for c in self._channels.values() if not c.is_im])

    def members(self, channel: str) -> list[str]:
        with self._lock:
            return list(self._channel(channel).members)

    def user_json(self, ref: str) -> JSON:
        """The user as ``users.info`` returns it."""
        with self._lock:
            return self._user_json(self._user(ref))

    def channel_json(self, ref: str) -> JSON:
        """The channel as ``conversations.info`` returns it."""
        with self._lock:
            return self._channel_json(self._channel(ref))

    def im_channel(self, user: str) -> str:
        """The id of the bot's direct-message channel with ``user`` (opened on first use)."""
        with self._lock:
            return self._im_for(self._user(user).id).id

    # ----------------------------------------------------------------------------------------
    # Inspecting what the bot did

    @property
    def calls(self) -> list[ApiCall]:
        """Every Web API call, in order: method, args, response, HTTP status, time."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[ApiCall]:
        with self._lock:
            return [c for c in self._calls if c.method == method]

    def messages(self, channel: str, *, include_system: bool = False) -> list[Message]:
        """The channel's top-level messages, oldest first (thread replies: ``replies``).
        System messages (``channel_join``, ``channel_topic``...) only when asked for."""
        with self._lock:
            found = self._channel(channel)
            return _deep(
                [
                    m
                    for m in found.messages.values()
                    if (not m.is_reply or m.reply_broadcast)
                    and (include_system or m.subtype is None)
                ]
            )

    def message(self, channel: str, ts: str) -> Message:
        with self._lock:
            found = self._channel(channel).messages.get(ts)
            if found is None:
                raise FakeSlackError(f"no message {ts} in {channel}")
            return _deep(found)

    def replies(self, channel: str, thread_ts: str) -> list[Message]:
        """Replies in the thread under ``thread_ts``, oldest first (without the parent)."""
        with self._lock:
            found = self._channel(channel)
            return _deep(
                [m for m in found.messages.values() if m.is_reply and m.thread_ts == thread_ts]
            )

    def message_json(self, channel: str, ts: str) -> JSON:
        """The message as ``conversations.history`` returns it (what a person sees)."""
        with self._lock:
            found = self._channel(channel)
            message = found.messages.get(ts)
            if message is None:
                raise FakeSlackError(f"no message {ts} in {channel}")
            return self._message_json(found, message)

    def pins(self, channel: str) -> list[str]:
        """Timestamps of the pinned messages, in the order they were pinned."""
        with self._lock:
            return list(self._channel(channel).pins)

    def ephemerals(self, channel: str | None = None, user: str | None = None) -> list[Ephemeral]:
        with self._lock:
            channel_id = self._channel(channel).id if channel is not None else None
            user_id = self._user(user).id if user is not None else None
            return _deep(
                [
                    e
                    for e in self._ephemerals
                    if not e.deleted
                    and (channel_id is None or e.channel == channel_id)
                    and (user_id is None or e.user == user_id)
                ]
            )

    def ephemeral(self, ts: str) -> Ephemeral:
        with self._lock:
            for item in self._ephemerals:
                if item.ts == ts and not item.deleted:
                    return _deep(item)
        raise FakeSlackError(f"no ephemeral message {ts}")

    def view(self, view_id: str) -> View:
        with self._lock:
            found = self._views.get(view_id)
            if found is None:
                raise FakeSlackError(f"no view {view_id}")
            return _deep(found)

    def view_json(self, view_id: str) -> JSON:
        """The view as Slack sends it in payloads (with ``state``, ``hash``, ids)."""
        with self._lock:
            found = self._views.get(view_id)
            if found is None:
                raise FakeSlackError(f"no view {view_id}")
            return self._view_json(found)

    def open_views(self, user: str) -> list[View]:
        """The user's modal stack, bottom first."""
        with self._lock:
            stack = self._modal_stacks.get(self._user(user).id, [])
            return _deep([self._views[v] for v in stack])

    def home_view(self, user: str) -> View | None:
        with self._lock:
            view_id = self._home_views.get(self._user(user).id)
            return _deep(self._views[view_id]) if view_id else None

    def files(self) -> list[UploadedFile]:
        with self._lock:
            return _deep(list(self._files.values()))

    def response_posts(self, url: str | None = None) -> list[ResponsePost]:
        with self._lock:
            return [p for p in self._response_posts if url is None or p.url == url]

    # ----------------------------------------------------------------------------------------
    # Scenarios: what people and admins do

    def remove_bot_from_channel(self, channel: str) -> None:
        """Someone removed the bot from the channel (``/remove @firebreak``)."""
        with self._lock:
            found = self._channel(channel)
            if self.bot_user_id in found.members:
                found.members.remove(self.bot_user_id)

    def archive(self, channel: str) -> None:
        """Someone archived the channel."""
        with self._lock:
            self._channel(channel).is_archived = True

    def join(self, channel: str, user: str) -> str:
        """A person joins the channel; returns the ts of the ``channel_join`` message."""
        with self._lock:
            found, person = self._channel(channel), self._user(user)
            if found.is_archived:
                raise FakeSlackError(f"#{found.name} is archived")
            if person.id in found.members:
                raise FakeSlackError(f"{person.name} is already in #{found.name}")
            found.members.append(person.id)
            return self._system_message(found, person.id, "channel_join", "has joined the channel")

    def user_says(self, channel: str, user: str, text: str, thread_ts: str | None = None) -> str:
        """Store a message as a person posted it and return its ts. The simulator builds the
        matching ``message`` event from the stored message (``message_event(channel, ts)``)."""
        with self._lock:
            found, person = self._channel(channel), self._user(user)
            if person.deleted:
                raise FakeSlackError(f"{person.name} is deactivated and cannot post")
            if found.is_archived:
                raise FakeSlackError(f"#{found.name} is archived: nobody can post in it")
            if person.id not in found.members:
                raise FakeSlackError(
                    f"{person.name} is not in #{found.name}: call join() first, as a person "
                    "would have to"
                )
            if thread_ts is not None:
                parent = found.messages.get(thread_ts)
                if parent is None:
                    raise FakeSlackError(f"no message {thread_ts} in #{found.name} to reply to")
                thread_ts = parent.thread_ts or parent.ts
            message = Message(
                channel=found.id,
                ts=self._next_ts(),
                user=person.id,
                text=text,
                blocks=[_rich_text_block(text, self._random)],
                thread_ts=thread_ts,
                client_msg_id=str(uuid.UUID(int=self._random.getrandbits(128), version=4)),
            )
            found.messages[message.ts] = message
            return message.ts

    def user_reacts(self, channel: str, ts: str, user: str, reaction: str) -> None:
        """A person adds an emoji reaction to a message."""
        with self._lock:
            found, person = self._channel(channel), self._user(user)
            message = found.messages.get(ts)
            if message is None:
                raise FakeSlackError(f"no message {ts} in #{found.name}")
            name = reaction.strip(":")
            users = message.reactions.setdefault(name, [])
            if person.id in users:
                raise FakeSlackError(f"{person.name} already reacted with :{name}:")
            users.append(person.id)

    def user_unreacts(self, channel: str, ts: str, user: str, reaction: str) -> None:
        """A person removes their emoji reaction from a message."""
        with self._lock:
            found, person = self._channel(channel), self._user(user)
            message = found.messages.get(ts)
            name = reaction.strip(":")
            if message is None or person.id not in message.reactions.get(name, []):
                raise FakeSlackError(f"{person.name} has no :{name}: on {ts}")
            message.reactions[name].remove(person.id)
            if not message.reactions[name]:
                del message.reactions[name]

    def issue_trigger(self, user: str) -> str:
        """A ``trigger_id`` as Slack sends with an interaction; valid for three seconds."""
        with self._lock:
            person = self._user(user)
            now = self.now()
            token = "".join(self._random.choices("0123456789abcdef", k=32))
            trigger_id = f"{_epoch(now)}.{self._random.randrange(10**11, 10**12)}.{token}"
            self._triggers[trigger_id] = Trigger(trigger_id, person.id, now)
            return trigger_id

    def issue_response_url(
        self,
        channel: str,
        user: str,
        *,
        message_ts: str | None = None,
        ephemeral_ts: str | None = None,
    ) -> str:
        """A ``response_url`` for an interaction in ``channel`` by ``user``; ``message_ts`` or
        ``ephemeral_ts`` name the message the interaction came from (for replace/delete)."""
        with self._lock:
            found, person = self._channel(channel), self._user(user)
            url_id = "".join(self._random.choices(string.ascii_letters + string.digits, k=24))
            url = f"{self.base_url}/response/{self.team_id}/{url_id}"
            original: tuple[str, str] | None = None
            if message_ts is not None:
                original = ("message", message_ts)
            elif ephemeral_ts is not None:
                original = ("ephemeral", ephemeral_ts)
            self._response_urls[url_id] = ResponseUrl(
                url_id, url, found.id, person.id, self.now(), original
            )
            return url

    def fail(
        self,
        method: str,
        *,
        error: str | None = None,
        status: int = 200,
        retry_after: int | None = None,
        times: int | None = 1,
    ) -> None:
        """Make the next ``times`` calls to ``method`` fail (``times=None``: until cleared).

        ``error="ratelimited"`` or ``status=429`` answers HTTP 429 with ``Retry-After``
        (``retry_after`` seconds, default 1); ``status=500`` an internal error; any other
        ``error`` is returned as ``{"ok": false, "error": error}`` with HTTP 200."""
        if method not in self._methods:
            raise FakeSlackError(f"the fake does not implement {method}")
        if error == "ratelimited" or status == 429:
            status, error = 429, "ratelimited"
            retry_after = 1 if retry_after is None else retry_after
        elif status >= 500:
            error = error or "internal_error"
        elif error is None:
            raise FakeSlackError("fail() needs an error code or an HTTP status of 429 or 5xx")
        if times is not None and times < 1:
            raise FakeSlackError("times must be at least 1 (or None for every call)")
        with self._lock:
            self._failures.append(_Failure(method, error, status, retry_after, times))

    def clear_failures(self) -> None:
        with self._lock:
            self._failures.clear()

    # ----------------------------------------------------------------------------------------
    # What Slack does with the bot's HTTP responses (used by the simulator)

    def deliver_response(
        self,
        payload: JSON,
        *,
        channel: str,
        user: str,
        original: tuple[str, str] | None = None,
        source: str = "ack",
    ) -> str | None:
        """Show a message the bot returned to an interaction (a command's acknowledgement or a
        response_url post): ephemeral by default, ``in_channel`` as a channel message, or
        replacing / deleting the original. Returns Slack's error code, or None."""
        with self._lock:
            return self._deliver(payload, self._channel(channel).id, user, original, source)

    def close_view(self, view_id: str) -> None:
        """The person closed the modal (or the bot acknowledged its submission)."""
        with self._lock:
            self._close_view(view_id)

    def clear_views(self, user: str) -> None:
        with self._lock:
            for view_id in self._modal_stacks.pop(self._user(user).id, []):
                self._views[view_id].is_open = False

    def replace_view(self, view_id: str, view: JSON) -> list[str]:
        """``response_action: update``: replace the open view; returns Slack's complaints."""
        with self._lock:
            found = self._views.get(view_id)
            if found is None or not found.is_open:
                return [f"view {view_id} is not open"]
            problems = view_errors(view)
            if not problems and view.get("type") != found.type:
                problems = [f"view.type: cannot change a {found.type} into {view.get('type')}"]
            if problems:
                return problems
            found.payload = _deep(view)
            found.hash = self._new_hash()
            found.state_values = {}
            return []

    def push_view(self, view_id: str, view: JSON) -> tuple[str | None, list[str]]:
        """``response_action: push``: stack a new modal on top; returns (id, complaints)."""
        with self._lock:
            found = self._views.get(view_id)
            if found is None or not found.is_open:
                return None, [f"view {view_id} is not open"]
            stack = self._modal_stacks.get(found.user, [])
            if len(stack) >= VIEW_STACK_LIMIT:
                return None, ["push_limit_reached"]
            problems = view_errors(view)
            if problems:
                return None, problems
            new = self._create_view(found.user, view, root=stack[0] if stack else None)
            new.previous_view_id = stack[-1] if stack else None
            stack.append(new.id)
            self._modal_stacks[found.user] = stack
            return new.id, []

    def set_view_state(self, view_id: str, block_id: str, action_id: str, state: JSON) -> None:
        """Remember what a person chose in a view's element (Slack keeps it in view.state)."""
        with self._lock:
            found = self._views.get(view_id)
            if found is None:
                raise FakeSlackError(f"no view {view_id}")
            found.state_values.setdefault(block_id, {})[action_id] = _deep(state)

    # ----------------------------------------------------------------------------------------
    # HTTP

    def _handle(self, handler: _Handler) -> None:
        try:
            parts = urlsplit(handler.path)
            length = int(handler.headers.get("Content-Length") or 0)
            body = handler.rfile.read(length) if length > 0 else b""
            if parts.path.startswith("/api/"):
                status, headers, payload = self._handle_api(
                    parts.path[len("/api/") :], parts.query, handler, body
                )
            elif parts.path.startswith("/upload/v1/"):
                status, headers, payload = self._handle_upload(
                    parts.path[len("/upload/v1/") :], handler, body
                )
            elif parts.path.startswith("/response/"):
                status, headers, payload = self._handle_response_url(
                    parts.path.rsplit("/", 1)[-1], handler, body
                )
            else:
                status, headers, payload = 404, {"Content-Type": "text/plain"}, b"not found"
        except Exception:
            with self._lock:
                self._errors.append(traceback.format_exc())
            status, headers = 500, {"Content-Type": "application/json; charset=utf-8"}
            payload = b'{"ok":false,"error":"fatal_error"}'
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _parse_body(self, query: str, handler: _Handler, body: bytes) -> JSON:
        args: JSON = dict(parse_qsl(query, keep_blank_values=True))
        content_type = handler.headers.get("Content-Type", "")
        kind = content_type.split(";")[0].strip().lower()
        if not body:
            return args
        if kind == "application/json":
            try:
                data = json.loads(body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                raise ApiError("invalid_json") from None
            if not isinstance(data, dict):
                raise ApiError("invalid_json")
            args.update(data)
        elif kind == "multipart/form-data":
            args.update(_parse_multipart(content_type, body))
        else:
            try:
                text = body.decode("utf-8")
                args.update(parse_qsl(text, keep_blank_values=True, strict_parsing=True))
            except (UnicodeDecodeError, ValueError):
                raise ApiError("invalid_form_data") from None
        return args

    def _handle_api(
        self, method: str, query: str, handler: _Handler, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        headers = {"Content-Type": "application/json; charset=utf-8"}
        status = 200
        args: JSON = {}
        implementation: Callable[[_Args], JSON] | None = None
        try:
            args = self._parse_body(query, handler, body)
            token = args.pop("token", None)
            authorization = handler.headers.get("Authorization", "")
            if authorization.lower().startswith("bearer "):
                token = authorization[len("bearer ") :].strip()
            implementation = self._methods.get(method)
            if implementation is None:
                raise ApiError("unknown_method", req_method=method)
            if not token:
                raise ApiError("not_authed")
            if token != self.token:
                raise ApiError("invalid_auth")
        except ApiError as exc:
            implementation = None
            response: JSON = {"ok": False, "error": exc.code, **exc.extra}
        # One critical section per call: the state change and its place in ``calls`` agree
        # even when replicas or threads call at once.
        with self._lock:
            if implementation is not None:
                try:
                    failure = self._take_failure(method)
                    if failure is not None:
                        status = failure.status
                        if failure.retry_after is not None:
                            headers["Retry-After"] = str(failure.retry_after)
                        raise ApiError(failure.error)
                    response = {"ok": True, **implementation(_Args(args))}
                except ApiError as exc:
                    response = {"ok": False, "error": exc.code, **exc.extra}
            self._calls.append(
                ApiCall(method, _recorded_args(args), _deep(response), status, self.now())
            )
        return status, headers, json.dumps(response).encode("utf-8")

    def _take_failure(self, method: str) -> _Failure | None:
        for failure in self._failures:
            if failure.method == method:
                if failure.remaining is not None:
                    failure.remaining -= 1
                    if failure.remaining <= 0:
                        self._failures.remove(failure)
                return failure
        return None

    def _handle_upload(
        self, upload_token: str, handler: _Handler, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        content_type = handler.headers.get("Content-Type", "")
        content = body
        if content_type.lower().startswith("multipart/form-data"):
            try:
                fields = _parse_multipart(content_type, body)
            except ApiError:
                return 400, {"Content-Type": "text/plain"}, b"invalid multipart body"
            content = next((v for v in fields.values() if isinstance(v, bytes)), b"")
        with self._lock:
            found = next((f for f in self._files.values() if f.upload_token == upload_token), None)
            if found is None or found.completed:
                return 404, {"Content-Type": "text/plain"}, b"upload URL not found"
            found.content = content
        return 200, {"Content-Type": "text/plain"}, f"OK - {len(content)}".encode()

    def _handle_response_url(
        self, url_id: str, handler: _Handler, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        headers = {"Content-Type": "application/json; charset=utf-8"}
        with self._lock:
            target = self._response_urls.get(url_id)
            url = target.url if target else f"{self.base_url}/response/{url_id}"
            payload: JSON = {}
            error: str | None = None
            status = 200
            try:
                payload = self._response_payload(handler, body)
            except ApiError as exc:
                error, status = exc.code, 400
            if target is None:
                error, status = "no_such_url", 404
            elif error is None and self.now() - target.issued_at > RESPONSE_URL_TTL:
                error, status = "expired_url", 404
            elif error is None and target.uses >= RESPONSE_URL_USES:
                error, status = "used_url", 404
            if error is None and target is not None:
                target.uses += 1
                error = self._deliver(
                    payload, target.channel, target.user, target.original, "response_url"
                )
                if error is not None:
                    status = 400
            self._response_posts.append(ResponsePost(url, payload, self.now(), status, error))
        response = {"ok": error is None, **({"error": error} if error else {})}
        return status, headers, json.dumps(response).encode("utf-8")

    @staticmethod
    def _response_payload(handler: _Handler, body: bytes) -> JSON:
        kind = handler.headers.get("Content-Type", "").split(";")[0].strip().lower()
        try:
            text = body.decode("utf-8")
            if kind == "application/x-www-form-urlencoded":
                text = dict(parse_qsl(text)).get("payload", "")
            data = json.loads(text)
        except (UnicodeDecodeError, ValueError):
            raise ApiError("invalid_payload") from None
        if not isinstance(data, dict):
            raise ApiError("invalid_payload")
        return data

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

    def _message_json(self, channel: Channel, message: Message) -> JSON:
        data: JSON = {"type": "message"}
        if message.subtype:
            data["subtype"] = message.subtype
        data.update({"user": message.user, "text": message.text, "ts": message.ts})
        data["team"] = self.team_id
        if message.client_msg_id:
            data["client_msg_id"] = message.client_msg_id
        if message.blocks:
            data["blocks"] = _deep(message.blocks)
        if message.attachments:
            data["attachments"] = _deep(message.attachments)
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
            data["files"] = _deep(message.files)
            data["upload"] = False
        if message.metadata:
            data["metadata"] = _deep(message.metadata)
        return data

    def _view_json(self, view: View) -> JSON:
        payload = view.payload
        data: JSON = {
            "id": view.id,
            "team_id": self.team_id,
            "type": view.type,
            "blocks": _deep(payload.get("blocks", [])),
            "private_metadata": payload.get("private_metadata", ""),
            "callback_id": payload.get("callback_id", ""),
            "state": {"values": _deep(view.state_values)},
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
            data["title"] = _deep(payload.get("title"))
            data["close"] = _deep(payload.get("close"))
            data["submit"] = _deep(payload.get("submit"))
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
        }

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
                created=_epoch(self.now()),
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
        self, args: _Args, *, required: bool
    ) -> tuple[str | None, list[JSON] | None, list[JSON] | None]:
        """Text, blocks and attachments of a message, checked as Slack checks them."""
        text = args.text("text")
        blocks = args.decoded("blocks", "invalid_blocks_format")
        if blocks is not None and not isinstance(blocks, list):
            raise ApiError("invalid_blocks_format")
        attachments = args.decoded("attachments", "invalid_attachments")
        if attachments is not None and not isinstance(attachments, list):
            raise ApiError("invalid_attachments")
        if required and not text and not blocks and not attachments:
            raise ApiError("no_text")
        if text is not None and len(text) > MESSAGE_TEXT:
            raise ApiError("msg_too_long")
        if attachments is not None and len(attachments) > 100:
            raise ApiError("too_many_attachments")
        if blocks:
            problems = message_errors(None, blocks)
            if problems:
                raise ApiError(
                    "invalid_blocks", errors=problems, response_metadata=_messages(*problems)
                )
        return text, _with_ids(blocks, self._random), attachments

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
        if _truthy(payload.get("delete_original")):
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
        if isinstance(text, str) and len(text) > MESSAGE_TEXT:
            return "msg_too_long"
        if blocks is not None and (not isinstance(blocks, list) or message_errors(None, blocks)):
            return "invalid_blocks"
        blocks = _with_ids(blocks, self._random) or []
        text = "" if text is None else str(text)
        if _truthy(payload.get("replace_original")) and original is not None:
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
        return f"{_epoch(self.now())}.{self._random.getrandbits(32):08x}"

    def _create_view(self, user: str, view: JSON, *, root: str | None) -> View:
        new = View(
            id=self._new_id("V", 10),
            user=user,
            type=str(view.get("type")),
            payload=_deep(view),
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

    def _checked_view(self, args: _Args, *, kind: str | None) -> JSON:
        view = args.decoded("view", "invalid_arguments")
        if not isinstance(view, dict):
            raise ApiError("invalid_arguments", response_metadata=_messages("view is required"))
        if len(json.dumps(view)) > VIEW_SIZE_LIMIT:
            raise ApiError("view_too_large")
        if kind is not None and view.get("type") != kind:
            raise ApiError(
                "invalid_arguments",
                response_metadata=_messages(f"view.type must be {kind}"),
            )
        problems = view_errors(view)
        if problems:
            raise ApiError("invalid_arguments", response_metadata=_messages(*problems))
        return _with_view_ids(view, self._random)

    def _exchange_trigger(self, args: _Args) -> Trigger:
        trigger_id = args.text("trigger_id") or args.text("interactivity_pointer")
        if not trigger_id:
            raise ApiError(
                "invalid_arguments",
                response_metadata=_messages("missing required field: trigger_id"),
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

    # ----------------------------------------------------------------------------------------
    # Web API methods (called with the lock held)

    def _api_test(self, args: _Args) -> JSON:
        return {"args": _recorded_args(args.data)}

    def _auth_test(self, args: _Args) -> JSON:
        return {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_name,
            "user": self.bot_name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _team_info(self, args: _Args) -> JSON:
        return {
            "team": {
                "id": self.team_id,
                "name": self.team_name,
                "domain": self.team_domain,
                "email_domain": "example.com",
                "icon": {"image_default": True},
                "url": f"https://{self.team_domain}.slack.com/",
            }
        }

    def _bots_info(self, args: _Args) -> JSON:
        bot = args.text("bot") or self.bot_id
        owner = next((u for u in self._users.values() if u.bot_id == bot), None)
        if owner is None:
            raise ApiError("bot_not_found")
        return {
            "bot": {
                "id": bot,
                "deleted": owner.deleted,
                "name": owner.name,
                "updated": owner.updated,
                "app_id": self.app_id if bot == self.bot_id else self._new_id("A", 10),
                "user_id": owner.id,
                "icons": {"image_48": f"https://avatars.example.com/{bot}_48.png"},
            }
        }

    def _conversations_create(self, args: _Args) -> JSON:
        name = args.text("name")
        if not name:
            raise ApiError("invalid_name_required")
        if len(name) > CHANNEL_NAME:
            raise ApiError("invalid_name_maxlength")
        if not _CHANNEL_NAME.match(name):
            raise ApiError("invalid_name_specials")
        if not name.strip("-_"):
            raise ApiError("invalid_name_punctuation")
        if name in _RESERVED_NAMES:
            raise ApiError("invalid_name")
        if any(c.name == name for c in self._channels.values() if not c.is_im):
            raise ApiError("name_taken")
        channel = Channel(
            id=self._new_id("C", 10),
            name=name,
            created=_epoch(self.now()),
            creator=self.bot_user_id,
            is_private=args.flag("is_private"),
            members=[self.bot_user_id],
        )
        self._channels[channel.id] = channel
        self._system_message(channel, self.bot_user_id, "channel_join", "has joined the channel")
        return {"channel": self._channel_json(channel)}

    def _conversations_invite(self, args: _Args) -> JSON:
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

    def _set_text_field(self, args: _Args, name: str, limit: int, subtype: str) -> JSON:
        channel = self._visible_channel(args.text("channel"))
        value = args.text(name) or ""
        if len(value) > limit:
            raise ApiError("too_long")
        self._require_active(channel)
        self._require_member(channel)
        setattr(
            channel,
            name,
            {"value": value, "creator": self.bot_user_id, "last_set": _epoch(self.now())},
        )
        verb = "set the channel topic" if name == "topic" else "set the channel description"
        self._system_message(channel, self.bot_user_id, subtype, f"{verb}: {value}")
        return {"channel": self._channel_json(channel)}

    def _conversations_set_topic(self, args: _Args) -> JSON:
        return self._set_text_field(args, "topic", TOPIC, "channel_topic")

    def _conversations_set_purpose(self, args: _Args) -> JSON:
        return self._set_text_field(args, "purpose", PURPOSE, "channel_purpose")

    def _conversations_info(self, args: _Args) -> JSON:
        channel = self._visible_channel(args.text("channel"))
        return {"channel": self._channel_json(channel)}

    def _conversations_members(self, args: _Args) -> JSON:
        channel = self._visible_channel(args.text("channel"))
        page, cursor = _page(list(channel.members), args)
        return {"members": page, "response_metadata": {"next_cursor": cursor}}

    def _conversations_join(self, args: _Args) -> JSON:
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

    def _conversations_open(self, args: _Args) -> JSON:
        raw = args.text("users") or ""
        ids = [u.strip() for u in raw.split(",") if u.strip()]
        if not ids:
            raise ApiError("users_list_not_supplied")
        if len(ids) > 1:
            raise ApiError(
                "invalid_arguments",
                response_metadata=_messages("the fake opens direct messages with one user"),
            )
        person = self._users.get(ids[0])
        if person is None:
            raise ApiError("user_not_found")
        if person.deleted:
            raise ApiError("user_disabled")
        existed = ids[0] in self._ims
        channel = self._im_for(ids[0])
        return {"channel": {"id": channel.id}, "no_op": existed, "already_open": existed}

    def _history_bounds(self, args: _Args) -> tuple[int | None, int, bool]:
        try:
            latest_text = args.text("latest")
            latest = _ts_key(latest_text) if latest_text else None
        except ValueError:
            raise ApiError("invalid_ts_latest") from None
        try:
            oldest_text = args.text("oldest")
            oldest = _ts_key(oldest_text) if oldest_text else 0
        except ValueError:
            raise ApiError("invalid_ts_oldest") from None
        return latest, oldest, args.flag("inclusive")

    @staticmethod
    def _within(ts: str, latest: int | None, oldest: int, inclusive: bool) -> bool:
        key = _ts_key(ts)
        above = key > oldest or (inclusive and key == oldest)
        below = latest is None or key < latest or (inclusive and key == latest)
        return above and below

    def _conversations_history(self, args: _Args) -> JSON:
        channel = self._visible_channel(args.text("channel"))
        self._require_member(channel)
        latest, oldest, inclusive = self._history_bounds(args)
        selected = [
            m
            for m in reversed(channel.messages.values())
            if (not m.is_reply or m.reply_broadcast)
            and self._within(m.ts, latest, oldest, inclusive)
        ]
        page, cursor = _page(selected, args)
        return {
            "messages": [self._message_json(channel, m) for m in page],
            "has_more": bool(cursor),
            "pin_count": len(channel.pins),
            "response_metadata": {"next_cursor": cursor},
        }

    def _conversations_replies(self, args: _Args) -> JSON:
        channel = self._visible_channel(args.text("channel"))
        self._require_member(channel)
        message = channel.messages.get(args.text("ts") or "")
        if message is None:
            raise ApiError("thread_not_found")
        parent_ts = message.thread_ts or message.ts
        parent = channel.messages.get(parent_ts)
        thread = [m for m in channel.messages.values() if m.thread_ts == parent_ts and m.is_reply]
        if parent is not None:
            thread.insert(0, parent)
        latest, oldest, inclusive = self._history_bounds(args)
        selected = [m for m in thread if self._within(m.ts, latest, oldest, inclusive)]
        page, cursor = _page(selected, args, default_limit=1000)
        return {
            "messages": [self._message_json(channel, m) for m in page],
            "has_more": bool(cursor),
            "response_metadata": {"next_cursor": cursor},
        }

    def _conversations_archive(self, args: _Args) -> JSON:
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

    def _chat_post_message(self, args: _Args) -> JSON:
        channel = self._target_channel(args.text("channel"))
        self._require_active(channel)
        self._require_member(channel)
        text, blocks, attachments = self._content(args, required=True)
        metadata = args.decoded("metadata", "invalid_metadata_format")
        message = self._post(
            channel,
            text,
            blocks,
            attachments,
            args.text("thread_ts") or None,
            broadcast=args.flag("reply_broadcast"),
            metadata=metadata if isinstance(metadata, dict) else None,
        )
        return {
            "channel": channel.id,
            "ts": message.ts,
            "message": self._message_json(channel, message),
        }

    def _chat_update(self, args: _Args) -> JSON:
        channel = self._visible_channel(args.text("channel"))
        message = self._existing_message(channel, args.text("ts"))
        if message.user != self.bot_user_id or message.subtype is not None:
            raise ApiError("cant_update_message")
        self._require_active(channel)
        text, blocks, attachments = self._content(args, required=False)
        if text is None and blocks is None and attachments is None:
            raise ApiError("no_text")
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
        }

    def _chat_post_ephemeral(self, args: _Args) -> JSON:
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

    def _chat_get_permalink(self, args: _Args) -> JSON:
        channel = self._visible_channel(args.text("channel"))
        message = self._existing_message(channel, args.text("message_ts"))
        link = (
            f"https://{self.team_domain}.slack.com/archives/{channel.id}/"
            f"p{message.ts.replace('.', '')}"
        )
        if message.is_reply:
            link += f"?thread_ts={message.thread_ts}&cid={channel.id}"
        return {"channel": channel.id, "permalink": link}

    def _chat_delete(self, args: _Args) -> JSON:
        channel = self._visible_channel(args.text("channel"))
        message = self._existing_message(channel, args.text("ts"))
        if message.user != self.bot_user_id:
            raise ApiError("cant_delete_message")
        del channel.messages[message.ts]
        channel.pins.pop(message.ts, None)
        return {"channel": channel.id, "ts": message.ts}

    def _pins_add(self, args: _Args) -> JSON:
        channel = self._visible_channel(args.text("channel"))
        ts = args.text("timestamp")
        if not ts:
            raise ApiError("no_item_specified")
        self._require_active(channel)
        self._require_member(channel)
        message = self._existing_message(channel, ts)
        if message.ts in channel.pins:
            raise ApiError("already_pinned")
        channel.pins[message.ts] = Pin(message.ts, self.bot_user_id, _epoch(self.now()))
        return {}

    def _pins_remove(self, args: _Args) -> JSON:
        channel = self._visible_channel(args.text("channel"))
        ts = args.text("timestamp")
        if not ts:
            raise ApiError("no_item_specified")
        self._require_member(channel)
        if ts not in channel.pins:
            raise ApiError("no_pin")
        del channel.pins[ts]
        return {}

    def _pins_list(self, args: _Args) -> JSON:
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
                            _Args({"channel": channel.id, "message_ts": pin.ts})
                        )["permalink"],
                    },
                }
            )
        return {"items": items}

    def _reaction_target(self, args: _Args) -> tuple[Channel, Message, str]:
        channel = self._visible_channel(args.text("channel"))
        name = (args.text("name") or "").strip(":")
        if not args.text("timestamp"):
            raise ApiError("no_item_specified")
        message = self._existing_message(channel, args.text("timestamp"))
        if not name or not _EMOJI_NAME.match(name):
            raise ApiError("invalid_name")
        return channel, message, name

    def _reactions_add(self, args: _Args) -> JSON:
        channel, message, name = self._reaction_target(args)
        self._require_active(channel)
        users = message.reactions.setdefault(name, [])
        if self.bot_user_id in users:
            raise ApiError("already_reacted")
        users.append(self.bot_user_id)
        return {}

    def _reactions_remove(self, args: _Args) -> JSON:
        _, message, name = self._reaction_target(args)
        users = message.reactions.get(name, [])
        if self.bot_user_id not in users:
            raise ApiError("no_reaction")
        users.remove(self.bot_user_id)
        if not users:
            del message.reactions[name]
        return {}

    def _views_open(self, args: _Args) -> JSON:
        trigger = self._exchange_trigger(args)
        view = self._checked_view(args, kind="modal")
        self._check_external_id(view)
        trigger.exchanged = True
        for old in self._modal_stacks.get(trigger.user, []):
            self._views[old].is_open = False
        created = self._create_view(trigger.user, view, root=None)
        self._modal_stacks[trigger.user] = [created.id]
        return {"view": self._view_json(created)}

    def _views_push(self, args: _Args) -> JSON:
        trigger = self._exchange_trigger(args)
        view = self._checked_view(args, kind="modal")
        stack = self._modal_stacks.get(trigger.user, [])
        if not stack:
            raise ApiError(
                "invalid_arguments",
                response_metadata=_messages("views.push needs a modal open for this user"),
            )
        if len(stack) >= VIEW_STACK_LIMIT:
            raise ApiError("push_limit_reached")
        self._check_external_id(view)
        trigger.exchanged = True
        created = self._create_view(trigger.user, view, root=stack[0])
        created.previous_view_id = stack[-1]
        stack.append(created.id)
        return {"view": self._view_json(created)}

    def _views_update(self, args: _Args) -> JSON:
        view_id, external_id = args.text("view_id"), args.text("external_id")
        if not view_id and not external_id:
            raise ApiError(
                "invalid_arguments",
                response_metadata=_messages("either view_id or external_id is required"),
            )
        found = (
            self._views.get(view_id)
            if view_id
            else next((v for v in self._views.values() if v.external_id == external_id), None)
        )
        if found is None or not found.is_open:
            raise ApiError("not_found")
        view = self._checked_view(args, kind=found.type)
        given_hash = args.text("hash")
        if given_hash and given_hash != found.hash:
            raise ApiError("hash_conflict")
        self._check_external_id(view, except_view=found.id)
        found.payload = view
        found.external_id = str(view.get("external_id") or found.external_id)
        found.hash = self._new_hash()
        return {"view": self._view_json(found)}

    def _views_publish(self, args: _Args) -> JSON:
        user_id = args.text("user_id")
        person = self._users.get(user_id or "")
        if person is None or person.deleted:
            raise ApiError("user_not_found")
        view = self._checked_view(args, kind="home")
        existing_id = self._home_views.get(person.id)
        given_hash = args.text("hash")
        if existing_id is not None:
            existing = self._views[existing_id]
            if given_hash and given_hash != existing.hash:
                raise ApiError("hash_conflict")
            self._check_external_id(view, except_view=existing.id)
            existing.payload = view
            existing.external_id = str(view.get("external_id") or "")
            existing.hash = self._new_hash()
            existing.state_values = {}
            return {"view": self._view_json(existing)}
        self._check_external_id(view)
        created = self._create_view(person.id, view, root=None)
        self._home_views[person.id] = created.id
        return {"view": self._view_json(created)}

    def _users_info(self, args: _Args) -> JSON:
        person = self._users.get(args.text("user") or "")
        if person is None:
            raise ApiError("user_not_found")
        return {"user": self._user_json(person)}

    def _users_list(self, args: _Args) -> JSON:
        page, cursor = _page(list(self._users.values()), args, default_limit=200)
        return {
            "members": [self._user_json(u) for u in page],
            "cache_ts": _epoch(self.now()),
            "response_metadata": {"next_cursor": cursor},
        }

    def _users_lookup_by_email(self, args: _Args) -> JSON:
        email = (args.text("email") or "").lower()
        person = next(
            (u for u in self._users.values() if u.email and u.email.lower() == email), None
        )
        if person is None:
            raise ApiError("users_not_found")
        return {"user": self._user_json(person)}

    def _usergroup_json(self, group: Usergroup, *, include_users: bool) -> JSON:
        data: JSON = {
            "id": group.id,
            "team_id": self.team_id,
            "is_usergroup": True,
            "is_subteam": True,
            "name": group.name,
            "description": group.description,
            "handle": group.handle,
            "is_external": False,
            "date_create": group.created,
            "date_update": group.created,
            "date_delete": group.created if group.disabled else 0,
            "auto_type": None,
            "created_by": group.created_by,
            "updated_by": group.created_by,
            "deleted_by": group.created_by if group.disabled else None,
            "prefs": {"channels": [], "groups": []},
            "user_count": len(group.users),
        }
        if include_users:
            data["users"] = list(group.users)
        return data

    def _usergroups_list(self, args: _Args) -> JSON:
        include_disabled = args.flag("include_disabled")
        include_users = args.flag("include_users")
        return {
            "usergroups": [
                self._usergroup_json(g, include_users=include_users)
                for g in self._usergroups.values()
                if include_disabled or not g.disabled
            ]
        }

    def _usergroups_users_list(self, args: _Args) -> JSON:
        group = self._usergroups.get(args.text("usergroup") or "")
        if group is None or (group.disabled and not args.flag("include_disabled")):
            raise ApiError("no_such_subteam")
        return {"users": list(group.users)}

    def _files_get_upload_url_external(self, args: _Args) -> JSON:
        filename = args.text("filename")
        length_text = args.text("length")
        if not filename or length_text is None:
            raise ApiError(
                "invalid_arguments",
                response_metadata=_messages("filename and length are required"),
            )
        length = args.number("length", 0)
        if length <= 0:
            raise ApiError("missing_argument")
        alt_txt = args.text("alt_txt")
        if alt_txt and len(alt_txt) > 1000:
            raise ApiError("alt_txt_too_large")
        upload_token = "".join(self._random.choices(string.ascii_letters + string.digits, k=32))
        found = UploadedFile(
            id=self._new_id("F", 10),
            filename=filename,
            length=length,
            upload_token=upload_token,
            user=self.bot_user_id,
            created=_epoch(self.now()),
            alt_txt=alt_txt,
            snippet_type=args.text("snippet_type"),
        )
        self._files[found.id] = found
        return {"upload_url": f"{self.base_url}/upload/v1/{upload_token}", "file_id": found.id}

    def _files_complete_upload_external(self, args: _Args) -> JSON:
        items = args.decoded("files", "invalid_arguments")
        if not isinstance(items, list) or not items:
            raise ApiError("invalid_arguments", response_metadata=_messages("files is required"))
        targets: list[str] = []
        channel_id = args.text("channel_id")
        if channel_id:
            targets.append(channel_id)
        targets += [c.strip() for c in (args.text("channels") or "").split(",") if c.strip()]
        channels: list[Channel] = []
        for ref in dict.fromkeys(targets):
            channel = self._channels.get(ref)
            if channel is None or (channel.is_private and self.bot_user_id not in channel.members):
                raise ApiError("invalid_channel")
            if channel.is_archived or self.bot_user_id not in channel.members:
                raise ApiError("posting_to_channel_denied")
            channels.append(channel)
        uploads: list[tuple[UploadedFile, str | None]] = []
        for item in items:
            found = self._files.get(str(item.get("id"))) if isinstance(item, dict) else None
            if found is None or found.completed or found.content is None:
                raise ApiError("file_not_found")
            title = item.get("title")
            uploads.append((found, str(title) if title is not None else None))
        comment = args.text("initial_comment")
        thread_ts = args.text("thread_ts") or None
        for found, title in uploads:
            found.completed = True
            found.title = title or found.filename
            found.channels = [c.id for c in channels]
            found.initial_comment = comment
            found.thread_ts = thread_ts
        files_json = [self._file_json(f) for f, _ in uploads]
        for channel in channels:
            self._post(channel, comment or "", None, None, thread_ts, files=files_json)
        return {"files": [{"id": f.id, "title": f.title} for f, _ in uploads]}

    def _files_info(self, args: _Args) -> JSON:
        found = self._files.get(args.text("file") or "")
        if found is None or not found.completed:
            raise ApiError("file_not_found")
        return {"file": self._file_json(found), "comments": [], "response_metadata": {}}


# --------------------------------------------------------------------------------------------
# Block ids: Slack fills in the ids an app leaves out, so every element can be acted on


def _short_id(rng: random.Random) -> str:
    return "".join(rng.choices(string.ascii_letters + string.digits, k=5))


def _with_ids(blocks: list[JSON] | None, rng: random.Random) -> list[JSON] | None:
    if blocks is None:
        return None
    result: list[JSON] = _deep(blocks)
    for block in result:
        if not isinstance(block, dict):
            continue
        block.setdefault("block_id", _short_id(rng))
        elements: list[Any] = []
        if block.get("type") == "actions":
            elements = list(block.get("elements") or [])
        elif isinstance(block.get("accessory"), dict):
            elements = [block["accessory"]]
        elif isinstance(block.get("element"), dict):
            elements = [block["element"]]
        for element in elements:
            if isinstance(element, dict) and element.get("type") not in ("image", None):
                element.setdefault("action_id", _short_id(rng))
    return result


def _with_view_ids(view: JSON, rng: random.Random) -> JSON:
    result: JSON = _deep(view)
    blocks = result.get("blocks")
    if isinstance(blocks, list):
        result["blocks"] = _with_ids(blocks, rng)
    return result


def _rich_text_block(text: str, rng: random.Random) -> JSON:
    """The ``rich_text`` block Slack attaches to a message a person typed."""
    return {
        "type": "rich_text",
        "block_id": _short_id(rng),
        "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}],
    }


_JSON_ARGS = ("blocks", "attachments", "view", "files", "metadata")


def _recorded_args(args: Mapping[str, Any]) -> JSON:
    """The call's arguments as the test wants to read them: JSON strings decoded."""
    recorded: JSON = {}
    for key, value in args.items():
        if key == "token":
            continue
        if key in _JSON_ARGS and isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        elif isinstance(value, bytes):
            value = f"<{len(value)} bytes>"
        recorded[key] = _deep(value)
    return recorded


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeSlack


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "FakeSlack/1.0"

    def do_POST(self) -> None:
        self.server.fake._handle(self)

    def do_GET(self) -> None:
        self.server.fake._handle(self)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log: the fake records every call instead."""
