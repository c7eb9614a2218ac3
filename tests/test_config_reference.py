"""docs/configuration.md is generated from the configuration models and kept up to date;
.env.example lists every environment variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from bot import config_reference as ref
from bot.config import Policy, Settings

ROOT = Path(__file__).resolve().parents[1]


def test_the_configuration_reference_is_up_to_date() -> None:
    committed = ref.REFERENCE.read_text(encoding="utf-8") if ref.REFERENCE.is_file() else ""
    assert committed == ref.reference(), (
        "docs/configuration.md is out of date with bot/config.py: "
        f"run `{ref.REGENERATE}` and commit the result"
    )


def _keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        dotted = prefix + (field.alias or name)
        bare, _ = ref._unwrap(field.annotation)
        item = ref._list_item_model(field.annotation)
        if ref._is_model(bare):
            keys += _keys(bare, dotted + ".")
        elif item is not None:
            keys += _keys(item, dotted + ".")
        else:
            keys.append(dotted)
    return keys


def test_every_variable_and_every_key_is_in_the_reference() -> None:
    text = ref.reference()
    variables = ref.all_variables()
    assert "DATABASE_URL" in variables and "FIREBREAK_CONSOLE_SESSION_SECRET" in variables
    assert "FIREBREAK_ALERTS_TOKEN" in variables and "FIREBREAK_AUDIT_SIGNING_KEY" in variables
    for name in variables:
        assert f"| `{name}` |" in text, name
    assert len(variables) == len(set(variables))
    keys = _keys(Policy)
    assert "access.assign_roles" in keys and "slack.allow_broadcast_mentions" in keys
    for key in keys:
        section, _, name = key.rpartition(".")
        assert f"| `{name}` |" in text, key
        if section:
            assert f"[{section}]`" in text or f"[[{section}]]`" in text, section


def test_defaults_are_written_as_in_firebreak_toml() -> None:
    text = ref.reference()
    assert "| `update_every` | duration, optional | unset |" in text
    assert '| `snooze_choices` | list of duration | `["15m", "30m", "1h"]` |' in text
    assert "| `take_vacant_roles` | boolean | `true` |" in text
    assert "| `PORT` | integer (≥ 1, ≤ 65535) | `3000` |" in text
    assert "Default: 4 entries (`SEV1`, `SEV2`, `SEV3`, `SEV4`)" in text


def test_check_fails_on_a_stale_file_and_write_fixes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "docs" / "configuration.md"
    assert ref.main(["--check", "--output", str(target)]) == 1
    assert "out of date: run `python -m bot.config_reference`" in capsys.readouterr().err
    assert ref.main(["--output", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == ref.reference()
    assert ref.main(["--check", "--output", str(target)]) == 0


def test_env_example_lists_every_environment_variable() -> None:
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    named = {
        line.lstrip("# ").split("=", 1)[0].strip()
        for line in text.splitlines()
        if "=" in line and line.lstrip("# ").split("=", 1)[0].strip().isupper()
    }
    expected = set(ref.all_variables())
    assert {field.alias for field in Settings.model_fields.values()} <= expected
    assert expected <= named, f".env.example misses {sorted(expected - named)}"


def test_every_variable_and_every_key_has_a_meaning() -> None:
    empty = [line for line in ref.reference().splitlines() if line.replace(" ", "").endswith("||")]
    assert empty == []


def test_unknown_firebreak_variables_are_named_with_the_closest_setting() -> None:
    environ = [
        "FIREBREAK_LOG_LEVL",
        "FIREBREAK_LOG_LEVEL",
        "FIREBREAK_NOPE",
        "FIREBREAK_TEST_DATABASE_URL",  # this repository's test scripts
        "FIREBREAK_SERVICE_HOST",  # Kubernetes, for a Service named firebreak
        "FIREBREAK_PORT_80_TCP_ADDR",
        "PATH",
    ]
    assert ref.unknown_variables(environ) == [
        ("FIREBREAK_LOG_LEVL", "FIREBREAK_LOG_LEVEL"),
        ("FIREBREAK_NOPE", None),
    ]
