"""Who may do what: the one place access rules are checked.

The policy lists principals per action (``[access]`` in firebreak.toml). A person may act when
they match any of them. Refusals name who may act instead, so the responder knows whom to ask.
"""

from __future__ import annotations

from typing import Literal, Protocol

from bot.config import Policy
from bot.errors import NotAllowed
from bot.models import Incident

Action = Literal[
    "declare", "change_severity", "close", "reopen", "assign_roles", "silence_reminders"
]

_VERBS = {
    "declare": "declare incidents",
    "change_severity": "change the severity",
    "close": "close incidents",
    "reopen": "reopen incidents",
    "assign_roles": "change who holds incident roles",
    "silence_reminders": "snooze or stop reminders",
}

# Actions on an incident, which a role can grant (``role:<key>`` or ``any-role``).
INCIDENT_ACTIONS: tuple[Action, ...] = (
    "change_severity",
    "close",
    "reopen",
    "assign_roles",
    "silence_reminders",
)


class Directory(Protocol):
    """Lookups access rules need from Slack."""

    def is_workspace_admin(self, user: str) -> bool: ...

    def group_members(self, group: str) -> set[str]:
        """Members of a user group given by id (S...) or handle (@sre)."""
        ...

    def channel_members(self, channel: str) -> set[str]:
        """Members of a channel; an empty set when they cannot be looked up."""
        ...


def _matches(
    principal: str,
    user: str,
    *,
    policy: Policy,
    incident: Incident | None,
    roles: dict[str, str],
    directory: Directory,
) -> bool:
    if principal == "everyone":
        return True
    if principal == "admins":
        return is_admin(policy, user, directory)
    if principal == "reporter":
        return incident is not None and incident.reporter_id == user
    if principal == "any-role":
        return user in roles.values()
    kind, _, value = principal.partition(":")
    if kind == "role":
        return roles.get(value) == user
    if kind == "group":
        return user in directory.group_members(value)
    if kind == "user":
        return user == value
    return False


def is_admin(policy: Policy, user: str, directory: Directory) -> bool:
    for admin in policy.access.admins:
        if admin == user:
            return True
        if admin.startswith(("S", "@")) and user in directory.group_members(admin):
            return True
    return directory.is_workspace_admin(user)


def can_see(
    policy: Policy,
    user: str,
    incident: Incident,
    directory: Directory,
    *,
    channel: str | None = None,
) -> bool:
    """The one visibility rule, used by every route (Slack commands, clicks, lists, App Home,
    the web console): a private incident exists only for the people in its channel (before the
    channel exists: its reporter and the responders invited with it) and for admins.

    ``channel`` is where the person is asking from: inside the incident's own channel they are
    a member by definition."""
    if not incident.private:
        return True
    if channel is not None and channel == incident.slack_channel_id:
        return True
    if incident.slack_channel_id is None:
        invited = incident.slack_state.get("invite") or []
        if user == incident.reporter_id or user in invited:
            return True
    elif user in directory.channel_members(incident.slack_channel_id):
        return True
    return is_admin(policy, user, directory)


def describe(policy: Policy, principals: list[str]) -> str:
    names = []
    for principal in principals:
        kind, _, value = principal.partition(":")
        if principal == "admins":
            names.append("Firebreak or workspace admins")
        elif principal == "reporter":
            names.append("the person who declared it")
        elif principal == "any-role":
            names.append("anyone holding an incident role")
        elif kind == "role":
            role = policy.find_role(value)
            names.append(f"the {role.name if role else value}")
        elif kind == "group":
            names.append(
                f"members of <!subteam^{value}>" if value.startswith("S") else f"members of {value}"
            )
        elif kind == "user":
            names.append(f"<@{value}>")
    if len(names) > 1:
        return ", ".join(names[:-1]) + " or " + names[-1]
    return names[0] if names else "nobody"


def verb(action: Action) -> str:
    """``close`` -> "close incidents", for messages."""
    return _VERBS[action]


def granted_by(policy: Policy, role: str) -> list[Action]:
    """The actions whoever holds ``role`` may take because they hold it."""
    return [
        action
        for action in INCIDENT_ACTIONS
        if any(p in (f"role:{role}", "any-role") for p in getattr(policy.access, action))
    ]


def role_change_needs(
    policy: Policy, role: str, *, actor: str, target: str, holder: str | None
) -> list[Action]:
    """What ``actor`` must be allowed to do to give ``role`` to ``target`` (themselves or
    someone else) while ``holder`` holds it; an empty list when the change is free.

    Free: a change that changes nothing, a holder handing over their own role, and a vacant
    role (when ``[access] take_vacant_roles`` is true, the default; when false, only vacant
    roles that grant nothing). Otherwise ``assign_roles`` decides, and a role that grants
    actions (``close = ["role:commander"]``) needs those actions too, so taking a role never
    gives anyone a right they could not use before."""
    if holder == target or (holder is not None and holder == actor):
        return []
    granted = granted_by(policy, role)
    if holder is None and (policy.access.take_vacant_roles or not granted):
        return []
    return ["assign_roles", *(a for a in granted if a != "assign_roles")]


def require(
    policy: Policy,
    action: Action,
    user: str,
    *,
    incident: Incident | None,
    roles: dict[str, str],
    directory: Directory,
) -> None:
    """Raise ``NotAllowed`` (with who may do it) unless ``user`` may perform ``action``."""
    principals = list(getattr(policy.access, action))
    for principal in principals:
        if _matches(
            principal, user, policy=policy, incident=incident, roles=roles, directory=directory
        ):
            return
    raise NotAllowed(
        f"You may not {_VERBS[action]}: only {describe(policy, principals)} can. "
        "Ask one of them, or change [access] in firebreak.toml."
    )
