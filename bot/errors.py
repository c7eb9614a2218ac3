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
