"""The shape of what Slack sends, checked once a request is verified and before anything reads it.

A correctly signed body can still be malformed: a bug on Slack's side, a proxy that rewrites
bodies, or someone who holds the signing secret and sends ``null``. Bolt and the listeners
assume Slack's documented shapes (an object with ``type``, ``user`` an object, ``actions`` a
non-empty list ...), so such a body would end in a 500 and a traceback. ``malformed`` names what
is wrong so the request is refused with 400 before Bolt sees it (and before anything is stored).

It checks the containers the bot reads, not every field Slack documents: a missing optional
field is the listeners' business, a string where an object must be is not.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, unquote_plus

from bot.http_body import NotJSON, load_json

# Interaction payload fields that are objects whenever they are present and not null (Slack sends
# "enterprise": null outside Enterprise Grid).
_OBJECT_FIELDS = ("user", "team", "channel", "message", "container", "view", "state", "enterprise")
# Event fields that are objects whenever they are present.
_EVENT_OBJECT_FIELDS = ("item", "message", "previous_message", "view")


def _object(value: Any, what: str) -> str | None:
    return None if isinstance(value, dict) else f"{what} is not an object"


def _text(value: Any, what: str) -> str | None:
    return None if isinstance(value, str) and value else f"{what} is missing or not a string"


def _first(*problems: str | None) -> str | None:
    return next((problem for problem in problems if problem), None)


def malformed(body: str, content_type: str, parsed: Any = None) -> str | None:
    """Why ``body`` is not a request Slack could have sent, or ``None`` if its shape is fine.
    ``parsed``: the body as Bolt parsed it (a JSON body, or an interaction's payload), so a
    large payload is decoded once."""
    if "application/json" in content_type:
        return _event_envelope(parsed if isinstance(parsed, dict) else body)
    keys = [unquote_plus(field.partition("=")[0]) for field in body.split("&")]
    if "payload" in keys:
        if keys.count("payload") != 1:
            return "more than one payload"
        if isinstance(parsed, dict):
            return _interaction(parsed)
        return _interaction(parse_qs(body, keep_blank_values=True)["payload"][0])
    form = parse_qs(body, keep_blank_values=True)
    if "ssl_check" in form:  # Slack checking the certificate of a slash command's URL
        return None
    if "command" in form:
        return _command(form)
    return "neither an event, an interaction nor a command"


def _load(text: str, what: str) -> tuple[dict[str, Any] | None, str | None]:
    try:
        value = load_json(text)
    except NotJSON as exc:
        return None, f"{what} {exc}"
    if not isinstance(value, dict):
        return None, f"{what} is not a JSON object"
    return value, None


def _event_envelope(body: str | dict[str, Any]) -> str | None:
    envelope, problem = (body, None) if isinstance(body, dict) else _load(body, "the body")
    if envelope is None:
        return problem
    kind = envelope.get("type")
    if problem := _text(kind, "type"):
        return problem
    if kind == "url_verification":
        return _text(envelope.get("challenge"), "challenge")
    if kind == "event_callback":
        event = envelope.get("event")
        if problem := _object(event, "event"):
            return problem
        assert isinstance(event, dict)
        return _first(
            _text(event.get("type"), "event.type"),
            *(
                _object(event[field], f"event.{field}")
                for field in _EVENT_OBJECT_FIELDS
                if event.get(field) is not None
            ),
            None if isinstance(envelope.get("event_id", ""), str) else "event_id is not a string",
        )
    return None


def _interaction(text: str | dict[str, Any]) -> str | None:
    payload, problem = (text, None) if isinstance(text, dict) else _load(text, "payload")
    if payload is None:
        return problem
    kind = payload.get("type")
    if problem := _first(
        _text(kind, "payload.type"),
        _object(payload.get("user"), "payload.user"),
        *(
            _object(payload[field], f"payload.{field}")
            for field in _OBJECT_FIELDS
            if payload.get(field) is not None and field != "user"
        ),
    ):
        return problem
    user = payload["user"]
    if problem := _text(user.get("id"), "payload.user.id"):
        return problem
    if kind == "block_actions":
        actions = payload.get("actions")
        if not isinstance(actions, list) or not actions:
            return "payload.actions is not a non-empty list"
        for number, action in enumerate(actions):
            if not isinstance(action, dict):
                return f"payload.actions.{number} is not an object"
            if problem := _text(action.get("action_id"), f"payload.actions.{number}.action_id"):
                return problem
    if kind in ("view_submission", "view_closed"):
        view = payload.get("view")
        if problem := _object(view, "payload.view"):
            return problem
        assert isinstance(view, dict)
        state = view.get("state", {})
        values = state.get("values", {}) if isinstance(state, dict) else None
        if not isinstance(values, dict) or not all(isinstance(v, dict) for v in values.values()):
            return "payload.view.state.values is not an object of objects"
        if problem := _text(view.get("type"), "payload.view.type"):  # Bolt reads it
            return problem
    if kind in ("shortcut", "message_action"):
        return _text(payload.get("callback_id"), "payload.callback_id")
    return None


def _command(form: dict[str, list[str]]) -> str | None:
    for field in ("command", "user_id"):
        values = form.get(field, [])
        if len(values) != 1 or not values[0]:
            return f"{field} is missing"
    return None
