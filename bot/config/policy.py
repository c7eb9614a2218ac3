"""The team's incident policy (``firebreak.toml``): severities, statuses and their transitions,
roles, channel naming, reminder cadences, runbooks, postmortems, access and retention. Every key
has a default, so an empty file (or no file) is a working policy."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from bot.alerts.policy import AlertsPolicy
from bot.audit.clocks import ClockList
from bot.config.lifecycle import (
    COMMANDER,
    RolePolicy,
    SeverityPolicy,
    StatusPolicy,
    Strict,
    check_names,
    check_status_graph,
    default_roles,
    default_severities,
    default_statuses,
    short_level,
)
from bot.config.toml_lines import toml_line
from bot.cron import UnsupportedCron, cron_trigger  # crontab weekdays: 0 and 7 are Sunday
from bot.durations import Duration, RetentionDuration
from bot.markup import BROADCASTS


class SlackPolicy(Strict):
    """How incidents look in Slack."""

    channel_name: str = "inc-{number}-{slug}"
    """Placeholders: {number}, {slug} (from the title, spelled in ASCII: `Arıza` -> `ariza`,
    `Сбой` -> `sboy`; Chinese characters, right-to-left scripts and emoji are left out),
    {severity}, {date} (YYYYMMDD)."""
    announcements_channel: str | None = None
    """Channel id (C...) that gets one message per non-private incident, edited in place; a
    reopen is also said there (an edit notifies nobody)."""
    capture_reaction: str = "pushpin"
    """Reacting with this emoji to a message in an incident channel puts it on the timeline
    (in any skin tone). Its name, as Slack shows it on hover (`fire`), not the emoji itself."""
    allow_broadcast_mentions: bool = False
    """Let @channel, @here, @everyone and user-group mentions in text Firebreak re-posts
    (updates, resolve text, notes, captured messages) notify; by default they show but stay
    silent."""

    @field_validator("channel_name")
    @classmethod
    def _pattern(cls, value: str) -> str:
        if "{number}" not in value:
            raise ValueError("must contain {number} so every incident gets its own channel")
        unknown = set(re.findall(r"{([^}]*)}", value)) - {"number", "slug", "severity", "date"}
        if unknown:
            raise ValueError(
                f"unknown placeholder {{{sorted(unknown)[0]}}}: "
                "use {number}, {slug}, {severity} or {date}"
            )
        return value

    @field_validator("announcements_channel")
    @classmethod
    def _announcements(cls, value: str | None) -> str | None:
        return _check_channel(value)

    @field_validator("capture_reaction")
    @classmethod
    def _reaction(cls, value: str) -> str:
        value = value.strip().strip(":").lower()
        if not value:
            raise ValueError("must name an emoji, e.g. pushpin")
        if not _EMOJI_NAME.match(value):
            raise ValueError(
                f"{value[:40]!r} is not an emoji's name: write the name Slack gives it (shown "
                "when you hover the reaction), e.g. pushpin or fire, not the emoji itself"
            )
        return value


_EMOJI_NAME = re.compile(r"^[\w+'.-]+(?:::skin-tone-[2-6])?$")
"""An emoji's name as Slack sends it in ``reaction_added``: ``pushpin``, ``+1``, ``flag-us``,
a custom ``ship-it``, a toned ``raised_hand::skin-tone-3``."""


_SLACK_TARGET = re.compile(r"^(?:[UWS][A-Z0-9]{2,}|@[a-z0-9][a-z0-9._-]*)$")


def _check_targets(values: list[str]) -> list[str]:
    for value in values:
        if value.startswith("@") and value[1:] in BROADCASTS:
            raise ValueError(
                f"{value!r} is not a user group: name the people or groups to page; an "
                "escalation always goes to the incident channel (and escalation_channel)"
            )
        if not _SLACK_TARGET.match(value):
            raise ValueError(
                f"{value!r} is not a Slack user id (U...), user group id (S...) or "
                "user group handle (@oncall)"
            )
    return values


_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")


def _check_channel(value: str | None) -> str | None:
    if value is not None and not _CHANNEL_ID.match(value):
        raise ValueError(
            f"{value!r} is not a Slack channel id: use the id (C0123ABCD) from the "
            "channel's details, not its name"
        )
    return value


def _check_cron(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        cron_trigger(value, ZoneInfo("UTC"))
    except UnsupportedCron as exc:
        raise ValueError(f"invalid cron expression {value!r}: {exc}") from None
    except ValueError as exc:
        raise ValueError(
            f"invalid cron expression {value!r} ({exc}): use five fields, "
            "e.g. '0 9 * * 1-5' for 09:00 on weekdays"
        ) from None
    return value


_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class RemindersPolicy(Strict):
    """Nudges and escalations. Cadences per severity live on the severities."""

    escalate_to: list[str] = Field(default_factory=list)
    """First tier when nobody acknowledges: user ids, user group ids or @handles (not
    ``@here``/``@channel``: the escalation always goes to the incident channel)."""
    escalate_again_to: list[str] = Field(default_factory=list)
    """Second tier, ``escalate_again_after`` later."""
    escalation_channel: str | None = None
    """Channel id where escalations are also posted (besides the incident channel)."""
    snooze_choices: list[Duration] = Field(
        description="The Snooze choices offered on a reminder.",
        default_factory=lambda: [
            timedelta(minutes=15),
            timedelta(minutes=30),
            timedelta(minutes=60),
        ],
    )
    step_stale_after: Duration | None = timedelta(minutes=30)
    """Nudge when a runbook step has been in progress (assigned) this long."""
    close_after_resolve: Duration | None = timedelta(hours=24)
    """After resolve, remind to close and finish the postmortem; sent in working hours."""
    working_hours: str = "09:00-17:00"
    """When non-urgent reminders (close after resolve, overdue action items) may be sent, in
    the policy timezone."""
    working_days: list[str] = Field(default_factory=lambda: list(_DAYS[:5]))
    """The days those reminders may be sent (``mon`` ... ``sun``)."""
    action_items_cron: str | None = "0 10 * * 1-5"
    """When overdue action items are chased (in the policy timezone). Five crontab fields, read
    as cron reads them: Sunday is 0 or 7, and with both a day of the month and a day of the
    week, either one matching is enough. `#` (nth weekday), `L`, `W` and a date that never
    comes (`0 9 30 2 *`) are refused. A run missed while no replica ran goes out once, at
    the next working time, or with that day's own run when one comes later that day."""
    digest_cron: str | None = "0 9 * * 1-5"
    """When the digest of open incidents is posted (in the policy timezone); unset: never. Read
    as `action_items_cron` is. A digest missed while no replica ran is posted once, at once,
    or with that day's own digest when one comes later that day."""
    digest_channel: str | None = None
    """Where the digest goes; default: the announcements channel."""

    _targets = field_validator("escalate_to", "escalate_again_to")(_check_targets)
    _channels = field_validator("escalation_channel", "digest_channel")(_check_channel)
    _crons = field_validator("action_items_cron", "digest_cron")(_check_cron)

    @field_validator("working_hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        match = _HOURS.match(value.replace(" ", ""))
        if not match or match.group(1, 2) >= match.group(3, 4):
            raise ValueError(f"{value!r} is not a range of hours like 09:00-17:00")
        return value.replace(" ", "")

    @field_validator("working_days")
    @classmethod
    def _days(cls, value: list[str]) -> list[str]:
        days = [d.strip().lower()[:3] for d in value]
        bad = [d for d in days if d not in _DAYS]
        if bad or not days:
            raise ValueError(f"use day names like mon, tue, ... sun (got {value!r})")
        return days


class RunbooksPolicy(Strict):
    """Where runbooks come from and how they are shown."""

    paths: list[Path] = Field(default_factory=lambda: [Path("runbooks")])
    """Directories of markdown runbooks, relative to the policy file."""
    steps_per_page: int = Field(default=10, ge=1, le=20)
    """Steps shown per page of a runbook message in Slack."""
    suggestions: int = Field(default=3, ge=0, le=10)
    """How many matching runbooks to suggest when an incident is declared."""


class PostmortemPolicy(Strict):
    """Postmortem drafts."""

    template_dir: Path | None = None
    """A directory with ``postmortem.md.j2`` to use instead of the built-in template."""
    output_dir: Path | None = Path("postmortems")
    """Where drafts are also written as files; unset: not written to disk."""
    on_close: bool = True
    """Generate the draft (and post it to the channel) when the incident is closed."""


_PRINCIPAL = re.compile(
    r"^(everyone|admins|reporter|any-role|role:[A-Za-z0-9_-]+|group:(S[A-Z0-9]+|@[a-z0-9._-]+)"
    r"|user:[UW][A-Z0-9]+)$"
)


def _check_principals(values: list[str]) -> list[str]:
    if not values:
        raise ValueError('list at least one principal, e.g. ["everyone"]')
    for value in values:
        if not _PRINCIPAL.match(value):
            raise ValueError(
                f"{value!r} is not a principal: use everyone, admins, reporter, any-role, "
                "role:<key>, group:<S-id or @handle>, user:<U-id>"
            )
    return values


ACCESS_ACTIONS = (
    "declare",
    "change_severity",
    "close",
    "reopen",
    "assign_roles",
    "silence_reminders",
)
"""The keys of ``[access]`` that list who may do something."""


class AccessPolicy(Strict):
    """Who may do what. A person may act when they match any listed principal."""

    declare: list[str] = Field(default_factory=lambda: ["everyone"])
    """Who may declare incidents."""
    change_severity: list[str] = Field(default_factory=lambda: ["everyone"])
    """Who may change an incident's severity."""
    close: list[str] = Field(default_factory=lambda: ["everyone"])
    """Who may close incidents."""
    reopen: list[str] = Field(default_factory=lambda: ["everyone"])
    """Who may reopen resolved or closed incidents."""
    silence_reminders: list[str] = Field(default_factory=lambda: ["everyone"])
    """Who may snooze or stop an incident's reminders (the nudges' Snooze and Stop buttons),
    e.g. ``["role:commander"]`` so only the commander silences what chases them."""
    assign_roles: list[str] = Field(default_factory=lambda: ["everyone"])
    """Who may take or give a role that someone else holds (the holder may always hand their own
    role over). A role that grants an action here (``close = ["role:commander"]``) also needs
    that action, so taking a role never grants a right the person did not have."""
    take_vacant_roles: bool = True
    """A role nobody holds is free to take or give (so the first responder can become the
    commander). False: vacant roles that grant an action are governed like held ones."""
    admins: list[str] = Field(default_factory=list)
    """Firebreak admins (user ids or group ids), besides Slack workspace admins and owners."""

    _principals = field_validator(*ACCESS_ACTIONS)(_check_principals)
    _admins = field_validator("admins")(_check_targets)


class RetentionPolicy(Strict):
    """How long closed incidents stay in the database and when their evidence bundle is
    exported (``firebreak audit retention``; docs/audit.md). Unset: nothing is exported or
    removed. PCI DSS 10.5.1 (12 months, 3 at hand): export_after = "1d", remove_after = "90d",
    and keep the archive directory for 12 months."""

    export_after: RetentionDuration | None = None
    """Write the bundle of an incident closed this long ago to ``archive_dir``."""
    remove_after: RetentionDuration | None = None
    """Remove an incident closed this long ago (after exporting it), leaving a tombstone."""
    archive_dir: Path = Path("evidence")
    """Where bundles are written, relative to the policy file. It must exist (it is not created:
    a typo of the archive's mount would be); ``firebreak policy check`` and ``audit retention``
    refuse, exit code 2, one that does not."""


class Policy(Strict):
    """How the team runs incidents. Loaded from firebreak.toml; every key has a default."""

    timezone: str = "UTC"
    """The team's IANA timezone (``Europe/Berlin``): working hours, cron schedules, due dates."""
    default_severity: str = "SEV3"
    """The severity of an incident declared without one."""
    severities: list[SeverityPolicy] = Field(default_factory=default_severities)
    """Severities, most severe first."""
    statuses: list[StatusPolicy] = Field(default_factory=default_statuses)
    """Statuses, in the order they are offered; the first is where incidents start."""
    roles: list[RolePolicy] = Field(default_factory=default_roles)
    """Incident roles; one with key ``commander`` is required."""
    slack: SlackPolicy = Field(default_factory=SlackPolicy)
    reminders: RemindersPolicy = Field(default_factory=RemindersPolicy)
    runbooks: RunbooksPolicy = Field(default_factory=RunbooksPolicy)
    postmortem: PostmortemPolicy = Field(default_factory=PostmortemPolicy)
    access: AccessPolicy = Field(default_factory=AccessPolicy)
    alerts: AlertsPolicy = Field(default_factory=AlertsPolicy)
    clocks: ClockList = Field(default_factory=list)
    """Regulatory clocks: an entry is either a shipped preset (``preset = "dora"`` or
    ``"gdpr"``, no other key) or a clock of your own with the keys below (``key`` and
    ``starts_on`` required). See docs/audit.md."""
    retention: RetentionPolicy = Field(default_factory=RetentionPolicy)

    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)
    _source: str = PrivateAttr(default="policy")
    _text: str | None = PrivateAttr(default=None)

    def resolve_path(self, path: Path) -> Path:
        """A path from the policy, relative to the policy file's directory."""
        return path if path.is_absolute() else self._base_dir / path

    def where(self, *loc: str | int) -> str:
        """``file:line`` of the key at ``loc`` (``file`` when it is not written there), for a
        problem found after loading (a directory that does not exist)."""
        line = self.line_of(*loc)
        return f"{self._source}:{line}" if line else self._source

    def line_of(self, *loc: str | int) -> int | None:
        """The line of the policy file that writes the key at ``loc``, if it was read from one."""
        return toml_line(self._text, loc) if self._text is not None else None

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown timezone {value!r}: use an IANA name such as Europe/Berlin or UTC"
            ) from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        for name, items in (
            ("severities", self.severities),
            ("statuses", self.statuses),
            ("roles", self.roles),
        ):
            if not items:
                raise ValueError(f"{name}: at least one is required")
            seen: set[str] = set()
            written: list[str] = [item.key for item in items]
            for index, key in enumerate(written):
                if key.casefold() in seen:
                    raise ValueError(f"{name}.{index}.key: duplicate key {key!r}")
                seen.add(key.casefold())
            check_names(name, items)
        if self.find_severity(self.default_severity) is None:
            raise ValueError(
                f"default_severity: {self.default_severity!r} is not one of the severities "
                f"({', '.join(s.key for s in self.severities)})"
            )
        keys = {s.key for s in self.statuses}
        for index, status in enumerate(self.statuses):
            for target in status.next:
                if target not in keys:
                    raise ValueError(
                        f"statuses.{index}.next: {status.key!r} lists unknown next status "
                        f"{target!r}"
                    )
        if self.statuses[0].phase != "active":
            raise ValueError("statuses: the first status (where incidents start) must be active")
        for phase in ("resolved", "closed"):
            if not any(s.phase == phase for s in self.statuses):
                raise ValueError(f"statuses: one status needs phase = {phase!r}")
        check_status_graph(self.statuses)
        if self.alerts.on_all_resolved == "mitigate" and not any(
            s.milestone == "mitigated" for s in self.statuses
        ):
            raise ValueError(
                "alerts.on_all_resolved: 'mitigate' needs a status with milestone = "
                '"mitigated" to move incidents to; add one, or use "ask"'
            )
        role_keys = {r.key for r in self.roles}
        for action in ACCESS_ACTIONS:
            for principal in getattr(self.access, action):
                if principal.startswith("role:") and principal[5:] not in role_keys:
                    raise ValueError(
                        f"access.{action}: {principal!r} names no role; roles are "
                        + ", ".join(sorted(role_keys))
                    )
        if not any(r.key == COMMANDER for r in self.roles):
            raise ValueError(
                "roles: a role with key 'commander' (the Incident Commander) is required"
            )
        return self

    # Lookups are forgiving about how people type: "sev1", "SEV1", "1"; "ic", "Comms Lead".

    def find_severity(self, text: str) -> SeverityPolicy | None:
        wanted = text.strip().casefold()
        for sev in self.severities:
            if wanted in (sev.key.casefold(), sev.name.casefold()):
                return sev
        if wanted.isascii() and wanted.isdigit():
            for sev in self.severities:
                digits = re.sub(r"\D", "", sev.key)
                if digits and int(digits) == int(wanted):
                    return sev
        short = short_level(text)  # "SEV-1", "sev 1", "SEV1 - Critical" (as the summary says)
        return self.find_severity(short) if short is not None else None

    def severity(self, key: str) -> SeverityPolicy:
        found = self.find_severity(key)
        if found is None:
            raise KeyError(key)
        return found

    def find_status(self, text: str) -> StatusPolicy | None:
        wanted = text.strip().casefold()
        for status in self.statuses:
            if wanted in (status.key.casefold(), status.name.casefold()):
                return status
        return None

    def phase_of(self, status: str) -> str:
        """The phase of ``status`` (``active``, ``resolved``, ``closed``); a status the policy no
        longer has counts as active."""
        found = self.find_status(status)
        return found.phase if found is not None else "active"

    def impact_mitigated(self, status: str) -> bool:
        """Whether an incident at ``status`` stands at the status that says its impact is
        mitigated, or past the active phase (resolved, closed)."""
        found = self.find_status(status)
        return found is not None and (found.milestone == "mitigated" or found.phase != "active")

    def status(self, key: str) -> StatusPolicy:
        found = self.find_status(key)
        if found is None:
            raise KeyError(key)
        return found

    @property
    def initial_status(self) -> StatusPolicy:
        return self.statuses[0]

    def find_role(self, text: str) -> RolePolicy | None:
        wanted = text.strip().casefold()
        for role in self.roles:
            names = {role.key.casefold(), role.name.casefold()}
            if role.short:
                names.add(role.short.casefold())
            if wanted in names:
                return role
        # "comms" -> "Comms Lead": a unique prefix of three or more letters is enough
        candidates = [r for r in self.roles if r.name.casefold().startswith(wanted)]
        return candidates[0] if len(wanted) >= 3 and len(candidates) == 1 else None

    def role(self, key: str) -> RolePolicy:
        found = self.find_role(key)
        if found is None:
            raise KeyError(key)
        return found

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)
