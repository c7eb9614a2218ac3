"""Governed role changes: taking a role never gives anyone a right they did not have."""

from __future__ import annotations

import pytest

from bot.access import granted_by, role_change_needs
from bot.config import AccessPolicy, Policy, policy_from_dict
from bot.errors import ConfigError

RESTRICTED = Policy(access=AccessPolicy(close=["role:commander", "admins"]))


def test_a_role_grants_the_actions_that_name_it() -> None:
    assert granted_by(RESTRICTED, "commander") == ["close"]
    assert granted_by(RESTRICTED, "scribe") == []
    anyone = Policy(access=AccessPolicy(reopen=["any-role"], assign_roles=["role:commander"]))
    assert granted_by(anyone, "commander") == ["reopen", "assign_roles"]
    assert granted_by(anyone, "scribe") == ["reopen"]


def test_taking_a_held_role_that_grants_close_needs_close() -> None:
    needs = role_change_needs(RESTRICTED, "commander", actor="U2", target="U2", holder="U1")
    assert needs == ["assign_roles", "close"]
    # giving it to someone else is the same change
    assert role_change_needs(RESTRICTED, "commander", actor="U2", target="U3", holder="U1") == [
        "assign_roles",
        "close",
    ]


def test_free_changes() -> None:
    # the holder hands over their own role
    assert role_change_needs(RESTRICTED, "commander", actor="U1", target="U2", holder="U1") == []
    # nothing changes
    assert role_change_needs(RESTRICTED, "commander", actor="U2", target="U1", holder="U1") == []
    # a vacant role is free to take by default, whatever it grants
    assert role_change_needs(RESTRICTED, "commander", actor="U2", target="U2", holder=None) == []


def test_vacant_roles_can_be_governed_too() -> None:
    strict = Policy(
        access=AccessPolicy(close=["role:commander", "admins"], take_vacant_roles=False)
    )
    assert role_change_needs(strict, "commander", actor="U2", target="U2", holder=None) == [
        "assign_roles",
        "close",
    ]
    # a vacant role that grants nothing stays free
    assert role_change_needs(strict, "scribe", actor="U2", target="U2", holder=None) == []


def test_a_held_role_that_grants_nothing_follows_assign_roles() -> None:
    assert role_change_needs(RESTRICTED, "scribe", actor="U2", target="U2", holder="U1") == [
        "assign_roles"
    ]


def test_assign_roles_is_checked_like_the_other_access_keys() -> None:
    with pytest.raises(ConfigError, match=r"access.assign_roles: 'role:janitor' names no role"):
        policy_from_dict({"access": {"assign_roles": ["role:janitor"]}})
    with pytest.raises(ConfigError, match=r"access.assign_roles: .*is not a principal"):
        policy_from_dict({"access": {"assign_roles": ["nobody"]}})
