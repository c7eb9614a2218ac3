"""The workspace model: users, channels, messages, pins, user groups, ephemeral messages, views,
triggers, response URLs, uploaded files, and the record of every Web API call; with the error
types and the limits Slack enforces on them."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

JSON = dict[str, Any]

TRIGGER_TTL = timedelta(seconds=3)
"""A ``trigger_id`` can open a modal for three seconds after the interaction."""
RESPONSE_URL_TTL = timedelta(minutes=30)
RESPONSE_URL_USES = 5
"""A ``response_url`` accepts five posts within thirty minutes."""
VIEW_STACK_LIMIT = 3
VIEW_SIZE_LIMIT = 250_000
PAGE_LIMIT_MAX = 1000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ID_ALPHABET = string.ascii_uppercase + string.digits
CHANNEL_NAME_PATTERN = re.compile(r"^[a-z0-9_-]+$")
EMOJI_NAME = re.compile(r"^[a-z0-9_+'-]+(::skin-tone-[2-6])?$")
APP_TOKEN_METHODS = frozenset({"apps.connections.open"})
"""Methods called with the app-level token (``xapp-``), and only with it."""
EVENT_TYPE = re.compile(r"^[A-Za-z0-9_-]+$")
"""A message metadata ``event_type``: letters, digits, underscores and hyphens."""
RESERVED_NAMES = frozenset({"here", "channel", "everyone", "group", "archive", "archived"})


class ApiError(Exception):
    """A Web API error: the response becomes ``{"ok": false, "error": code, **extra}``."""

    def __init__(self, code: str, **extra: Any) -> None:
        super().__init__(code)
        self.code = code
        self.extra = extra


class FakeSlackError(Exception):
    """A scenario the fake cannot set up (an unknown user or channel, a person who is not in
    the channel they post to). Raised to the test, never sent over HTTP."""


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
        return truthy(self.payload.get("replace_original"))

    @property
    def delete_original(self) -> bool:
        return truthy(self.payload.get("delete_original"))


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
    shares: dict[str, str] = field(default_factory=dict)
    """Channel id -> ts of the message that shared the file there."""


@dataclass(frozen=True)
class ApiCall:
    """One Web API call as the fake saw it.

    ``response`` and ``status`` are what the client was sent: ``status`` 0 and an empty
    ``response`` when no answer was sent (a reset or hung connection), an empty ``response``
    when the body was not JSON (an HTML error page, garbage). ``outcome`` is what the method
    itself returned when it ran (``None`` when it did not run: a fault before the work, a bad
    token); ``applied`` tells whether its side effects happened. ``fault`` names the injected
    fault that answered, if any (see ``bot.sandbox.faults``)."""

    method: str
    args: JSON
    response: JSON
    status: int
    at: datetime
    fault: str | None = None
    outcome: JSON | None = None

    @property
    def ok(self) -> bool:
        return bool(self.response.get("ok"))

    @property
    def error(self) -> str | None:
        error = self.response.get("error")
        return str(error) if error is not None else None

    @property
    def applied(self) -> bool:
        """The method ran and succeeded: its side effects are in the workspace."""
        return bool(self.outcome and self.outcome.get("ok"))


def truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    return isinstance(value, str) and value.strip().lower() in ("true", "1", "yes")


FaultMode = Literal["error", "500", "html", "garbage", "reset", "hang"]


@dataclass
class Failure:
    """A fault armed with ``FakeSlack.fail()``."""

    method: str
    error: str
    status: int
    retry_after: str | None
    remaining: int | None
    mode: FaultMode = "error"
    after_work: bool = False
    hang_seconds: float = 0.0
    fields: JSON = field(default_factory=dict)

    @property
    def label(self) -> str:
        """How ``ApiCall.fault`` names it: ``reset``, ``after_work:hang``, ``429``..."""
        name = self.mode if self.mode != "error" else str(self.status)
        if self.mode == "error" and self.status == 200:
            name = self.error
        return f"after_work:{name}" if self.after_work else name
