"""Configuration: process settings from the environment, and the team's incident policy.

Two sources, on purpose:

* ``Settings`` (pydantic-settings) holds what differs per deployment: the database URL and the
  Slack credentials. It comes from environment variables, so secrets never sit in a file in git.
* ``Policy`` holds how the team runs incidents: severities, statuses and their transitions, roles,
  channel naming, reminder cadences. It lives in ``firebreak.toml``, which the team keeps under
  version control. Every key has a default, so an empty file (or no file) is a working policy.

The package, by concept: ``lifecycle`` (severities, statuses, roles), ``policy`` (the rest of
the ``firebreak.toml`` models), ``loading`` and ``toml_lines`` (reading the file, naming its
lines) and ``settings`` (the environment, and loading both at start-up).

Any problem stops start-up with one line that names the key, and the policy file's line
(``ConfigError``; exit code 2).
"""

from __future__ import annotations

from bot.config.lifecycle import COMMANDER, RolePolicy, SeverityPolicy, StatusPolicy
from bot.config.loading import load_policy, policy_from_dict
from bot.config.policy import (
    AccessPolicy,
    Policy,
    PostmortemPolicy,
    RemindersPolicy,
    RetentionPolicy,
    RunbooksPolicy,
    SlackPolicy,
)
from bot.config.settings import (
    EnvironmentSettings,
    Settings,
    check_port,
    load_configuration,
    load_settings,
    normalise_database_url,
)
from bot.durations import Duration, format_duration, parse_duration

__all__ = [
    "COMMANDER",
    "AccessPolicy",
    "Duration",
    "EnvironmentSettings",
    "Policy",
    "PostmortemPolicy",
    "RemindersPolicy",
    "RetentionPolicy",
    "RolePolicy",
    "RunbooksPolicy",
    "Settings",
    "SeverityPolicy",
    "SlackPolicy",
    "StatusPolicy",
    "check_port",
    "format_duration",
    "load_configuration",
    "load_policy",
    "load_settings",
    "normalise_database_url",
    "parse_duration",
    "policy_from_dict",
]
