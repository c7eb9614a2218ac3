"""The Slack app manifest asks for every scope the Web API methods Firebreak calls need: a
scope missing from it is a feature that fails only in a real workspace (the fake Slack does not
check scopes), e.g. the direct message to the commander when a Slack effect fails for good."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

import bot.slack.gateway

REPO = Path(__file__).resolve().parents[2]

# Bot-token scopes each method needs, from Slack's method reference (docs.slack.dev). Where
# Firebreak uses a method on public channels, private channels and direct messages, it needs
# the scope of each.
SCOPES: dict[str, set[str]] = {
    "auth.test": set(),
    "chat.getPermalink": set(),
    "chat.postEphemeral": {"chat:write"},
    "chat.postMessage": {"chat:write", "chat:write.public"},
    "chat.update": {"chat:write"},
    "conversations.create": {"channels:manage", "groups:write"},
    "conversations.history": {"channels:history", "groups:history", "im:history"},
    "conversations.info": {"channels:read", "groups:read"},
    "conversations.invite": {"channels:manage", "groups:write"},
    "conversations.list": {"channels:read", "groups:read"},
    "conversations.members": {"channels:read", "groups:read"},
    "conversations.open": {"im:write"},
    "conversations.replies": {"channels:history", "groups:history"},
    "conversations.setPurpose": {"channels:manage", "groups:write"},
    "conversations.setTopic": {"channels:manage", "groups:write"},
    "files.completeUploadExternal": {"files:write"},
    "files.getUploadURLExternal": {"files:write"},
    "files.info": {"files:read"},
    "files.upload": set(),  # the name Firebreak gives the POST to the upload URL Slack gave
    "pins.add": {"pins:write"},
    "pins.remove": {"pins:write"},
    "usergroups.list": {"usergroups:read"},
    "usergroups.users.list": {"usergroups:read"},
    "users.info": {"users:read"},
    "views.open": set(),
    "views.publish": set(),
    "views.update": set(),
}
EVENTS = {
    "reaction_added": {"reactions:read"},
    "reaction_removed": {"reactions:read"},
    **{f"channel_{what}": {"channels:read"} for what in ("archive", "unarchive", "rename")},
    **{f"group_{what}": {"groups:read"} for what in ("archive", "unarchive", "rename")},
    "channel_deleted": {"channels:read"},
    "channel_left": {"channels:read"},
    "group_deleted": {"groups:read"},
    "group_left": {"groups:read"},
    "member_left_channel": {"channels:read", "groups:read"},
}
_METHOD = re.compile(
    r'"((?:auth|chat|conversations|files|pins|usergroups|users|views)\.[A-Za-z.]+)"'
)


def manifest() -> dict[str, Any]:
    loaded = yaml.safe_load((REPO / "slack-manifest.yaml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def test_every_method_firebreak_calls_is_known_here() -> None:
    source = Path(bot.slack.gateway.__file__).read_text(encoding="utf-8")
    called = set(_METHOD.findall(source))
    assert called, "no Slack method names found in the gateway"
    assert called - set(SCOPES) == set(), "add the new methods and their scopes to SCOPES"


def test_the_manifest_asks_for_every_scope_those_methods_and_events_need() -> None:
    app = manifest()
    granted = set(app["oauth_config"]["scopes"]["bot"])
    events = set(app["settings"]["event_subscriptions"]["bot_events"])
    needed = set().union(*SCOPES.values(), *(EVENTS[e] for e in events if e in EVENTS))
    assert needed - granted == set()
    assert "commands" in granted
