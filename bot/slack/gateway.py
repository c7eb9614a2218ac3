"""Every Slack Web API call Firebreak makes goes through ``SlackGateway``.

One place owns the ``WebClient``: its base URL (GovSlack, proxies, the fake Slack in tests) and
the translation of every failure into ``SlackCallError``, with a sentence a responder can act on
and what the failure means for a retry:

* ``transient``: trying again later may work (HTTP 429 with its ``Retry-After``, 5xx, a timeout,
  a dropped connection, a body that is not JSON, Slack's own ``internal_error``);
* ``ambiguous``: Slack may have done the work before failing (5xx, timeouts, resets, garbage):
  a retry must check before repeating (message metadata, the channel by name).

The client never retries by itself: a blind retry after a 5xx is how one status update becomes
three messages. The effect runner (``bot.effects.runner``) retries, and checks first.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from http.client import HTTPException
from typing import Any
from urllib.error import HTTPError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.webhook import WebhookClient

from bot import leases, observability, priority
from bot.slack.metadata import effect_metadata, posted_by_firebreak
from bot.slack.transport import KeepAliveWebClient

log = logging.getLogger(__name__)

# What a responder should do about the errors people actually hit.
_ADVICE = {
    "not_in_channel": "Firebreak is not a member of that channel: "
    "invite it with /invite @Firebreak.",
    "channel_not_found": "Firebreak cannot see that channel: it was deleted, or Firebreak was "
    "removed from it. Invite it back with /invite @Firebreak.",
    "is_archived": "That channel is archived: unarchive it or open a new incident.",
    "posting_to_channel_denied": "Firebreak may not share files in that channel (archived, or "
    "posting there is restricted).",
    "user_not_found": "Slack does not know that user.",
    "ratelimited": "Slack is rate limiting Firebreak.",
    "rate_limited": "Slack is rate limiting Firebreak.",
    "restricted_action": "Your workspace settings do not allow Firebreak to do that.",
    "missing_scope": "The Slack app is missing a permission: "
    "reinstall it from slack-manifest.yaml.",
    "invalid_auth": "The Slack bot token is invalid: check SLACK_BOT_TOKEN.",
    "not_authed": "No Slack bot token is configured: set SLACK_BOT_TOKEN.",
    "token_revoked": "The Slack bot token was revoked: reinstall the app.",
    "account_inactive": "The Slack bot token belongs to a deactivated app or user.",
    "expired_trigger_id": "That took too long; run the command again.",
    "too_many_pins": "The channel has as many pinned items as Slack allows: unpin one, and "
    "the next update pins the summary.",
}


CONNECTION_FAILED = "connection_failed"
"""The error of a call that got no answer: refused, reset, or timed out."""

TRANSIENT_ERRORS = frozenset(
    {
        "ratelimited",
        "rate_limited",  # chat.postMessage's own, at HTTP 200: too many messages for now
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
    }
)
"""Slack error codes (HTTP 200, ``ok: false``) that a later attempt may get past."""

TOKEN_REJECTED = frozenset({"invalid_auth", "not_authed", "token_revoked", "account_inactive"})
"""Slack's answers that mean the token itself is wrong: no retry fixes them."""

PER_PERSON_INVITE_ERRORS = frozenset(
    {
        "user_not_found",
        "user_is_restricted",
        "user_is_ultra_restricted",
        "ura_max_channels",
        "cant_invite",
        "user_disabled",
        "no_user",
        # Enterprise Grid and Slack Connect: this person cannot join this channel.
        "invitee_cant_see_channel",
        "org_user_not_in_team",
        "no_external_invite_permission",
        "user_team_not_in_channel",
        "external_team_not_in_channel",
    }
)
"""``conversations.invite`` errors about the one person invited; any other refusal (the
channel, the token, a scope) would refuse everyone, so it fails the whole invitation."""


class SlackCallError(Exception):
    """A Slack call failed. ``error`` is Slack's code; ``str()`` is safe to show to users."""

    def __init__(
        self,
        method: str,
        error: str,
        detail: str = "",
        *,
        transient: bool | None = None,
        ambiguous: bool = False,
        retry_after: float | None = None,
    ) -> None:
        self.method = method
        self.error = error
        self.transient = error in TRANSIENT_ERRORS if transient is None else transient
        self.ambiguous = ambiguous
        self.retry_after = retry_after
        advice = _ADVICE.get(error, "")
        message = (
            f"No answer from Slack to {method} ({error})."
            if error == CONNECTION_FAILED
            else f"Slack refused {method} ({error})."
        )
        if error == "missing_scope" and detail:
            message += f" {detail}"  # which scope: the one thing the reader needs
        if advice:
            message += f" {advice}"
        elif detail and error != "missing_scope":
            message += f" {detail}"
        super().__init__(message)


@dataclass(frozen=True)
class SlackUser:
    id: str
    name: str
    real_name: str
    display_name: str
    is_bot: bool
    deleted: bool
    is_admin: bool
    tz: str | None

    @property
    def label(self) -> str:
        return self.display_name or self.real_name or self.name or self.id


CALL_TIMEOUT = 10
"""Seconds a Slack call may take; an effect's lease is far longer."""


def build_client(token: str | None, base_url: str) -> WebClient:
    """The Web API client, with one TLS context for every call it (and Bolt's ``respond``, and
    the gateway's uploads and ``response_url`` answers) makes. Without one, Python builds a
    default context for each HTTPS connection, loading every system CA certificate: about 20 ms
    of CPU per Slack call, more than everything else Firebreak does for it (bench/tls.py)."""
    # No retry handlers: every retry is the effect runner's, which checks before repeating.
    return KeepAliveWebClient(
        token=token,
        base_url=base_url,
        timeout=CALL_TIMEOUT,
        retry_handlers=[],
        ssl=ssl.create_default_context(),
    )


def _retry_after(headers: Any) -> float | None:
    """``Retry-After`` in seconds, or None when missing or not a number."""
    if not headers:
        return None
    value = headers.get("Retry-After") or headers.get("retry-after")
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        seconds = float(str(value))
    except (TypeError, ValueError):
        return None
    return seconds if seconds == seconds and seconds >= 0 else None  # NaN is not a number


def _from_api_error(method: str, exc: SlackApiError) -> SlackCallError:
    status = int(getattr(exc.response, "status_code", 0) or 0)
    data = exc.response.data if isinstance(exc.response.data, dict) else None
    if status == 429:
        observability.SLACK_RATE_LIMITED.labels(method=method).inc()
        return SlackCallError(
            method,
            "ratelimited",
            transient=True,
            retry_after=_retry_after(getattr(exc.response, "headers", None)),
        )
    if status >= 500:
        code = str((data or {}).get("error") or f"http_{status}")
        return SlackCallError(
            method,
            code,
            "Slack answered with a server error.",
            transient=True,
            ambiguous=True,
            retry_after=_retry_after(getattr(exc.response, "headers", None)),  # 503 may say
        )
    if data is not None and str(data.get("error", "")).startswith("Received a response in a"):
        data = None  # slack_sdk's way of saying the body was not JSON
    if data is None:  # an HTML page or garbage where JSON was expected
        return SlackCallError(
            method,
            f"http_{status}" if status and status != 200 else "invalid_response",
            "Slack's answer could not be read.",
            transient=status in (0, 200),
            ambiguous=True,
        )
    error = str(data.get("error") or f"http_{status}")
    detail = "; ".join(
        str(m) for m in (data.get("response_metadata") or {}).get("messages", [])[:3]
    )
    if error == "missing_scope" and data.get("needed"):
        detail = f"It needs the `{str(data['needed'])[:100]}` scope."
    ambiguous = error in ("internal_error", "fatal_error", "request_timeout")
    return SlackCallError(method, error, detail, ambiguous=ambiguous)


def _from_connection_error(method: str, exc: BaseException) -> SlackCallError:
    """A timeout, a reset or a refused connection: the request may have reached Slack, unless
    the connection was refused outright."""
    reason = getattr(exc, "reason", exc)
    refused = isinstance(reason, ConnectionRefusedError | socket.gaierror)
    return SlackCallError(
        method,
        CONNECTION_FAILED,
        "Slack could not be reached; Firebreak will try again shortly."
        if refused
        # Sent, then cut off or not answered in time: done or not, only Slack knows.
        else "The connection was cut or timed out after the request was sent: Slack may have "
        "done it, so Firebreak checks before trying again.",
        transient=True,
        ambiguous=not refused,
    )


class _TTLCache:
    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._items: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        with self._lock:
            item = self._items.get(key)
            if item is None or item[0] < time.monotonic():
                return None
            return item[1]

    def forget(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            if len(self._items) > 5000:
                self._items.clear()
            self._items[key] = (time.monotonic() + self.ttl, value)


_NOT_REPEATABLE = frozenset(
    {
        "chat.postMessage",
        "chat.postEphemeral",
        "chat.update",  # an edit made late would put back what a newer edit replaced
        "conversations.create",
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
    }
)
"""Calls an effect attempt makes only while its lease holds: made twice, they do the work twice
(reads, invites and pins are safe to repeat and are not held back)."""


class SlackGateway:
    """Thin, typed wrappers over the Web API methods Firebreak uses."""

    def __init__(self, client: WebClient) -> None:
        self.client = client
        self._users = _TTLCache(ttl=600)
        self._members = _TTLCache(ttl=30)
        self._groups = _TTLCache(ttl=300)
        self._identity: dict[str, Any] | None = None
        self.token_rejected: str | None = None
        """Slack's error when it last refused the token itself (cleared by any call it
        accepts): ``/readyz`` reports it, since no retry of the work will get past it."""

    # -- plumbing ----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connections kept open to Slack (at shutdown)."""
        if isinstance(self.client, KeepAliveWebClient):
            self.client.close()

    def call(self, method: str, **kwargs: Any) -> dict[str, Any]:
        """Call ``method``; raise ``SlackCallError`` on any failure. Counts every call. Inside an
        effect attempt whose lease may have run out, no call is made (``LeaseExpired``)."""
        priority.pause_point()
        if method in _NOT_REPEATABLE:
            leases.check_held(method)
        if priority.holding_transaction():
            # Slack can take seconds; on SQLite every request's durable write would wait too.
            observability.SLACK_CALLS_IN_TRANSACTION.labels(method=method).inc()
            log.error("slack call made inside a database transaction", extra={"method": method})
        started = time.perf_counter()
        failure: SlackCallError | None = None
        response: Any = None
        try:
            # The typed WebClient methods know which Slack methods take JSON and which take form
            # fields (read methods such as conversations.history do not accept JSON).
            function = getattr(self.client, method.replace(".", "_"))
            response = function(**_compact(kwargs))
        except SlackApiError as exc:
            failure = _from_api_error(method, exc)
        except (SlackClientError, OSError, HTTPException, ValueError) as exc:
            # OSError covers URLError, timeouts and resets; ValueError a body that is not JSON.
            failure = _from_connection_error(method, exc)
        finally:
            observability.SLACK_LATENCY.labels(method=method).observe(time.perf_counter() - started)
        if failure is not None:
            observability.SLACK_CALLS.labels(method=method, outcome="error").inc()
            log.warning("slack call failed", extra={"method": method, "error": failure.error})
            if failure.error in TOKEN_REJECTED:
                self.token_rejected = failure.error
            raise failure
        self.token_rejected = None
        observability.SLACK_CALLS.labels(method=method, outcome="ok").inc()
        return dict(response.data) if isinstance(response.data, dict) else {}

    # -- identity ----------------------------------------------------------------------------

    def bot_user_id(self) -> str:
        if self._identity is None:
            self._identity = self.call("auth.test")
        return str(self._identity.get("user_id", ""))

    def known_identity(self) -> dict[str, Any] | None:
        """Slack's ``auth.test`` answer if it was asked already (readiness asks at start),
        without calling Slack: for the request path, which must answer within 3 s."""
        return self._identity

    def user(self, user_id: str) -> SlackUser | None:
        """The user, or ``None`` if Slack does not know the id."""
        cached = self._users.get(user_id)
        if cached is not None:
            return cached if isinstance(cached, SlackUser) else None
        try:
            data = self.call("users.info", user=user_id)["user"]
        except SlackCallError as exc:
            if exc.error in ("user_not_found", "users_not_found"):
                self._users.put(user_id, False)
                return None
            raise
        profile = data.get("profile") or {}
        user = SlackUser(
            id=data["id"],
            name=data.get("name", ""),
            real_name=data.get("real_name") or profile.get("real_name", ""),
            display_name=profile.get("display_name", ""),
            is_bot=bool(data.get("is_bot")),
            deleted=bool(data.get("deleted")),
            is_admin=bool(data.get("is_admin") or data.get("is_owner")),
            tz=data.get("tz"),
        )
        self._users.put(user_id, user)
        return user

    def cached_user(self, user_id: str) -> SlackUser | None:
        """The user if Slack already told Firebreak of them, without calling Slack: for the
        request path (a form's check), which must answer within 3 s. ``None`` is not known."""
        cached = self._users.get(user_id)
        return cached if isinstance(cached, SlackUser) else None

    def user_name(self, user_id: str) -> str | None:
        try:
            user = self.user(user_id)
        except SlackCallError:
            return None
        return user.label if user else None

    def usergroup_members(self, group_id: str) -> set[str]:
        cached = self._groups.get(f"members:{group_id}")
        if cached is not None:
            return set(cached)
        users = set(self.call("usergroups.users.list", usergroup=group_id).get("users", []))
        self._groups.put(f"members:{group_id}", users)
        return users

    def usergroups(self) -> dict[str, str]:
        """``{handle: id}`` for the workspace's user groups."""
        cached = self._groups.get("all")
        if cached is not None:
            return dict(cached)
        groups = self.call("usergroups.list").get("usergroups", [])
        result = {str(g.get("handle")): str(g.get("id")) for g in groups}
        self._groups.put("all", result)
        return result

    # -- channels ----------------------------------------------------------------------------

    def create_channel(self, name: str, *, private: bool) -> dict[str, Any]:
        return dict(self.call("conversations.create", name=name, is_private=private)["channel"])

    def invite(
        self, channel: str, users: Sequence[str]
    ) -> tuple[list[str], list[tuple[str, SlackCallError]]]:
        """Invite users one call per user, so one unknown user does not stop the others.
        Returns who is now in the channel, and each user who could not be invited with why."""
        done: list[str] = []
        problems: list[tuple[str, SlackCallError]] = []
        for user in dict.fromkeys(users):
            try:
                self.call("conversations.invite", channel=channel, users=user)
            except SlackCallError as exc:
                if exc.error not in ("already_in_channel", "cant_invite_self"):
                    if not exc.transient and exc.error not in PER_PERSON_INVITE_ERRORS:
                        raise  # the channel, the token or a scope: nobody can be invited
                    problems.append((user, exc))
                    continue
            done.append(user)
        self._members.forget(channel)
        return done, problems

    def unpin(self, channel: str, ts: str) -> None:
        self.call("pins.remove", channel=channel, timestamp=ts)

    def dm_channel(self, user: str) -> str:
        """The id of the direct-message channel between Firebreak and ``user``."""
        cached = self._users.get(f"dm:{user}")
        if cached:
            return str(cached)
        channel = str(self.call("conversations.open", users=user)["channel"]["id"])
        self._users.put(f"dm:{user}", channel)
        return channel

    def members(self, channel: str) -> set[str]:
        cached = self._members.get(channel)
        if cached is not None:
            return set(cached)
        members: set[str] = set()
        cursor = None
        while True:
            data = self.call("conversations.members", channel=channel, limit=1000, cursor=cursor)
            members.update(data.get("members", []))
            cursor = (data.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        self._members.put(channel, members)
        return members

    def channel_name(self, channel: str) -> str | None:
        cached = self._users.get(f"channel:{channel}")
        if cached is not None:
            return str(cached) or None
        try:
            name = str(self.call("conversations.info", channel=channel)["channel"].get("name", ""))
        except SlackCallError:
            return None
        self._users.put(f"channel:{channel}", name)
        return name or None

    def set_topic(self, channel: str, topic: str) -> None:
        self.call("conversations.setTopic", channel=channel, topic=topic)

    def set_purpose(self, channel: str, purpose: str) -> None:
        self.call("conversations.setPurpose", channel=channel, purpose=purpose)

    def find_message(self, channel: str, ts: str) -> dict[str, Any] | None:
        """A message by channel and ts, top-level or in a thread. ``conversations.replies``
        puts the thread's first message ahead of the replies whatever ``oldest`` and
        ``latest`` say, so a reply is the second of two, found by its ts."""
        data = self.call(
            "conversations.history",
            channel=channel,
            latest=ts,
            oldest=ts,
            inclusive=True,
            limit=1,
            include_all_metadata=True,  # Firebreak's own messages: posted_by_firebreak
        )
        for message in data.get("messages", []):
            if message.get("ts") == ts:
                return dict(message)
        try:
            data = self.call(
                "conversations.replies",
                channel=channel,
                ts=ts,
                latest=ts,
                oldest=ts,
                inclusive=True,
                limit=2,
                include_all_metadata=True,
            )
        except SlackCallError as exc:
            if exc.error in ("thread_not_found", "message_not_found"):
                return None
            raise
        for message in data.get("messages", []):
            if message.get("ts") == ts:
                return dict(message)
        return None

    # -- messages ----------------------------------------------------------------------------

    def post_message(
        self,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        *,
        thread_ts: str | None = None,
        unfurl: bool = False,
        effect: str | None = None,
    ) -> str:
        """Post; ``effect`` names the effect in the message's metadata, so a repeat after an
        ambiguous failure can find the message instead of posting it twice."""
        data = self.call(
            "chat.postMessage",
            channel=channel,
            text=text,
            blocks=blocks,
            thread_ts=thread_ts,
            unfurl_links=unfurl,
            unfurl_media=unfurl,
            metadata=effect_metadata(effect),
        )
        return str(data["ts"])

    def find_effect_message(self, channel: str, effect: str, *, since: float) -> str | None:
        """The ts of the message posted for ``effect`` (by its metadata) since ``since``
        (epoch seconds), or None. Reads at most a few pages of recent history."""
        cursor = None
        for _ in range(5):
            data = self.call(
                "conversations.history",
                channel=channel,
                oldest=f"{max(since, 0):.6f}",
                include_all_metadata=True,
                limit=200,
                cursor=cursor,
            )
            for message in data.get("messages", []):
                if posted_by_firebreak(message, effect):
                    return str(message.get("ts"))
            cursor = (data.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None
        return None

    def update_message(
        self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]] | None = None
    ) -> None:
        self.call("chat.update", channel=channel, ts=ts, text=text, blocks=blocks)

    def find_channel(self, name: str) -> dict[str, Any] | None:
        """The channel named ``name`` (public, or private with the bot in it), or None."""
        cursor = None
        while True:
            data = self.call(
                "conversations.list",
                types="public_channel,private_channel",
                exclude_archived=False,
                limit=1000,
                cursor=cursor,
            )
            for channel in data.get("channels", []):
                if channel.get("name") == name:
                    return dict(channel)
            cursor = (data.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None

    def post_ephemeral(
        self, channel: str, user: str, text: str, blocks: list[dict[str, Any]] | None = None
    ) -> None:
        self.call("chat.postEphemeral", channel=channel, user=user, text=text, blocks=blocks)

    def permalink(self, channel: str, ts: str) -> str | None:
        try:
            return str(self.call("chat.getPermalink", channel=channel, message_ts=ts)["permalink"])
        except SlackCallError:
            return None

    def pin(self, channel: str, ts: str) -> None:
        try:
            self.call("pins.add", channel=channel, timestamp=ts)
        except SlackCallError as exc:
            if exc.error != "already_pinned":
                raise

    # -- views -------------------------------------------------------------------------------

    def open_view(self, trigger_id: str, view: dict[str, Any]) -> str | None:
        """Open a form; its view id. ``None`` when the trigger was used already: Slack
        delivered the same click or command twice and the first delivery opened the form, so
        the second has nothing to do (and nothing to complain of)."""
        try:
            return str(self.call("views.open", trigger_id=trigger_id, view=view)["view"]["id"])
        except SlackCallError as exc:
            if exc.error != "exchanged_trigger_id":
                raise
            log.info("form already opened with this trigger (a repeated delivery)")
            return None

    def update_view(self, view_id: str, view: dict[str, Any]) -> None:
        self.call("views.update", view_id=view_id, view=view)

    def publish_home(self, user: str, view: dict[str, Any]) -> None:
        self.call("views.publish", user_id=user, view=view)

    # -- response_url ------------------------------------------------------------------------

    def respond(self, url: str, text: str, blocks: list[dict[str, Any]] | None) -> int:
        """Answer through a request's ``response_url`` (ephemeral, never replacing the message
        clicked), over the connections kept open to Slack. Returns the HTTP status; raises
        ``SlackCallError`` (transient) when the connection failed: ambiguous, since Slack may
        have shown the answer, unless it was refused outright. No hidden retry: the runner's
        (``SlackEffects.reply``) is the one."""
        priority.pause_point()
        webhook = (
            self.client.webhook(url)
            if isinstance(self.client, KeepAliveWebClient)
            else WebhookClient(url, timeout=CALL_TIMEOUT, ssl=self.client.ssl, retry_handlers=[])
        )
        try:
            answer = webhook.send(
                text=text, blocks=blocks, response_type="ephemeral", replace_original=False
            )
        except (SlackClientError, OSError, ValueError) as exc:
            raise _from_connection_error("response_url", exc) from None
        return int(answer.status_code)

    # -- files -------------------------------------------------------------------------------

    def start_upload(self, filename: str, content: bytes) -> str:
        """Slack's upload flow, first half: get an upload URL and send the bytes there.
        Returns the file id; the file is not visible anywhere until ``finish_upload``."""
        data = self.call("files.getUploadURLExternal", filename=filename, length=len(content))
        url, file_id = str(data["upload_url"]), str(data["file_id"])
        started = time.perf_counter()
        try:
            request = urllib.request.Request(url, data=content, method="POST")
            with urllib.request.urlopen(
                request, timeout=CALL_TIMEOUT, context=self.client.ssl
            ) as answer:
                answer.read()
        except HTTPError as exc:
            raise SlackCallError(
                "files.upload", f"http_{exc.code}", transient=exc.code >= 500 or exc.code == 429
            ) from None
        except (OSError, HTTPException) as exc:
            raise _from_connection_error("files.upload", exc) from None
        finally:
            observability.SLACK_LATENCY.labels(method="files.upload").observe(
                time.perf_counter() - started
            )
        return file_id

    def finish_upload(
        self, file_id: str, channel: str, *, title: str, comment: str | None = None
    ) -> None:
        """Second half: share the uploaded file in ``channel``."""
        self.call(
            "files.completeUploadExternal",
            files=[{"id": file_id, "title": title}],
            channel_id=channel,
            initial_comment=comment,
        )

    def file_shared_in(self, file_id: str, channel: str) -> bool:
        """Whether the file is shared in ``channel`` (an upload whose completion was ambiguous)."""
        try:
            data = self.call("files.info", file=file_id)
        except SlackCallError as exc:
            if exc.error == "file_not_found":
                return False
            raise
        shares = (data.get("file") or {}).get("shares") or {}
        return any(channel in (shares.get(kind) or {}) for kind in ("public", "private"))


def _compact(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}
