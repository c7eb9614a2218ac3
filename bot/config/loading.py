"""Reading the policy file: TOML to a :class:`Policy`, and every problem as one line that
names the file, the line and the key (``ConfigError``)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bot.config.policy import Policy
from bot.config.toml_lines import toml_line
from bot.errors import ConfigError, PlacedValueError

_NAMED_KEY = re.compile(r"([A-Za-z0-9_.-]+): ")


def _format_validation_error(source: str, error: ValidationError, text: str | None) -> str:
    """``file:line: key.path: message`` (the line where the key is written, when the file's
    text is at hand and names it)."""
    first = error.errors()[0]
    loc = ".".join(str(part) for part in first["loc"])
    message = first["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    if first["type"] == "extra_forbidden":
        message = "unknown key (check the spelling against docs/configuration.md)"
    # A check of a whole table names the key in its message ("severity_map.P1: ...").
    path: list[str | int] = list(first["loc"])
    raised = first.get("ctx", {}).get("error")
    if isinstance(raised, PlacedValueError):  # a check of a list says which entry
        path += raised.at
    rest = message
    while named := _NAMED_KEY.match(rest):
        path += named.group(1).split(".")
        rest = rest[named.end() :]
    line = toml_line(text, path) if text is not None else None
    where = f"{source}:{line}" if line else source
    return f"{where}: {loc}: {message}" if loc else f"{where}: {message}"


def load_policy(path: Path | None) -> Policy:
    """Load the team's policy file; ``None`` means the built-in defaults."""
    if path is None:
        return Policy()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the policy file: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")  # editors on Windows add a BOM
        data = tomllib.loads(text)
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid TOML: arrays or tables nested too deeply") from None
    except tomllib.TOMLDecodeError as exc:
        where = re.search(r"\s*\(at line (\d+), column (\d+)\)", str(exc))
        if where is None:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
        reason = str(exc)[: where.start()] + str(exc)[where.end() :]
        raise ConfigError(
            f"{path}:{where.group(1)}: invalid TOML: {reason} (column {where.group(2)})"
        ) from None
    policy = policy_from_dict(data, source=str(path), text=text)
    policy._base_dir = path.resolve().parent
    return policy


def policy_from_dict(
    data: dict[str, Any], *, source: str = "policy", text: str | None = None
) -> Policy:
    """``data`` as a policy; ``text``, the TOML it was read from, lets errors name the line."""
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(source, exc, text)) from None
    policy._source, policy._text = source, text  # for Policy.where
    return policy
