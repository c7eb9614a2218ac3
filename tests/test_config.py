from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.alerts.auth import AlertSettings
from bot.config import (
    Policy,
    load_policy,
    load_settings,
    parse_duration,
    policy_from_dict,
)
from bot.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("15m", timedelta(minutes=15)),
        ("1h30m", timedelta(minutes=90)),
        ("90s", timedelta(seconds=90)),
        ("2d", timedelta(days=2)),
        ("1h 5m", timedelta(minutes=65)),
    ],
)
def test_durations_read_the_way_teams_write_them(text: object, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "15 minutes", "-5m", "0m", "1.5h", True, 15, 2.5])
def test_bad_durations_are_refused(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_the_example_policy_file_is_the_default_policy() -> None:
    assert load_policy(ROOT / "firebreak.toml").model_dump() == Policy().model_dump()


def test_an_empty_policy_file_is_the_default_policy(tmp_path: Path) -> None:
    path = tmp_path / "firebreak.toml"
    path.write_text("")
    assert load_policy(path).model_dump() == Policy().model_dump()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {
                "severities": [{"key": "P1", "description": "x", "update_every": "soon"}],
                "default_severity": "P1",
            },
            "severities.0.update_every: invalid duration 'soon'",
        ),
        (
            {
                "severities": [{"key": "P1", "description": "x", "update_every": "-5m"}],
                "default_severity": "P1",
            },
            "severities.0.update_every",
        ),
        ({"default_severity": "SEV9"}, "default_severity: 'SEV9' is not one of the severities"),
        ({"slack": {"chanel_name": "x"}}, "slack.chanel_name: unknown key"),
        (
            {"slack": {"channel_name": "incident-{slug}"}},
            "slack.channel_name: must contain {number}",
        ),
        ({"slack": {"channel_name": "inc-{number}-{team}"}}, "unknown placeholder {team}"),
        ({"timezone": "Mars/Olympus"}, "timezone: unknown timezone 'Mars/Olympus'"),
        ({"roles": [{"key": "lead", "name": "Lead"}]}, "'commander'"),
        ({"statuses": [{"key": "open", "next": ["gone"]}]}, "unknown next status 'gone'"),
        (
            {
                "statuses": [
                    {"key": "open", "next": []},
                    {"key": "resolved", "phase": "resolved", "next": ["closed"]},
                    {"key": "closed", "phase": "closed"},
                ]
            },
            "statuses: no resolved status can be reached from 'open', so an incident there "
            "could never be resolved: extend its next",
        ),
        (
            {
                "statuses": [
                    {"key": "open", "next": ["resolved"]},
                    {"key": "stuck", "next": ["open", "resolved"]},
                    {"key": "resolved", "phase": "resolved", "next": ["closed"]},
                    {"key": "closed", "phase": "closed"},
                ]
            },
            "statuses: 'stuck' cannot be reached from 'open', where incidents start: list it "
            "in the next of a status that can",
        ),
        (
            {
                "statuses": [
                    {"key": "open", "next": ["resolved"]},
                    {"key": "resolved", "phase": "resolved"},
                    {"key": "closed", "phase": "closed"},
                ]
            },
            "statuses: no closed status can be reached from 'open'",
        ),
        ({"severities": [{"key": "bad key!", "description": "x"}]}, "severities.0.key"),
        (
            {"reminders": {"digest_cron": "every morning"}},
            "reminders.digest_cron: invalid cron expression 'every morning'",
        ),
        (
            {"reminders": {"action_items_cron": "0 9 30 2 *"}},
            "reminders.action_items_cron: invalid cron expression '0 9 30 2 *': it never fires: "
            "no month has that day",
        ),
        (
            {"reminders": {"digest_cron": "0 9 * * mon#2"}},
            "reminders.digest_cron: invalid cron expression '0 9 * * mon#2': '#' (the nth "
            "weekday of the month) is not supported",
        ),
        ({"reminders": {"escalate_to": ["#sre"]}}, "reminders.escalate_to: '#sre' is not a Slack"),
        ({"reminders": {"working_hours": "17:00-09:00"}}, "reminders.working_hours"),
        ({"reminders": {"escalation_channel": "#incidents"}}, "not a Slack channel id"),
        ({"access": {"close": ["role:commander", "the boss"]}}, "access.close: 'the boss'"),
        ({"runbooks": {"steps_per_page": 0}}, "runbooks.steps_per_page"),
        (
            {"access": {"close": ["role:comander"]}},
            "access.close: 'role:comander' names no role; roles are commander, comms, ops, scribe",
        ),
    ],
)
def test_a_bad_policy_names_the_key_and_the_problem(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        policy_from_dict(data, source="firebreak.toml")
    text = str(info.value)
    assert text.startswith("firebreak.toml")
    assert message in text
    assert "\n" not in text


def test_invalid_toml_reports_the_line(tmp_path: Path) -> None:
    path = tmp_path / "firebreak.toml"
    path.write_text('timezone = "UTC"\n[slack\n')
    with pytest.raises(ConfigError, match=r"firebreak.toml:2: invalid TOML: "):
        load_policy(path)


def test_lookups_forgive_how_people_type(policy: Policy) -> None:
    assert policy.severity("sev2").key == "SEV2"
    assert policy.severity("1").key == "SEV1"
    assert policy.severity("critical").key == "SEV1"
    assert policy.role("IC").key == "commander"
    assert policy.role("comms lead").key == "comms"
    assert policy.role("ops").key == "ops"
    assert policy.find_role("o") is None


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db:5432/firebreak")
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:9000/api")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-secret")
    settings = load_settings()
    assert settings.database_url == "postgresql+psycopg://u:p@db:5432/firebreak"
    assert settings.slack_api_url == "http://127.0.0.1:9000/api/"
    assert "xoxb-secret" not in repr(settings)


def test_whitespace_around_a_secret_from_a_kubernetes_secret_is_not_part_of_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``echo secret | base64`` keeps the newline: the signing secret refused every request
    and the alert token every alert, while the health checks stayed green."""
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "8f14e45fceea167a\n")
    monkeypatch.setenv("SLACK_BOT_TOKEN", " xoxb-secret\n")
    monkeypatch.setenv("FIREBREAK_HOST", "0.0.0.0\n")
    monkeypatch.setenv("FIREBREAK_LOG_LEVEL", "info\n")
    monkeypatch.setenv("SLACK_APP_TOKEN", "  \n")  # only whitespace: not set
    monkeypatch.setenv("FIREBREAK_ALERTS_TOKEN", "tok-123\n")
    settings = load_settings()
    assert settings.slack_signing_secret is not None
    assert settings.slack_signing_secret.get_secret_value() == "8f14e45fceea167a"
    assert settings.slack_bot_token is not None
    assert settings.slack_bot_token.get_secret_value() == "xoxb-secret"
    assert (settings.host, settings.log_level, settings.slack_app_token) == (
        "0.0.0.0",
        "INFO",
        None,
    )
    token = AlertSettings().token
    assert token is not None and token.get_secret_value() == "tok-123"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PORT", "eighty", "environment: PORT:"),
        ("DATABASE_URL", "mysql://x/y", "environment: DATABASE_URL: unsupported database"),
        ("SLACK_API_URL", "slack.com/api", "environment: SLACK_API_URL: must be an http(s) URL"),
        (
            "SLACK_BOT_TOKEN",
            "xapp-1-A1-2-abc",
            "environment: SLACK_BOT_TOKEN: must be the app's Bot",
        ),
        ("SLACK_APP_TOKEN", "xoxb-123", "environment: SLACK_APP_TOKEN: must be an app-level"),
    ],
)
def test_bad_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_settings()


def test_a_password_with_a_raw_at_sign_is_refused_without_showing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`postgresql://app:Tr0ub4dor@Secr3t@db/firebreak`: the password's second half would be
    taken for the host and printed in every "cannot reach" line (container logs). It is
    refused at start-up, saying how to write it, and no part of it is shown."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:Tr0ub4dor@Secr3t@db:5432/firebreak")
    with pytest.raises(ConfigError, match="percent-encode it \\(@ as %40") as info:
        load_settings()
    assert "Secr3t" not in str(info.value) and "Tr0ub4dor" not in str(info.value)


@pytest.mark.parametrize("driver", ["psycopg2", "asyncpg", "pg8000"])
def test_a_url_naming_another_postgresql_driver_uses_the_one_firebreak_ships(
    monkeypatch: pytest.MonkeyPatch, driver: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql+{driver}://app:p%40ss@db:5432/firebreak")
    assert load_settings().database_url == "postgresql+psycopg://app:p%40ss@db:5432/firebreak"


def test_an_env_file_saved_as_utf16_is_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Some Windows editors save `.env` as UTF-16: one line with exit 2, not a traceback."""
    (tmp_path / ".env").write_bytes("DATABASE_URL=sqlite:///x.db\n".encode("utf-16"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        ConfigError, match=r"^\.env:1: not UTF-8 text \(byte 0xff\): save it as UTF-8$"
    ):
        load_settings()


def test_an_env_file_line_that_is_no_assignment_is_refused_at_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, python-dotenv printed a warning outside the logs, left the variable unset and
    Firebreak started without it (its default database, say, instead of the one written)."""
    (tmp_path / ".env").write_text(
        "# Firebreak\nexport FIREBREAK_LOG_LEVEL=info\nPORT=8000 # the Service's\n"
        "DATABASE_URL postgresql://fb@db/fb\n"
    )
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value) == (
        ".env:4: cannot read this line: write NAME=value (a value with spaces or # in quotes)"
    )
    (tmp_path / ".env").write_text('export FIREBREAK_LOG_LEVEL=info\nPORT="8000" # comment\n')
    assert load_settings().port == 8000


def test_a_policy_file_saved_with_a_bom_reads_fine(tmp_path: Path) -> None:
    path = tmp_path / "firebreak.toml"
    path.write_bytes("\ufefftimezone = 'Europe/Berlin'\n".encode())
    assert load_policy(path).timezone == "Europe/Berlin"


@pytest.mark.parametrize("text", ["1000000000d", "3000000d", "366d", "9" * 5000 + "s"])
def test_durations_longer_than_a_year_are_refused_naming_the_key(text: str) -> None:
    data = {"severities": [{"key": "P1", "update_every": text}], "default_severity": "P1"}
    with pytest.raises(ConfigError) as info:
        policy_from_dict(data, source="firebreak.toml")
    message = str(info.value)
    assert message.startswith("firebreak.toml: severities.0.update_every: duration ")
    assert message.endswith(" is too long: at most 365d")
    assert len(message) < 130


def test_retention_periods_may_run_to_years() -> None:
    policy = policy_from_dict({"retention": {"export_after": "1d", "remove_after": "3650d"}})
    assert policy.retention.remove_after == timedelta(days=3650)
    with pytest.raises(ConfigError, match=r"retention.remove_after: .* at most 36500d"):
        policy_from_dict({"retention": {"remove_after": "3000000d"}})


def test_a_number_without_a_unit_is_refused_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "firebreak.toml"
    path.write_text('default_severity = "P1"\n[[severities]]\nkey = "P1"\nupdate_every = 15\n')
    with pytest.raises(ConfigError) as info:
        load_policy(path)
    assert str(info.value) == (
        f"{path}:4: severities.0.update_every: invalid duration 15: a number needs a unit, "
        'e.g. "15m" for minutes or "15s" for seconds'
    )


def test_every_severity_key_but_key_is_optional() -> None:
    policy = policy_from_dict({"severities": [{"key": "P1"}], "default_severity": "P1"})
    assert policy.severity("P1").description == ""
    assert policy.severity("P1").update_every is None


def test_an_unknown_key_points_to_the_configuration_reference() -> None:
    with pytest.raises(ConfigError) as info:
        policy_from_dict({"slack": {"chanel_name": "x"}}, source="firebreak.toml")
    assert str(info.value) == (
        "firebreak.toml: slack.chanel_name: unknown key "
        "(check the spelling against docs/configuration.md)"
    )


def test_empty_variables_mean_not_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``NAME=`` left in a manifest or a .env is the default, not an empty host or secret."""
    monkeypatch.chdir(tmp_path)
    for name in ("FIREBREAK_HOST", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "PORT"):
        monkeypatch.setenv(name, "")
    (tmp_path / ".env").write_text("FIREBREAK_AUDIT_SIGNING_KEY=\nFIREBREAK_LOG_LEVEL=\n")
    settings = load_settings()
    assert settings.host == "127.0.0.1"
    assert settings.port == 3000
    assert settings.slack_app_token is None
    assert settings.slack_signing_secret is None
    assert settings.audit_signing_key is None
    assert settings.log_level == "INFO"


def test_an_invalid_value_is_reported_at_the_line_that_writes_it(tmp_path: Path) -> None:
    """``file:line: key: message``, the line being the key's own, or the header of the table or
    array entry the key is missing from; comments and multi-line strings do not mislead it."""
    path = tmp_path / "firebreak.toml"
    path.write_text(
        "# Team policy\n"
        'default_severity = "SEV2"\n'
        "[postmortem]\n"
        'template = """\n'
        "[[severities]]\n"
        'key = "not a key"\n'
        '"""\n'
        "[[severities]]\n"
        'key = "SEV1"\n'
        'name = "Critical"\n'
        "\n"
        "[[severities]]  # the second\n"
        'key = "SEV2"\n'
        'name = "Major"\n'
        'update_every = "often"\n'
    )
    with pytest.raises(ConfigError) as info:
        load_policy(path)
    assert str(info.value).startswith(f"{path}:15: severities.1.update_every: invalid duration")

    path.write_text('[slack]\nchannel_name = "inc"\n\n[slack.extra]\nx = 1\n')
    with pytest.raises(ConfigError) as info:
        load_policy(path)
    assert str(info.value).startswith(f"{path}:2: slack.channel_name: ")


def test_nesting_too_deep_for_the_toml_reader_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "firebreak.toml"
    path.write_text("a = " + "[" * 3000 + "]" * 3000 + "\n")
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_policy(path)


def test_the_announcements_channel_must_be_an_id() -> None:
    with pytest.raises(ConfigError, match="'#incidents' is not a Slack channel id"):
        policy_from_dict({"slack": {"announcements_channel": "#incidents"}})


@pytest.mark.parametrize(
    ("severity", "message"),
    [
        ({"update_every": "30s"}, "update_every: must be at least 1m"),
        ({"ack_within": "5s"}, "ack_within: must be at least 1m"),
        ({"escalate_again_after": "59s"}, "escalate_again_after: must be at least 1m"),
    ],
)
def test_reminder_timers_shorter_than_a_minute_are_refused(
    severity: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        policy_from_dict({"severities": [{"key": "P1", **severity}], "default_severity": "P1"})


@pytest.mark.parametrize("target", ["@here", "@channel", "@everyone"])
def test_broadcast_words_are_not_escalation_targets(target: str) -> None:
    with pytest.raises(ConfigError, match=f"'{target}' is not a user group"):
        policy_from_dict({"reminders": {"escalate_to": [target]}})


def test_a_capture_reaction_slack_can_never_send_is_refused_at_its_line(tmp_path: Path) -> None:
    """Slack names a reaction (``fire``) in ``reaction_added``, never the emoji itself: before,
    ``capture_reaction = "🔥"`` passed ``policy check`` and no reaction ever captured."""
    path = tmp_path / "firebreak.toml"
    path.write_text('[slack]\ncapture_reaction = "🔥"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_policy(path)
    assert str(info.value) == (
        f"{path}:2: slack.capture_reaction: '🔥' is not an emoji's name: write the name Slack "
        "gives it (shown when you hover the reaction), e.g. pushpin or fire, not the emoji itself"
    )
    for written, read in (
        (":Fire:", "fire"),
        ("+1", "+1"),
        ("raised_hand::skin-tone-3", "raised_hand::skin-tone-3"),
    ):
        slack = policy_from_dict({"slack": {"capture_reaction": written}}).slack
        assert slack.capture_reaction == read


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (  # a sub-table of an array entry: `x` of the latest [[severities]]
            '[[severities]]\nkey = "SEV1"\n[severities.x]\ny = 1\n',
            "3: severities.0.x: unknown key",
        ),
        (
            'default_severity = "SEV1"\n[[severities]]\nkey = "SEV1"\n\n'
            '[[severities]]\nkey = "sev1"\n',
            "6: severities.1.key: duplicate key 'sev1'",
        ),
        (
            '[[statuses]]\nkey = "open"\nphase = "active"\nnext = ["nope"]\n'
            '[[statuses]]\nkey = "resolved"\nphase = "resolved"\n'
            '[[statuses]]\nkey = "closed"\nphase = "closed"\n',
            "4: statuses.0.next: 'open' lists unknown next status 'nope'",
        ),
        (  # a check of a whole array of tables: its first entry's header
            '# roles\n[[roles]]\nkey = "scribe"\nname = "Scribe"\n',
            "2: roles: a role with key 'commander' (the Incident Commander) is required",
        ),
        (  # `/incident role Commander @x` could mean either
            '[[roles]]\nkey = "commander"\nname = "Commander"\n\n'
            '[[roles]]\nkey = "deputy"\nname = "commander"\nshort = "DC"\n',
            "5: roles.1: 'commander' already names roles 'commander': people type keys and "
            "names, so each must name one",
        ),
        (  # the second tier counts from the first, which never comes without ack_within
            'default_severity = "P1"\n[[severities]]\nkey = "P1"\nupdate_every = "15m"\n'
            'escalate_again_after = "10m"\n',
            "2: severities.0: escalate_again_after needs ack_within: the second escalation "
            "counts from the first, which ack_within times",
        ),
        (  # nowhere to move incidents to when their alerts resolve
            '[[statuses]]\nkey = "open"\nnext = ["resolved"]\n\n'
            '[[statuses]]\nkey = "resolved"\nphase = "resolved"\nnext = ["closed"]\n\n'
            '[[statuses]]\nkey = "closed"\nphase = "closed"\n\n'
            '[alerts]\non_all_resolved = "mitigate"\n',
            "15: alerts.on_all_resolved: 'mitigate' needs a status with milestone = "
            '"mitigated" to move incidents to; add one, or use "ask"',
        ),
        (
            '[alerts.severity_map]\nP1 = "SEV1"\np1 = "SEV2"\n',
            "1: alerts.severity_map: 'P1' and 'p1' are the same source severity (case is "
            "ignored): keep one",
        ),
    ],
)
def test_errors_about_arrays_of_tables_name_their_line(
    tmp_path: Path, toml: str, message: str
) -> None:
    path = tmp_path / "firebreak.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_policy(path)
    assert str(info.value).startswith(f"{path}:{message}")
