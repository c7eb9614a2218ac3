"""Typed errors raised by the domain core.

Each carries a message written for the responder who will read it (in Slack or the CLI):
what was wrong and what to do instead.
"""

from __future__ import annotations


class FirebreakError(Exception):
    """Base class: the message is safe to show to a user."""


class NotFound(FirebreakError):
    """The incident, action item or runbook does not exist."""


class InvalidInput(FirebreakError):
    """A value was malformed, too long, or not one the policy knows."""


class InvalidTransition(FirebreakError):
    """The status change is not allowed by the incident policy."""


class NotAllowed(FirebreakError):
    """The person may not do this (access control)."""


class ConfigError(FirebreakError):
    """The configuration or the policy file is invalid; start-up stops with exit code 2."""


class PlacedValueError(ValueError):
    """A validator's complaint that knows where below its field the problem is written
    (``(1, "starts_on")`` under ``clocks``): the policy loader adds ``at`` to the error's
    location to find the line of ``firebreak.toml`` to name."""

    def __init__(self, message: str, at: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.at = at
