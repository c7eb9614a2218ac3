"""Every Slack Web API call Firebreak makes goes through ``SlackGateway``.

One place owns the ``WebClient``: its base URL (GovSlack, proxies, the fake Slack in tests), its
retry policy (429s honoured with ``Retry-After``, a retry on 5xx and dropped connections) and the
translation of Slack's error codes into ``SlackCallError`` with a sentence a responder can act on.
Calls happen after the request was acknowledged, so a rate-limit sleep never delays an ack.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from bot import observability

log = logging.getLogger(__name__)

# What a responder should do about the errors people actually hit.
_ADVICE = {
    "not_in_channel": "Firebreak is not a member of that channel: "
    "invite it with /invite @Firebreak.",
    "channel_not_found": "Firebreak cannot see that channel: it was deleted, or Firebreak was "
    "removed from it. Invite it back with /invite @Firebreak.",
    "is_archived": "That channel is archived: unarchive it or open a new incident.",
    "user_not_found": "Slack does not know that user.",
    "ratelimited": "Slack is rate limiting Firebreak; it will retry shortly.",
    "restricted_action": "Your workspace settings do not allow Firebreak to do that.",
    "missing_scope": "The Slack app is missing a permission: "
    "reinstall it from slack-manifest.yaml.",
    "invalid_auth": "The Slack bot token is invalid: check SLACK_BOT_TOKEN.",
    "not_authed": "No Slack bot token is configured: set SLACK_BOT_TOKEN.",
    "token_revoked": "The Slack bot token was revoked: reinstall the app.",
    "account_inactive": "The Slack bot token belongs to a deactivated app or user.",
    "expired_trigger_id": "That took too long; run the command again.",
}


class SlackCallError(Exception):
    """A Slack call failed. ``error`` is Slack's code; ``str()`` is safe to show to users."""

    def __init__(self, method: str, error: str, detail: str = "") -> None:
        self.method = method
        self.error = error
        advice = _ADVICE.get(error, "")
        message = f"Slack refused {method} ({error})."
        if advice:
            message += f" {advice}"
        elif detail:
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


class CountingRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """Honours ``Retry-After`` like its parent, and counts every HTTP 429 for /metrics,
    including the ones a retry gets past."""

    def prepare_for_next_attempt(  # type: ignore[no-untyped-def]
        self, *, state, request, response=None, error=None
    ) -> None:
        method = request.url.rsplit("/", 1)[-1]
        observability.SLACK_RATE_LIMITED.labels(method=method).inc()
        super().prepare_for_next_attempt(
            state=state, request=request, response=response, error=error
        )


def build_client(token: str | None, base_url: str) -> WebClient:
    return WebClient(
        token=token,
        base_url=base_url,
        timeout=15,
        retry_handlers=[
            CountingRateLimitRetryHandler(max_retry_count=3),
            ServerErrorRetryHandler(max_retry_count=2),
            ConnectionErrorRetryHandler(max_retry_count=2),
        ],
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

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            if len(self._items) > 5000:
                self._items.clear()
            self._items[key] = (time.monotonic() + self.ttl, value)


class SlackGateway:
    """Thin, typed wrappers over the Web API methods Firebreak uses."""

    def __init__(self, client: WebClient) -> None:
        self.client = client
        self._users = _TTLCache(ttl=600)
        self._members = _TTLCache(ttl=30)
        self._groups = _TTLCache(ttl=300)
        self._bot_user_id: str | None = None

    # -- plumbing ----------------------------------------------------------------------------

    def call(self, method: str, **kwargs: Any) -> dict[str, Any]:
        """Call ``method``; raise ``SlackCallError`` on any failure. Counts every call."""
        started = time.perf_counter()
        try:
            # The typed WebClient methods know which Slack methods take JSON and which take form
            # fields (read methods such as conversations.history do not accept JSON).
            function = getattr(self.client, method.replace(".", "_"))
            response = function(**_compact(kwargs))
        except SlackApiError as exc:
            data = exc.response.data if isinstance(exc.response.data, dict) else {}
            error = str(data.get("error") or f"http_{exc.response.status_code}")
            if exc.response.status_code == 429:
                observability.SLACK_RATE_LIMITED.labels(method=method).inc()
            observability.SLACK_CALLS.labels(method=method, outcome="error").inc()
            log.warning("slack call failed", extra={"method": method, "error": error})
            detail = "; ".join(
                str(m) for m in (data.get("response_metadata") or {}).get("messages", [])[:3]
            )
            raise SlackCallError(method, error, detail) from None
        except SlackClientError as exc:
            observability.SLACK_CALLS.labels(method=method, outcome="error").inc()
            log.warning("slack call failed", extra={"method": method, "error": type(exc).__name__})
            raise SlackCallError(
                method, "connection_failed", "Slack could not be reached; try again shortly."
            ) from None
        finally:
            observability.SLACK_LATENCY.labels(method=method).observe(time.perf_counter() - started)
        observability.SLACK_CALLS.labels(method=method, outcome="ok").inc()
        return dict(response.data) if isinstance(response.data, dict) else {}

    # -- identity ----------------------------------------------------------------------------

    def bot_user_id(self) -> str:
        if self._bot_user_id is None:
            self._bot_user_id = str(self.call("auth.test").get("user_id", ""))
        return self._bot_user_id

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

    def invite(self, channel: str, users: Sequence[str]) -> tuple[list[str], list[str]]:
        """Invite users one call per user, so one unknown user does not stop the others.
        Returns who is now in the channel, and a sentence per user who could not be invited."""
        done: list[str] = []
        problems: list[str] = []
        for user in dict.fromkeys(users):
            try:
                self.call("conversations.invite", channel=channel, users=user)
            except SlackCallError as exc:
                if exc.error not in ("already_in_channel", "cant_invite_self"):
                    problems.append(f"<@{user}>: {exc}")
                    continue
            done.append(user)
        return done, problems

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
        """A message by channel and ts, top-level or in a thread."""
        data = self.call(
            "conversations.history", channel=channel, latest=ts, oldest=ts, inclusive=True, limit=1
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
                limit=1,
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
    ) -> str:
        data = self.call(
            "chat.postMessage",
            channel=channel,
            text=text,
            blocks=blocks,
            thread_ts=thread_ts,
            unfurl_links=unfurl,
            unfurl_media=unfurl,
        )
        return str(data["ts"])

    def update_message(
        self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]] | None = None
    ) -> None:
        self.call("chat.update", channel=channel, ts=ts, text=text, blocks=blocks)

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

    def open_view(self, trigger_id: str, view: dict[str, Any]) -> str:
        return str(self.call("views.open", trigger_id=trigger_id, view=view)["view"]["id"])

    def update_view(self, view_id: str, view: dict[str, Any]) -> None:
        self.call("views.update", view_id=view_id, view=view)

    def publish_home(self, user: str, view: dict[str, Any]) -> None:
        self.call("views.publish", user_id=user, view=view)

    # -- files -------------------------------------------------------------------------------

    def upload_file(
        self, channel: str, filename: str, content: str, *, title: str, comment: str | None = None
    ) -> str | None:
        """Upload with Slack's current flow (files.getUploadURLExternal, then
        files.completeUploadExternal), returning the file id."""
        started = time.perf_counter()
        try:
            response = self.client.files_upload_v2(
                channel=channel,
                filename=filename,
                content=content,
                title=title,
                initial_comment=comment,
            )
        except SlackApiError as exc:
            data = exc.response.data if isinstance(exc.response.data, dict) else {}
            observability.SLACK_CALLS.labels(method="files_upload_v2", outcome="error").inc()
            raise SlackCallError(
                "files.completeUploadExternal", str(data.get("error", "upload_failed"))
            ) from None
        except SlackClientError:
            observability.SLACK_CALLS.labels(method="files_upload_v2", outcome="error").inc()
            raise SlackCallError("files.completeUploadExternal", "connection_failed") from None
        finally:
            observability.SLACK_LATENCY.labels(method="files_upload_v2").observe(
                time.perf_counter() - started
            )
        observability.SLACK_CALLS.labels(method="files_upload_v2", outcome="ok").inc()
        files = response.get("files") or []
        return str(files[0]["id"]) if files else None


def _compact(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def best_effort(action: Callable[[], Any], what: str) -> str | None:
    """Run a Slack call whose failure must not stop the flow; return the problem as text."""
    try:
        action()
    except SlackCallError as exc:
        log.warning("slack step failed", extra={"step": what, "error": exc.error})
        return f"{what}: {exc}"
    return None
