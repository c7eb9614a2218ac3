"""Sends the bot the requests Slack sends: signed, Slack-shaped, built from what the fake shows.

A test (or ``firebreak demo``) plays the people in the workspace: they type ``/incident``,
click a button on a message the bot posted, fill in and submit a modal, react with an emoji.
The simulator turns each action into the exact HTTP request Slack would make to the bot's
``/slack/events`` URL (form-encoded commands, ``payload=`` interactions, JSON Events API
envelopes), signed with the app's signing secret. It reads the fake's state for ids and for
what is on screen, so it refuses what a person could not do: clicking a button that is not in
the message, submitting a value a select does not offer, leaving a required input empty.

Slack also acts on the bot's answers, and so does the simulator: a message in a command's
acknowledgement is shown to the user, ``response_action`` on a view submission updates, pushes
or closes the modal, and an answer slower than Slack's three seconds is dropped (recorded in
``BotReply.problems``).
"""

from __future__ import annotations

import base64
import http.client
import json
import random
import re
import string
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

from bot.sandbox.fake import FakeSlack
from bot.sandbox.people import SimulatorError, person_json, place_json, slash_command_fields
from bot.sandbox.records import JSON, FakeSlackError, View
from bot.sandbox.signing import (
    FORM_CONTENT_TYPE,
    JSON_CONTENT_TYPE,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    current_timestamp,
    sign,
)

Signing = Literal["valid", "forged", "unsigned", "stale"]
"""``forged``: signed with another secret; ``unsigned``: no signature headers; ``stale``: a valid
signature on a timestamp six minutes old (a replay)."""

ACK_DEADLINE = 3.0
"""Seconds Slack waits for the HTTP response before it gives up on the request."""
STALE_AGE = timedelta(minutes=6)
MAX_EVENT_RETRIES = 3
USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"

_STATELESS = frozenset({"button", "overflow", "workflow_button"})
_ONE_OPTION = frozenset({"static_select", "radio_buttons", "overflow", "external_select"})
_MANY_OPTIONS = frozenset({"multi_static_select", "checkboxes", "multi_external_select"})
_TEXT_INPUTS = frozenset({"plain_text_input", "email_text_input", "url_text_input"})
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class SentRequest:
    """What the simulator sent: the raw body and headers, and the payload before encoding
    (form fields of a command, the interaction payload, or the Events API envelope)."""

    url: str
    headers: dict[str, str]
    body: bytes
    payload: JSON
    trigger_id: str | None = None
    response_url: str | None = None


@dataclass(frozen=True)
class BotReply:
    """The bot's HTTP response to one request, and how long it took."""

    status: int
    headers: dict[str, str]
    """Header names in lower case."""
    body: bytes
    elapsed: float
    """Seconds from sending the request to reading the whole response."""
    request: SentRequest
    problems: tuple[str, ...] = ()
    """What Slack would have rejected or dropped in the answer (empty when all was well)."""
    view_id: str | None = None
    """For a view submission answered with ``response_action: push``: the new view's id."""

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.body) if self.body.strip() else None

    @property
    def validation_errors(self) -> dict[str, str]:
        """``response_action: errors`` of a view submission: block id -> message."""
        try:
            data = self.json()
        except ValueError:
            return {}
        if isinstance(data, dict) and data.get("response_action") == "errors":
            return {str(k): str(v) for k, v in dict(data.get("errors") or {}).items()}
        return {}


@dataclass
class _Target:
    host: str
    port: int
    path: str


@dataclass
class _Found:
    block_id: str
    element: JSON


class SlackSimulator:
    """Plays Slack towards a running bot at ``url`` (e.g. ``http://127.0.0.1:3000/slack/events``).

    Every method returns a ``BotReply`` (status, headers, body, elapsed time, what was sent).
    ``signing`` selects a forged, unsigned or stale variant for security tests."""

    def __init__(
        self,
        fake: FakeSlack,
        url: str,
        signing_secret: str,
        *,
        verification_token: str = "legacy-verification-token",
        timeout: float = 10.0,
        ack_deadline: float | None = ACK_DEADLINE,
        seed: int | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"the simulator sends plain HTTP to a local bot; got {url!r}")
        self.fake = fake
        self.url = url
        self.signing_secret = signing_secret
        self.verification_token = verification_token
        self.timeout = timeout
        self.ack_deadline = ack_deadline
        self._target = _Target(parts.hostname, parts.port or 80, parts.path or "/")
        self._lock = threading.RLock()
        self._envelopes: dict[str, JSON] = {}
        self._random = random.Random(seed)
        self.before_send: Callable[[], object] | None = None
        """Called in the sending thread once a request is built and signed, just before it
        goes out: a load generator lines a burst up here, so building requests (a click
        carries the whole message) is not part of what the burst measures."""

    def _token(self, length: int, alphabet: str) -> str:
        with self._lock:
            return "".join(self._random.choices(alphabet, k=length))

    # ----------------------------------------------------------------------------------------
    # Sending

    def send_raw(
        self,
        body: bytes | str,
        *,
        content_type: str = FORM_CONTENT_TYPE,
        signing: Signing = "valid",
        headers: Mapping[str, str] | None = None,
    ) -> BotReply:
        """Send any body (a malformed payload, an unknown type) signed as Slack would."""
        raw = body.encode("utf-8") if isinstance(body, str) else body
        return self._send(raw, content_type, payload={}, signing=signing, extra=headers)

    def _send(
        self,
        body: bytes,
        content_type: str,
        *,
        payload: JSON,
        signing: Signing,
        extra: Mapping[str, str] | None = None,
        trigger_id: str | None = None,
        response_url: str | None = None,
    ) -> BotReply:
        headers = {
            "Content-Type": content_type,
            "User-Agent": USER_AGENT,
            "Accept": "application/json,*/*",
            "Content-Length": str(len(body)),
        }
        now = current_timestamp()
        if signing != "unsigned":
            stamp = now - int(STALE_AGE.total_seconds()) if signing == "stale" else now
            secret = self.signing_secret if signing != "forged" else "x" + self.signing_secret
            headers[TIMESTAMP_HEADER] = str(stamp)
            headers[SIGNATURE_HEADER] = sign(secret, stamp, body)
        headers.update(extra or {})
        if self.before_send is not None:
            self.before_send()
        connection = http.client.HTTPConnection(
            self._target.host, self._target.port, timeout=self.timeout
        )
        try:
            started = time.perf_counter()
            connection.request("POST", self._target.path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            elapsed = time.perf_counter() - started
            reply_headers = {name.lower(): value for name, value in response.getheaders()}
            status = response.status
        finally:
            connection.close()
        sent = SentRequest(self.url, headers, body, payload, trigger_id, response_url)
        return BotReply(status, reply_headers, data, elapsed, sent)

    def deliver_again(self, reply: BotReply) -> BotReply:
        """The same interaction (click, form, shortcut) delivered a second time, as it was, its
        trigger and response_url included: a client that sent it twice, or a proxy's retry.
        Slack itself retries only Events API deliveries (``retry``)."""
        sent = reply.request
        if not sent.body.startswith(b"payload="):
            raise SimulatorError("only interactions can be delivered again this way")
        return self._send_payload(
            sent.payload,
            signing="valid",
            trigger_id=sent.trigger_id,
            response_url=sent.response_url,
        )

    def _send_payload(
        self,
        payload: JSON,
        *,
        signing: Signing,
        trigger_id: str | None = None,
        response_url: str | None = None,
    ) -> BotReply:
        body = urlencode({"payload": json.dumps(payload, separators=(",", ":"))}).encode()
        return self._send(
            body,
            FORM_CONTENT_TYPE,
            payload=payload,
            signing=signing,
            trigger_id=trigger_id,
            response_url=response_url,
        )

    def _late(self, reply: BotReply) -> str | None:
        if self.ack_deadline is not None and reply.elapsed > self.ack_deadline:
            return (
                f"the bot answered after {reply.elapsed:.2f}s; Slack gives up after "
                f"{self.ack_deadline:g}s and shows the person an error"
            )
        return None

    # ----------------------------------------------------------------------------------------
    # Who and where

    def _person(self, user: str) -> JSON:
        return person_json(self.fake, user)

    def _place(self, channel: str, person: JSON, *, typing: bool) -> JSON:
        return place_json(self.fake, channel, person, typing=typing)

    def _user_ref(self, person: JSON) -> JSON:
        return {
            "id": person["id"],
            "username": person["name"],
            "name": person["name"],
            "team_id": self.fake.team_id,
        }

    def _team_ref(self) -> JSON:
        return {"id": self.fake.team_id, "domain": self.fake.team_domain}

    def _action_ts(self) -> str:
        moment = self.fake.now()
        return f"{int(moment.timestamp())}.{moment.microsecond:06d}"

    # ----------------------------------------------------------------------------------------
    # Slash commands

    def slash_command(
        self,
        text: str,
        *,
        user: str,
        channel: str,
        command: str = "/incident",
        signing: Signing = "valid",
    ) -> BotReply:
        """``/incident text`` typed by ``user`` in ``channel``. A message in the bot's
        acknowledgement is shown as Slack shows it (ephemeral unless ``in_channel``)."""
        fields = slash_command_fields(
            self.fake,
            text,
            user=user,
            channel=channel,
            command=command,
            verification_token=self.verification_token,
        )
        trigger_id, response_url = fields["trigger_id"], fields["response_url"]
        reply = self._send(
            urlencode(fields).encode(),
            FORM_CONTENT_TYPE,
            payload=dict(fields),
            signing=signing,
            trigger_id=trigger_id,
            response_url=response_url,
        )
        return self._show_ack(reply, fields["channel_id"], fields["user_id"])

    def _show_ack(self, reply: BotReply, channel: str, user: str) -> BotReply:
        late = self._late(reply)
        if late:
            return _with_problems(reply, late)
        if reply.status != 200:
            return _with_problems(
                reply, f"HTTP {reply.status}: Slack shows the person 'dispatch_failed'"
            )
        if not reply.body.strip():
            return reply
        try:
            message = json.loads(reply.body)
        except ValueError:
            message = {"text": reply.text}
        if not isinstance(message, dict):
            return _with_problems(reply, "the acknowledgement is JSON but not an object")
        if message.get("text") is None and not message.get("blocks"):
            return reply
        error = self.fake.deliver_response(message, channel=channel, user=user, source="ack")
        return (
            _with_problems(reply, f"Slack rejected the acknowledgement: {error}")
            if error
            else reply
        )

    # ----------------------------------------------------------------------------------------
    # Clicks (block_actions)

    def click(
        self,
        channel: str,
        message_ts: str,
        action_id: str,
        *,
        user: str,
        value: Any = None,
        signing: Signing = "valid",
        as_shown: JSON | None = None,
    ) -> BotReply:
        """``user`` clicks (or chooses ``value`` in) the element ``action_id`` of a message.

        ``value`` by element: option value(s) for selects, checkboxes, radio buttons and
        overflow menus; user id(s) for user pickers; channel id(s) for conversation pickers;
        ``YYYY-MM-DD``, ``HH:MM`` or a Unix time for date, time and datetime pickers; nothing
        for a button (its own value is sent). ``as_shown``: the message as this person's
        client still shows it (``fake.message_json`` taken earlier): a click on an older copy,
        edited since by someone else's click."""
        person = self._person(user)
        place = self._place(channel, person, typing=False)
        try:
            message = (
                as_shown
                if as_shown is not None
                else self.fake.message_json(place["id"], message_ts)
            )
        except FakeSlackError:
            raise SimulatorError(
                f"there is no message {message_ts} in #{place['name']} to click on"
            ) from None
        where = f"message {message_ts} in #{place['name']}"
        found = _find_element(message.get("blocks") or [], action_id, where, inputs=False)
        action, state = _act(found, value, self.fake, self._action_ts())
        trigger_id = self.fake.issue_trigger(person["id"])
        response_url = self.fake.issue_response_url(
            place["id"], person["id"], message_ts=message_ts
        )
        container: JSON = {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": place["id"],
            "is_ephemeral": False,
        }
        if message.get("thread_ts") and message.get("thread_ts") != message_ts:
            container["thread_ts"] = message["thread_ts"]
        payload: JSON = {
            "type": "block_actions",
            "user": self._user_ref(person),
            "api_app_id": self.fake.app_id,
            "token": self.verification_token,
            "container": container,
            "trigger_id": trigger_id,
            "team": self._team_ref(),
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": place["id"], "name": place["name"]},
            "message": message,
            "state": {"values": _state_values(found, action, state)},
            "response_url": response_url,
            "actions": [action],
        }
        reply = self._send_payload(
            payload, signing=signing, trigger_id=trigger_id, response_url=response_url
        )
        return self._checked_interaction(reply)

    def click_ephemeral(
        self,
        message_ts: str,
        action_id: str,
        *,
        user: str,
        value: Any = None,
        signing: Signing = "valid",
    ) -> BotReply:
        """``user`` clicks an element of an ephemeral message only they can see."""
        person = self._person(user)
        try:
            message = self.fake.ephemeral(message_ts)
        except FakeSlackError:
            raise SimulatorError(f"there is no ephemeral message {message_ts}") from None
        if message.user != person["id"]:
            raise SimulatorError(
                f"ephemeral message {message_ts} is shown to someone else, not {person['name']}"
            )
        place = self.fake.channel_json(message.channel)
        where = f"ephemeral message {message_ts}"
        found = _find_element(message.blocks, action_id, where, inputs=False)
        action, state = _act(found, value, self.fake, self._action_ts())
        trigger_id = self.fake.issue_trigger(person["id"])
        response_url = self.fake.issue_response_url(
            message.channel, person["id"], ephemeral_ts=message_ts
        )
        payload: JSON = {
            "type": "block_actions",
            "user": self._user_ref(person),
            "api_app_id": self.fake.app_id,
            "token": self.verification_token,
            "container": {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": message.channel,
                "is_ephemeral": True,
            },
            "trigger_id": trigger_id,
            "team": self._team_ref(),
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": message.channel, "name": place.get("name", "directmessage")},
            "state": {"values": _state_values(found, action, state)},
            "response_url": response_url,
            "actions": [action],
        }
        reply = self._send_payload(
            payload, signing=signing, trigger_id=trigger_id, response_url=response_url
        )
        return self._checked_interaction(reply)

    def click_view(
        self,
        view_id: str,
        action_id: str,
        *,
        user: str,
        value: Any = None,
        signing: Signing = "valid",
    ) -> BotReply:
        """``user`` clicks an element in an open modal or in their Home tab."""
        person = self._person(user)
        view = self._open_view(view_id, person)
        where = f"view {view_id}"
        found = _find_element(view.payload.get("blocks") or [], action_id, where, inputs=True)
        action, state = _act(found, value, self.fake, self._action_ts())
        if state is not None:
            self.fake.set_view_state(view_id, found.block_id, action["action_id"], state)
        trigger_id = self.fake.issue_trigger(person["id"])
        payload: JSON = {
            "type": "block_actions",
            "user": self._user_ref(person),
            "api_app_id": self.fake.app_id,
            "token": self.verification_token,
            "container": {"type": "view", "view_id": view_id},
            "trigger_id": trigger_id,
            "team": self._team_ref(),
            "enterprise": None,
            "is_enterprise_install": False,
            "view": self.fake.view_json(view_id),
            "actions": [action],
        }
        reply = self._send_payload(payload, signing=signing, trigger_id=trigger_id)
        return self._checked_interaction(reply)

    def click_home(
        self, action_id: str, *, user: str, value: Any = None, signing: Signing = "valid"
    ) -> BotReply:
        """``user`` clicks an element in the bot's Home tab (published with views.publish)."""
        person = self._person(user)
        home = self.fake.home_view(person["id"])
        if home is None:
            raise SimulatorError(f"the bot has not published a Home tab for {person['name']}")
        return self.click_view(home.id, action_id, user=user, value=value, signing=signing)

    def _open_view(self, view_id: str, person: JSON) -> View:
        try:
            view = self.fake.view(view_id)
        except FakeSlackError:
            raise SimulatorError(f"there is no view {view_id}") from None
        if view.user != person["id"]:
            raise SimulatorError(f"view {view_id} is shown to someone else, not {person['name']}")
        if not view.is_open:
            raise SimulatorError(f"view {view_id} is closed")
        return view

    def _checked_interaction(self, reply: BotReply) -> BotReply:
        late = self._late(reply)
        if late:
            return _with_problems(reply, late)
        if reply.status != 200:
            return _with_problems(reply, f"HTTP {reply.status}: Slack shows the person an error")
        return reply

    # ----------------------------------------------------------------------------------------
    # Modals

    def submit_view(
        self,
        view_id: str,
        values: Mapping[str, Any] | None = None,
        *,
        user: str,
        signing: Signing = "valid",
    ) -> BotReply:
        """``user`` fills in the modal and presses its submit button.

        ``values`` maps an input's ``action_id`` (or its ``block_id``) to what the person
        enters, in the forms ``click`` takes (text for text inputs). Inputs left out keep
        their initial value. The bot's ``response_action`` is applied to the fake."""
        person = self._person(user)
        view = self._open_view(view_id, person)
        if view.type != "modal" or not view.payload.get("submit"):
            raise SimulatorError(f"view {view_id} has no submit button")
        values = dict(values or {})
        state = _submission_state(view, values, self.fake)
        for block_id, actions in state.items():
            for action_id, entry in actions.items():
                self.fake.set_view_state(view_id, block_id, action_id, entry)
        trigger_id = self.fake.issue_trigger(person["id"])
        payload: JSON = {
            "type": "view_submission",
            "team": self._team_ref(),
            "user": self._user_ref(person),
            "api_app_id": self.fake.app_id,
            "token": self.verification_token,
            "trigger_id": trigger_id,
            "view": self.fake.view_json(view_id),
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }
        reply = self._send_payload(payload, signing=signing, trigger_id=trigger_id)
        return self._apply_submission(reply, view)

    def _apply_submission(self, reply: BotReply, view: View) -> BotReply:
        late = self._late(reply)
        if late:
            return _with_problems(reply, late)
        if reply.status != 200:
            return _with_problems(reply, f"HTTP {reply.status}: the modal shows an error")
        if not reply.body.strip():
            self.fake.close_view(view.id)
            return reply
        try:
            answer = json.loads(reply.body)
        except ValueError:
            return _with_problems(reply, "the answer to a view submission must be empty or JSON")
        if not isinstance(answer, dict):
            return _with_problems(reply, "the answer to a view submission must be a JSON object")
        action = answer.get("response_action")
        if action is None:
            self.fake.close_view(view.id)
            return reply
        if action == "errors":
            inputs = {
                b.get("block_id")
                for b in view.payload.get("blocks") or []
                if b.get("type") == "input"
            }
            errors = answer.get("errors")
            if not isinstance(errors, dict) or not errors:
                return _with_problems(reply, "response_action errors needs an errors object")
            unknown = sorted(str(k) for k in errors if k not in inputs)
            if unknown:
                return _with_problems(
                    reply, f"errors name blocks that are not inputs of the view: {unknown}"
                )
            return reply
        if action == "update":
            problems = self.fake.replace_view(view.id, dict(answer.get("view") or {}))
            return _with_problems(reply, *problems) if problems else reply
        if action == "push":
            new_id, problems = self.fake.push_view(view.id, dict(answer.get("view") or {}))
            if problems:
                return _with_problems(reply, *problems)
            return BotReply(
                reply.status, reply.headers, reply.body, reply.elapsed, reply.request, (), new_id
            )
        if action == "clear":
            self.fake.clear_views(view.user)
            return reply
        return _with_problems(reply, f"unknown response_action {action!r}")

    def close_view(self, view_id: str, *, user: str, signing: Signing = "valid") -> BotReply | None:
        """``user`` closes the modal. Slack tells the bot (``view_closed``) only when the view
        asked for it with ``notify_on_close``; otherwise nothing is sent and None returned."""
        person = self._person(user)
        view = self._open_view(view_id, person)
        payload: JSON = {
            "type": "view_closed",
            "team": self._team_ref(),
            "user": self._user_ref(person),
            "api_app_id": self.fake.app_id,
            "token": self.verification_token,
            "view": self.fake.view_json(view_id),
            "is_cleared": False,
            "is_enterprise_install": False,
            "enterprise": None,
        }
        self.fake.close_view(view_id)
        if not view.payload.get("notify_on_close"):
            return None
        return self._checked_interaction(self._send_payload(payload, signing=signing))

    # ----------------------------------------------------------------------------------------
    # Shortcuts

    def message_shortcut(
        self,
        callback_id: str,
        channel: str,
        message_ts: str,
        *,
        user: str,
        signing: Signing = "valid",
    ) -> BotReply:
        """``user`` picks the bot's shortcut ``callback_id`` from a message's "More actions"."""
        person = self._person(user)
        place = self._place(channel, person, typing=False)
        try:
            message = self.fake.message_json(place["id"], message_ts)
        except FakeSlackError:
            raise SimulatorError(f"there is no message {message_ts} in #{place['name']}") from None
        trigger_id = self.fake.issue_trigger(person["id"])
        response_url = self.fake.issue_response_url(place["id"], person["id"])
        payload: JSON = {
            "type": "message_action",
            "token": self.verification_token,
            "action_ts": self._action_ts(),
            "team": self._team_ref(),
            "user": self._user_ref(person),
            "channel": {"id": place["id"], "name": place["name"]},
            "is_enterprise_install": False,
            "enterprise": None,
            "callback_id": callback_id,
            "trigger_id": trigger_id,
            "response_url": response_url,
            "message_ts": message_ts,
            "message": message,
        }
        reply = self._send_payload(
            payload, signing=signing, trigger_id=trigger_id, response_url=response_url
        )
        return self._checked_interaction(reply)

    def global_shortcut(
        self, callback_id: str, *, user: str, signing: Signing = "valid"
    ) -> BotReply:
        """``user`` runs the bot's global shortcut ``callback_id`` (from the ⚡ menu)."""
        person = self._person(user)
        trigger_id = self.fake.issue_trigger(person["id"])
        payload: JSON = {
            "type": "shortcut",
            "token": self.verification_token,
            "action_ts": self._action_ts(),
            "team": self._team_ref(),
            "user": {
                "id": person["id"],
                "username": person["name"],
                "team_id": self.fake.team_id,
            },
            "is_enterprise_install": False,
            "enterprise": None,
            "callback_id": callback_id,
            "trigger_id": trigger_id,
        }
        reply = self._send_payload(payload, signing=signing, trigger_id=trigger_id)
        return self._checked_interaction(reply)

    # ----------------------------------------------------------------------------------------
    # Events API

    def url_verification(
        self, challenge: str | None = None, *, signing: Signing = "valid"
    ) -> BotReply:
        """The handshake Slack sends when the Request URL is saved; the bot echoes the
        challenge."""
        payload = {
            "token": self.verification_token,
            "challenge": challenge or self._token(48, string.ascii_letters + string.digits),
            "type": "url_verification",
        }
        body = json.dumps(payload).encode()
        return self._send(body, JSON_CONTENT_TYPE, payload=payload, signing=signing)

    def event(
        self,
        event: JSON,
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        retry_reason: str | None = None,
        signing: Signing = "valid",
    ) -> BotReply:
        """Deliver ``event`` in an ``event_callback`` envelope. Sending again with the same
        ``event_id`` resends the same envelope, as Slack's retries do; ``retry_num`` and
        ``retry_reason`` add the ``X-Slack-Retry-*`` headers."""
        with self._lock:
            envelope = self._envelopes.get(event_id or "")
            if envelope is not None and envelope["event"] != event:
                raise SimulatorError(f"event {event_id} was sent before with another event")
            if envelope is None:
                envelope = self._envelope(event, event_id)
                self._envelopes[envelope["event_id"]] = envelope
        headers: dict[str, str] = {}
        if retry_num is not None:
            if not 1 <= retry_num <= MAX_EVENT_RETRIES:
                raise SimulatorError(f"Slack retries an event 1 to {MAX_EVENT_RETRIES} times")
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = retry_reason or "http_timeout"
        body = json.dumps(envelope).encode()
        return self._send(body, JSON_CONTENT_TYPE, payload=envelope, signing=signing, extra=headers)

    def retry(self, reply: BotReply, *, reason: str = "http_timeout") -> BotReply:
        """Slack's next retry of the event behind ``reply`` (same body, next retry number)."""
        envelope = reply.request.payload
        if envelope.get("type") != "event_callback":
            raise SimulatorError("Slack only retries Events API deliveries")
        previous = int(reply.request.headers.get("X-Slack-Retry-Num", "0"))
        return self.event(
            envelope["event"],
            event_id=str(envelope["event_id"]),
            retry_num=previous + 1,
            retry_reason=reason,
        )

    def _envelope(self, event: JSON, event_id: str | None) -> JSON:
        team = self.fake.team_id
        context = json.dumps({"id": event_id, "team": team}, separators=(",", ":"))
        return {
            "token": self.verification_token,
            "team_id": team,
            "context_team_id": team,
            "context_enterprise_id": None,
            "api_app_id": self.fake.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or "Ev" + self._token(10, string.ascii_uppercase + string.digits),
            "event_time": int(self.fake.now().timestamp()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": team,
                    "user_id": self.fake.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": "4-" + base64.urlsafe_b64encode(context.encode()).decode(),
        }

    # Event builders: shaped as Slack sends them, from the fake's state.

    def message_event(self, channel: str, ts: str) -> JSON:
        """The ``message`` event for a stored message (e.g. from ``fake.user_says``)."""
        try:
            place = self.fake.channel_json(channel)
            message = self.fake.message_json(place["id"], ts)
        except FakeSlackError as exc:
            raise SimulatorError(str(exc)) from None
        event = {
            k: v
            for k, v in message.items()
            if k
            not in (
                "reactions",
                "reply_count",
                "reply_users",
                "reply_users_count",
                "latest_reply",
                "pinned_to",
                "edited",
            )
        }
        if event.get("thread_ts") == ts:
            del event["thread_ts"]
        channel_type = "im" if place.get("is_im") else "group" if place["is_private"] else "channel"
        event.update({"channel": place["id"], "event_ts": ts, "channel_type": channel_type})
        return event

    def reaction_added_event(self, channel: str, ts: str, *, user: str, reaction: str) -> JSON:
        """``reaction_added`` for a reaction the fake holds: call ``fake.user_reacts`` first,
        or use ``react()`` which does both."""
        return self._reaction_event(channel, ts, user, reaction, added=True)

    def reaction_removed_event(self, channel: str, ts: str, *, user: str, reaction: str) -> JSON:
        """``reaction_removed`` for a reaction the person took back (``fake.user_unreacts``)."""
        return self._reaction_event(channel, ts, user, reaction, added=False)

    def _reaction_event(
        self, channel: str, ts: str, user: str, reaction: str, *, added: bool
    ) -> JSON:
        person = self._person(user)
        place = self._place(channel, person, typing=False)
        try:
            message = self.fake.message(place["id"], ts)
        except FakeSlackError as exc:
            raise SimulatorError(str(exc)) from None
        name = reaction.strip(":")
        present = person["id"] in message.reactions.get(name, [])
        if present != added:
            state = "has no" if added else "still has"
            raise SimulatorError(f"{person['name']} {state} :{name}: on message {ts}")
        return {
            "type": "reaction_added" if added else "reaction_removed",
            "user": person["id"],
            "reaction": name,
            "item": {"type": "message", "channel": place["id"], "ts": ts},
            "item_user": message.user,
            "event_ts": self._action_ts(),
        }

    def app_home_opened_event(self, user: str) -> JSON:
        person = self._person(user)
        event: JSON = {
            "type": "app_home_opened",
            "user": person["id"],
            "channel": self.fake.im_channel(person["id"]),
            "tab": "home",
            "event_ts": self._action_ts(),
        }
        home = self.fake.home_view(person["id"])
        if home is not None:
            event["view"] = self.fake.view_json(home.id)
        return event

    def member_joined_channel_event(
        self, channel: str, user: str, *, inviter: str | None = None
    ) -> JSON:
        person = self._person(user)
        place = self._place(channel, person, typing=False)
        if person["id"] not in self.fake.members(place["id"]):
            raise SimulatorError(f"{person['name']} is not in #{place['name']}")
        event: JSON = {
            "type": "member_joined_channel",
            "user": person["id"],
            "channel": place["id"],
            "channel_type": "G" if place["is_private"] else "C",
            "team": self.fake.team_id,
            "event_ts": self._action_ts(),
        }
        if inviter is not None:
            event["inviter"] = self.fake.user_id(inviter)
        return event

    # People doing things, and Slack telling the bot.

    def say(
        self, channel: str, user: str, text: str, *, thread_ts: str | None = None
    ) -> tuple[str, BotReply]:
        """``user`` posts ``text`` (in the thread ``thread_ts``); returns its ts and the reply
        to the ``message`` event."""
        try:
            ts = self.fake.user_says(channel, user, text, thread_ts)
        except FakeSlackError as exc:
            raise SimulatorError(str(exc)) from None
        return ts, self.event(self.message_event(channel, ts))

    def react(self, channel: str, ts: str, *, user: str, reaction: str) -> BotReply:
        try:
            self.fake.user_reacts(channel, ts, user, reaction)
        except FakeSlackError as exc:
            raise SimulatorError(str(exc)) from None
        return self.event(self.reaction_added_event(channel, ts, user=user, reaction=reaction))

    def unreact(self, channel: str, ts: str, *, user: str, reaction: str) -> BotReply:
        try:
            self.fake.user_unreacts(channel, ts, user, reaction)
        except FakeSlackError as exc:
            raise SimulatorError(str(exc)) from None
        event = self.reaction_removed_event(channel, ts, user=user, reaction=reaction)
        return self.event(event)

    def join(self, channel: str, user: str) -> BotReply:
        try:
            self.fake.join(channel, user)
        except FakeSlackError as exc:
            raise SimulatorError(str(exc)) from None
        return self.event(self.member_joined_channel_event(channel, user))

    def open_home(self, user: str) -> BotReply:
        return self.event(self.app_home_opened_event(user))


# --------------------------------------------------------------------------------------------
# Block Kit elements: finding them, and what a person's choice looks like in a payload


def _with_problems(reply: BotReply, *problems: str) -> BotReply:
    return BotReply(
        reply.status,
        reply.headers,
        reply.body,
        reply.elapsed,
        reply.request,
        reply.problems + problems,
        reply.view_id,
    )


def _find_element(blocks: Sequence[JSON], action_id: str, where: str, *, inputs: bool) -> _Found:
    """The interactive element ``action_id`` as a person sees it, or a loud failure."""
    available: list[str] = []
    for block in blocks:
        kind = block.get("type")
        candidates: list[JSON] = []
        if kind == "actions":
            candidates = [e for e in block.get("elements") or [] if isinstance(e, dict)]
        elif kind == "section" and isinstance(block.get("accessory"), dict):
            candidates = [block["accessory"]]
        elif kind == "input" and inputs and block.get("dispatch_action"):
            candidates = [block["element"]] if isinstance(block.get("element"), dict) else []
        for element in candidates:
            if element.get("type") == "image" or "action_id" not in element:
                continue
            available.append(str(element["action_id"]))
            if element["action_id"] == action_id:
                return _Found(str(block.get("block_id")), element)
    shown = ", ".join(available) or "none"
    raise SimulatorError(
        f"no element with action_id {action_id!r} in {where}: a person could not click it "
        f"(interactive elements there: {shown})"
    )


def _options(element: JSON) -> list[JSON]:
    options = [o for o in element.get("options") or [] if isinstance(o, dict)]
    for group in element.get("option_groups") or []:
        if isinstance(group, dict):
            options += [o for o in group.get("options") or [] if isinstance(o, dict)]
    return options


def _option(element: JSON, value: Any) -> JSON:
    if not isinstance(value, str):
        raise SimulatorError(f"{element.get('action_id')}: choose an option by its value (a str)")
    if element.get("type") in ("external_select", "multi_external_select"):
        return {"text": {"type": "plain_text", "text": value, "emoji": True}, "value": value}
    for option in _options(element):
        if option.get("value") == value:
            return dict(option)
    offered = ", ".join(str(o.get("value")) for o in _options(element))
    raise SimulatorError(
        f"{element.get('action_id')} offers no option {value!r} (it offers: {offered})"
    )


def _values(element: JSON, value: Any) -> list[Any]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise SimulatorError(f"{element.get('action_id')}: give a list of choices")
    return list(value)


def _user_choice(fake: FakeSlack, element: JSON, value: Any) -> str:
    try:
        person = fake.user_json(str(value))
    except FakeSlackError:
        raise SimulatorError(f"{element.get('action_id')}: no user {value!r} to pick") from None
    if person["deleted"]:
        raise SimulatorError(f"{element.get('action_id')}: {person['name']} is deactivated")
    return str(person["id"])


def _channel_choice(fake: FakeSlack, element: JSON, value: Any) -> str:
    try:
        return fake.channel_id(str(value))
    except FakeSlackError:
        raise SimulatorError(f"{element.get('action_id')}: no channel {value!r} to pick") from None


def _date_text(element: JSON, value: Any) -> str:
    if isinstance(value, datetime):
        raise SimulatorError(f"{element.get('action_id')}: a datepicker takes a date, not a time")
    if isinstance(value, date):
        return value.isoformat()
    try:
        return date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise SimulatorError(f"{element.get('action_id')}: {value!r} is not YYYY-MM-DD") from None


def _time_text(element: JSON, value: Any) -> str:
    if isinstance(value, clock_time):
        return value.strftime("%H:%M")
    if not isinstance(value, str) or not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
        raise SimulatorError(f"{element.get('action_id')}: {value!r} is not HH:MM")
    return value


def _unix_time(element: JSON, value: Any) -> int:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise SimulatorError(f"{element.get('action_id')}: give an aware datetime")
        return int(value.timestamp())
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise SimulatorError(f"{element.get('action_id')}: give a Unix time or an aware datetime")


def _typed_text(element: JSON, value: Any) -> str:
    """What a text input accepts; the Slack client refuses what these checks refuse."""
    kind = element.get("type")
    name = element.get("action_id")
    if kind == "number_input":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise SimulatorError(f"{name}: a number input takes a number")
        text = str(value)
        try:
            number = float(text)
        except ValueError:
            raise SimulatorError(f"{name}: {value!r} is not a number") from None
        if not element.get("is_decimal_allowed") and not re.fullmatch(r"-?\d+", text):
            raise SimulatorError(f"{name}: only whole numbers are allowed")
        low, high = element.get("min_value"), element.get("max_value")
        if (low is not None and number < float(low)) or (high is not None and number > float(high)):
            raise SimulatorError(f"{name}: {text} is outside the allowed range {low}..{high}")
        return text
    if not isinstance(value, str):
        raise SimulatorError(f"{name}: a text input takes a str")
    if kind == "email_text_input" and value and not _EMAIL.match(value):
        raise SimulatorError(f"{name}: {value!r} is not an email address")
    if kind == "url_text_input" and value and not value.startswith(("http://", "https://")):
        raise SimulatorError(f"{name}: {value!r} is not a URL")
    max_length = element.get("max_length")
    if isinstance(max_length, int) and len(value) > max_length:
        raise SimulatorError(f"{name}: at most {max_length} characters can be typed")
    min_length = element.get("min_length")
    if value and isinstance(min_length, int) and len(value) < min_length:
        raise SimulatorError(f"{name}: at least {min_length} characters are needed")
    if kind == "plain_text_input" and not element.get("multiline") and "\n" in value:
        raise SimulatorError(f"{name}: a single-line input cannot hold line breaks")
    return value


def _choice(element: JSON, value: Any, fake: FakeSlack) -> JSON:
    """The element's state after a person entered ``value``: ``{"type": ..., <key>: ...}``."""
    kind = str(element.get("type"))
    state: JSON = {"type": kind}
    if kind in _ONE_OPTION:
        state["selected_option"] = _option(element, value)
    elif kind in _MANY_OPTIONS:
        state["selected_options"] = [_option(element, v) for v in _values(element, value)]
    elif kind == "users_select":
        state["selected_user"] = _user_choice(fake, element, value)
    elif kind == "multi_users_select":
        state["selected_users"] = [_user_choice(fake, element, v) for v in _values(element, value)]
    elif kind == "conversations_select":
        state["selected_conversation"] = _channel_choice(fake, element, value)
    elif kind == "multi_conversations_select":
        state["selected_conversations"] = [
            _channel_choice(fake, element, v) for v in _values(element, value)
        ]
    elif kind == "channels_select":
        state["selected_channel"] = _channel_choice(fake, element, value)
    elif kind == "multi_channels_select":
        state["selected_channels"] = [
            _channel_choice(fake, element, v) for v in _values(element, value)
        ]
    elif kind == "datepicker":
        state["selected_date"] = _date_text(element, value)
    elif kind == "timepicker":
        state["selected_time"] = _time_text(element, value)
    elif kind == "datetimepicker":
        state["selected_date_time"] = _unix_time(element, value)
    elif kind in _TEXT_INPUTS or kind == "number_input":
        state["value"] = _typed_text(element, value)
    elif kind == "rich_text_input":
        text = _typed_text({**element, "type": "plain_text_input", "multiline": True}, value)
        state["rich_text_value"] = {
            "type": "rich_text",
            "elements": [
                {"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}
            ],
        }
    else:
        raise SimulatorError(f"{element.get('action_id')}: cannot enter a value in a {kind}")
    return state


def _initial(element: JSON) -> JSON:
    """The element's state before a person touched it (its ``initial_*`` value, or empty)."""
    kind = str(element.get("type"))
    keys: dict[str, tuple[str, Any]] = {
        "selected_option": ("initial_option", None),
        "selected_options": ("initial_options", []),
        "selected_user": ("initial_user", None),
        "selected_users": ("initial_users", []),
        "selected_conversation": ("initial_conversation", None),
        "selected_conversations": ("initial_conversations", []),
        "selected_channel": ("initial_channel", None),
        "selected_channels": ("initial_channels", []),
        "selected_date": ("initial_date", None),
        "selected_time": ("initial_time", None),
        "selected_date_time": ("initial_date_time", None),
        "value": ("initial_value", None),
        "rich_text_value": ("initial_value", None),
    }
    key = _state_key(kind)
    initial_key, empty = keys[key]
    value = element.get(initial_key)
    return {"type": kind, key: value if value is not None else empty}


def _state_key(kind: str) -> str:
    if kind in _ONE_OPTION:
        return "selected_option"
    if kind in _MANY_OPTIONS:
        return "selected_options"
    simple = {
        "users_select": "selected_user",
        "multi_users_select": "selected_users",
        "conversations_select": "selected_conversation",
        "multi_conversations_select": "selected_conversations",
        "channels_select": "selected_channel",
        "multi_channels_select": "selected_channels",
        "datepicker": "selected_date",
        "timepicker": "selected_time",
        "datetimepicker": "selected_date_time",
        "rich_text_input": "rich_text_value",
    }
    return simple.get(kind, "value")


def _is_empty(state: JSON) -> bool:
    return all(v in (None, "", []) for k, v in state.items() if k != "type")


def _act(found: _Found, value: Any, fake: FakeSlack, action_ts: str) -> tuple[JSON, JSON | None]:
    """The ``actions[0]`` entry of a block_actions payload, and the element's new state
    (None for stateless elements such as buttons)."""
    element = found.element
    kind = str(element.get("type"))
    action: JSON = {
        "action_id": element["action_id"],
        "block_id": found.block_id,
        "type": kind,
        "action_ts": action_ts,
    }
    if kind == "button":
        if value is not None:
            raise SimulatorError(
                f"{element['action_id']} is a button: it sends its own value, not {value!r}"
            )
        action["text"] = element.get("text")
        if "value" in element:
            action["value"] = element["value"]
        if "style" in element:
            action["style"] = element["style"]
        return action, None
    if value is None:
        raise SimulatorError(f"{element['action_id']} is a {kind}: say what the person chooses")
    state = _choice(element, value, fake)
    action.update({k: v for k, v in state.items() if k != "type"})
    if element.get("placeholder") is not None:
        action["placeholder"] = element["placeholder"]
    return action, None if kind in _STATELESS else state


def _state_values(found: _Found, action: JSON, state: JSON | None) -> dict[str, dict[str, JSON]]:
    if state is None:
        return {}
    return {found.block_id: {str(action["action_id"]): state}}


def _submission_state(
    view: View, values: dict[str, Any], fake: FakeSlack
) -> dict[str, dict[str, JSON]]:
    """``view.state.values`` for a submission: every input block, with what the person
    entered or the initial value; refuses unknown ids and empty required inputs."""
    state: dict[str, dict[str, JSON]] = {}
    used: set[str] = set()
    inputs: list[str] = []
    for block in view.payload.get("blocks") or []:
        if block.get("type") != "input" or not isinstance(block.get("element"), dict):
            continue
        element = block["element"]
        block_id, action_id = str(block.get("block_id")), str(element.get("action_id"))
        inputs.append(action_id)
        key = action_id if action_id in values else block_id if block_id in values else None
        if key is not None:
            used.add(key)
            entry = _choice(element, values[key], fake)
        else:
            entry = view.state_values.get(block_id, {}).get(action_id) or _initial(element)
        if not block.get("optional") and _is_empty(entry):
            label = (block.get("label") or {}).get("text", block_id)
            raise SimulatorError(
                f"the required input {label!r} ({action_id}) is empty: Slack would not let "
                "the person submit"
            )
        state.setdefault(block_id, {})[action_id] = entry
    unknown = sorted(set(values) - used)
    if unknown:
        raise SimulatorError(
            f"view {view.id} has no input {unknown}: its inputs are {inputs or 'none'}"
        )
    return state
