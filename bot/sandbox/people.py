"""Who acts and where, as the payloads Slack sends name them: a person (never a deactivated
one), a channel they can see (and type in), and the form fields of a slash command. Shared by
the HTTP simulator and the Socket Mode server, so both send the same payloads."""

from __future__ import annotations

from bot.sandbox.records import JSON, FakeSlackError
from bot.sandbox.scenarios import Scenarios
from bot.sandbox.typed import escape_typed

DEFAULT_VERIFICATION_TOKEN = "legacy-verification-token"


class SimulatorError(Exception):
    """The requested action is one a person could not perform in Slack."""


def person_json(fake: Scenarios, user: str) -> JSON:
    try:
        found = fake.user_json(user)
    except FakeSlackError as exc:
        raise SimulatorError(str(exc)) from None
    if found["deleted"]:
        raise SimulatorError(f"{found['name']} is deactivated and cannot act in Slack")
    return found


def place_json(fake: Scenarios, channel: str, person: JSON, *, typing: bool) -> JSON:
    """The channel as payloads name it (``id``, ``name``, ``is_private``, ``is_im``), after
    checking the person can see it (and type in it, for ``typing``)."""
    try:
        found = fake.channel_json(channel)
        members = fake.members(channel)
    except FakeSlackError as exc:
        raise SimulatorError(str(exc)) from None
    if found.get("is_im"):
        if person["id"] not in members:
            raise SimulatorError(f"{channel} is someone else's direct message with the bot")
        return {"id": found["id"], "name": "directmessage", "is_private": False, "is_im": True}
    place = {
        "id": found["id"],
        "name": found["name"],
        "is_private": found["is_private"],
        "is_im": False,
    }
    if found["is_private"] and person["id"] not in members:
        raise SimulatorError(f"{person['name']} cannot see the private #{found['name']}")
    if typing and found["is_archived"]:
        raise SimulatorError(f"#{found['name']} is archived: nobody can type in it")
    if typing and person["id"] not in members:
        raise SimulatorError(f"{person['name']} is not in #{found['name']}")
    return place


def slash_command_fields(
    fake: Scenarios,
    text: str,
    *,
    user: str,
    channel: str,
    command: str = "/incident",
    verification_token: str = DEFAULT_VERIFICATION_TOKEN,
) -> JSON:
    """What Slack sends for ``command text`` typed by ``user`` in ``channel`` (with a fresh
    ``trigger_id`` and ``response_url``). ``text`` is escaped as Slack escapes it
    (:func:`escape_typed`): a typed ``a < b`` arrives as ``a &lt; b``."""
    person = person_json(fake, user)
    place = place_json(fake, channel, person, typing=True)
    trigger_id = fake.issue_trigger(person["id"])
    response_url = fake.issue_response_url(place["id"], person["id"])
    return {
        "token": verification_token,
        "team_id": fake.team_id,
        "team_domain": fake.team_domain,
        "channel_id": place["id"],
        "channel_name": "privategroup" if place["is_private"] else place["name"],
        "user_id": person["id"],
        "user_name": person["name"],
        "command": command,
        "text": escape_typed(text),
        "api_app_id": fake.app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }
