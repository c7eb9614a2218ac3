"""The ``[alerts]`` section of firebreak.toml: how alerts become incidents.

This module must not import ``bot.config.Policy`` (``Policy`` has an ``alerts`` field of this
type). Values that name severities are checked against the policy's severities while the policy
is validated (see ``__get_pydantic_core_schema__``), so ``firebreak policy check`` reports a
mapping to an unknown severity with its key, like every other mistake.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    ValidationInfo,
    field_validator,
)
from pydantic_core import core_schema

from bot.durations import parse_duration


def _window(value: object) -> object:
    """``30m``, ``1h``, ``1h30m``, ``90s`` as everywhere in the policy; ``0s`` (or ``0m``)
    turns the flap window off."""
    if isinstance(value, str) and value.strip().lower().rstrip("dhms") == "0":
        return timedelta(0)
    return parse_duration(value)


Window = Annotated[timedelta, BeforeValidator(_window)]

SOURCE_NAMES = ("alertmanager", "grafana", "datadog", "pagerduty", "opsgenie", "generic")
_CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{2,}$")
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")


def _default_severity_map() -> dict[str, str]:
    return {
        # Prometheus / Grafana label values
        "critical": "SEV1",
        "page": "SEV1",
        "error": "SEV2",
        "major": "SEV2",
        "high": "SEV2",
        "warning": "SEV3",
        "minor": "SEV3",
        "low": "SEV3",
        "info": "SEV3",
        # Datadog, Opsgenie and PagerDuty priorities
        "P1": "SEV1",
        "P2": "SEV2",
        "P3": "SEV3",
        "P4": "SEV3",
        "P5": "SEV3",
    }


class DropRule(BaseModel):
    """Alerts matching every given condition are stored as dropped and never open incidents."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str | None = None
    """Only alerts from this source (default: any)."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Label name -> regular expression that must match the whole value."""
    title: str | None = None
    """Regular expression searched in the alert title."""

    @field_validator("source")
    @classmethod
    def _source(cls, value: str | None) -> str | None:
        if value is not None and value not in SOURCE_NAMES:
            raise ValueError(f"unknown source {value!r}: use one of {', '.join(SOURCE_NAMES)}")
        return value

    @field_validator("labels")
    @classmethod
    def _label_patterns(cls, value: dict[str, str]) -> dict[str, str]:
        for name, pattern in value.items():
            _compile(pattern, f"labels.{name}")
        return value

    @field_validator("title")
    @classmethod
    def _title_pattern(cls, value: str | None) -> str | None:
        if value is not None:
            _compile(value, "title")
        return value

    def matches(self, source: str, title: str, labels: dict[str, str]) -> bool:
        if self.source is not None and self.source != source:
            return False
        if self.title is not None and not re.search(self.title, title):
            return False
        return all(
            name in labels and re.fullmatch(pattern, labels[name]) is not None
            for name, pattern in self.labels.items()
        )


def _compile(pattern: str, where: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{where}: invalid regular expression {pattern!r}: {exc}") from None


def _check_with_policy(value: AlertsPolicy, info: ValidationInfo) -> AlertsPolicy:
    if value.declare == "triage" and value.triage_channel is None:
        raise ValueError(
            'declare = "triage" needs triage_channel (the id of the channel where alerts wait)'
        )
    data = info.data if isinstance(info.data, dict) else {}
    severities = data.get("severities")
    if not severities:
        return value
    keys = [str(getattr(s, "key", "")) for s in severities]
    names = {str(getattr(s, "key", "")).casefold() for s in severities}
    names |= {str(getattr(s, "name", "")).casefold() for s in severities if getattr(s, "name", "")}
    mapped = value.severity_map if "severity_map" in value.model_fields_set else {}
    for key, target in mapped.items():
        if target.strip().casefold() not in names:
            raise ValueError(
                f"severity_map.{key}: {target!r} is not one of the severities ({', '.join(keys)})"
            )
    if value.default_severity is not None and value.default_severity.casefold() not in names:
        raise ValueError(
            f"default_severity: {value.default_severity!r} is not one of the severities "
            f"({', '.join(keys)})"
        )
    return value


class AlertsPolicy(BaseModel):
    """``[alerts]``: every key has a default a team can start with."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    declare: Literal["auto", "triage"] = "auto"
    """auto: a new alert group declares an incident; triage: a message with Declare / Attach /
    Ignore buttons is posted in ``triage_channel`` first."""
    triage_channel: str | None = None
    """The id (C...) of the channel where alerts wait for Declare / Attach / Ignore; required
    when declare = "triage"."""
    severity_labels: list[str] = Field(default_factory=lambda: ["severity", "priority"])
    """Labels read (in order) for the source's severity; sources with their own priority
    (Datadog, PagerDuty, Opsgenie) use it directly."""
    severity_map: dict[str, str] = Field(default_factory=_default_severity_map)
    """Source severity or priority (any case: two keys differing only in case are refused) -> a
    severity key of this policy."""
    default_severity: str | None = None
    """Severity when nothing maps; unset: the policy's default_severity."""
    service_labels: list[str] = Field(
        default_factory=lambda: ["service", "app", "application", "job"]
    )
    """Labels read (in order) for the affected service: it names the incident and groups
    alerts."""
    flap_window: Window = timedelta(minutes=30)
    """A group firing again within this long after it resolved attaches to its incident; later
    too while that incident is active (people are still working on it)."""
    on_all_resolved: Literal["ask", "mitigate", "nothing"] = "ask"
    """When every alert of an incident has resolved: ask the commander, mitigate, or nothing
    (mitigate needs a status with ``milestone = "mitigated"``; it asks instead when the sender
    left alerts out of its message, or when no move leads there from the incident's status)."""
    start_runbook: bool = False
    """Start the runbook named by the alert instead of only suggesting it."""
    invite: list[str] = Field(default_factory=list)
    """Slack user ids (U...) invited to the channel of an incident that alerts declare (the
    on-call, say); nobody is invited otherwise."""
    drop: list[DropRule] = Field(default_factory=list)

    @field_validator("severity_map")
    @classmethod
    def _one_entry_per_name(cls, value: dict[str, str]) -> dict[str, str]:
        seen: dict[str, str] = {}
        for key in value:
            first = seen.setdefault(key.strip().casefold(), key)
            if first != key:
                raise ValueError(
                    f"{first!r} and {key!r} are the same source severity (case is ignored): "
                    "keep one"
                )
        return value

    @field_validator("triage_channel")
    @classmethod
    def _channel(cls, value: str | None) -> str | None:
        if value is not None and not _CHANNEL_ID.match(value):
            raise ValueError(
                f"{value!r} is not a Slack channel id: use the id (C0123ABCD) from the "
                "channel's details, not its name"
            )
        return value

    @field_validator("invite")
    @classmethod
    def _users(cls, value: list[str]) -> list[str]:
        for user in value:
            if not _USER_ID.match(user):
                raise ValueError(
                    f"{user!r} is not a Slack user id: use the U... id from the profile"
                )
        return value

    @field_validator("severity_labels", "service_labels")
    @classmethod
    def _labels(cls, value: list[str]) -> list[str]:
        if any(not isinstance(v, str) or not v.strip() for v in value):
            raise ValueError("label names must be non-empty strings")
        return value

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        # Checked with the enclosing policy's severities (validated before this field).
        return core_schema.with_info_after_validator_function(_check_with_policy, handler(source))

    def triage_ready(self) -> bool:
        return self.declare == "auto" or self.triage_channel is not None

    def default_map_matches_none(self, severities: Sequence[Any]) -> bool:
        """Whether the built-in severity_map (SEV1..SEV3) names none of ``severities``, as for
        a policy with its own keys (P1, P2): every alert would get the fallback severity. Not an
        error, since many teams take no alerts; ``firebreak policy check`` warns."""
        if "severity_map" in self.model_fields_set:
            return False
        names = {str(getattr(s, "key", "")).casefold() for s in severities}
        names |= {str(getattr(s, "name", "")).casefold() for s in severities}
        return not any(target.casefold() in names for target in self.severity_map.values())

    def severity_for(self, raw: str | None) -> str | None:
        """The policy severity for a source severity (case-insensitive), if mapped."""
        if not raw:
            return None
        wanted = raw.strip().casefold()
        for key, value in self.severity_map.items():
            if key.casefold() == wanted:
                return value
        return None
