"""The configuration reference, generated from the models that read the configuration.

``docs/configuration.md`` lists every environment variable (``Settings``) and every
``firebreak.toml`` key (``Policy`` and the models it nests) with its type, default and meaning.
It is written from the models, so it cannot drift from what Firebreak accepts; a test fails when
the committed file is out of date.

    python -m bot.config_reference           # rewrite docs/configuration.md
    python -m bot.config_reference --check   # exit 1 (and say so) when it is out of date
    python -m bot.config_reference --stdout  # print it

A key's meaning is its ``Field(description=...)``, or else the docstring written under it.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import inspect
import ipaddress
import itertools
import sys
import textwrap
import types
from collections.abc import Iterable, Iterator
from datetime import timedelta
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

from bot.alerts.auth import AlertSettings
from bot.config import Policy, Settings, format_duration
from bot.console.settings import ConsoleSettings

SETTINGS: tuple[tuple[str, type[BaseSettings]], ...] = (
    ("Firebreak", Settings),
    ("Alert receivers (`POST /alerts/<source>`)", AlertSettings),
    ("Web console (`/console`)", ConsoleSettings),
)
"""Every settings model read from the environment, with the heading it is listed under."""
OTHER_VARIABLES: tuple[tuple[str, str, str, str], ...] = ()
"""Variables read outside a settings model: (variable, type, default, meaning). None now:
FIREBREAK_AUDIT_SIGNING_KEY moved into ``Settings`` so that a ``.env`` file sets it too."""

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "configuration.md"
REGENERATE = "python -m bot.config_reference"

_INTRO = """\
# Configuration reference

<!-- Generated from bot/config/ by `{regenerate}`: do not edit by hand. -->

Firebreak reads two things:

* **Environment variables** (and an optional `.env` file in the working directory): what
  differs per deployment, secrets included. See [`.env.example`](../.env.example).
* **`firebreak.toml`**: how the team runs incidents. Firebreak uses the file named by
  `FIREBREAK_POLICY_FILE`, else `./firebreak.toml` if it exists, else the built-in defaults.
  Every key has a default, so an empty file is a working policy. Paths in it are relative to
  the file's directory. Check a file with `firebreak policy check`.

A bad value stops start-up with one line naming the key (and, in the policy file, its line:
`firebreak.toml:12: severities.0.update_every: ...`), and exit code 2. An empty environment
variable (`FIREBREAK_ALERTS_TOKEN=` left in a `.env` or a manifest) is not set: the default
applies, and a secret that must be set is reported as not set.

**Durations** are strings with a unit: `"15m"`, `"1h"`, `"1h30m"`, `"90s"` or `"2d"`. A bare
number is refused, since it could mean seconds or minutes. The longest is `"365d"`, except for
the `[retention]` periods (up to `"36500d"`).
**Principals** (who may do what, in `[access]`): `everyone`, `admins` (Firebreak admins and
Slack workspace admins and owners), `reporter` (who declared the incident), `any-role` (anyone
holding an incident role), `role:<key>`, `group:<S-id or @handle>`, `user:<U-id>`.
"""


# --------------------------------------------------------------------------------------------
# Reading the models


@cache
def _attribute_docstrings(model: type[BaseModel]) -> dict[str, str]:
    """``name: type = default`` followed by a string literal: that string, per field name."""
    found: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or cls is BaseModel:
            continue
        try:
            source = textwrap.dedent(inspect.getsource(cls))
        except (OSError, TypeError):
            continue
        tree = ast.parse(source)
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, following in itertools.pairwise(body):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                found[node.target.id] = following.value.value
    return found


def describe(model: type[BaseModel], name: str, field: FieldInfo) -> str:
    """A field's meaning as one Markdown paragraph."""
    text = field.description or _attribute_docstrings(model).get(name, "")
    text = " ".join(inspect.cleandoc(text).split())
    return text.replace("``", "`")


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """The annotation without ``Annotated`` and ``None``; and whether ``None`` was allowed."""
    optional = False
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            optional = optional or len(args) < len(get_args(annotation))
            if len(args) != 1:
                return annotation, optional
            annotation = args[0]
        else:
            return annotation, optional


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _list_item_model(annotation: Any) -> type[BaseModel] | None:
    bare, _ = _unwrap(annotation)
    if get_origin(bare) is list:
        (item,) = get_args(bare) or (Any,)
        item, _ = _unwrap(item)
        if _is_model(item):
            return item  # type: ignore[no-any-return]
    return None


_SIMPLE = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    Path: "path",
    timedelta: "duration",
    SecretStr: "secret string",
}


def type_name(annotation: Any) -> str:
    bare, optional = _unwrap(annotation)
    origin = get_origin(bare)
    if bare in _SIMPLE:
        name = _SIMPLE[bare]
    elif origin is Literal:
        name = ", ".join(f'`"{v}"`' if isinstance(v, str) else f"`{v}`" for v in get_args(bare))
        name = f"one of {name}"
    elif origin is list:
        args = get_args(bare)
        name = f"list of {type_name(args[0])}" if args else "list"
    elif origin is dict:
        key, value = (*get_args(bare), Any, Any)[:2]
        name = f"table of {type_name(key)} to {type_name(value)}"
    elif isinstance(bare, type) and issubclass(bare, Enum):
        name = "one of " + ", ".join(f'`"{m.value}"`' for m in bare)
    elif _is_model(bare):
        name = "table"
    elif origin in (Union, types.UnionType):
        name = " or ".join(dict.fromkeys(type_name(a) for a in get_args(bare)))
    elif bare in (ipaddress.IPv4Network, ipaddress.IPv6Network):
        name = "IP network"
    else:
        name = getattr(bare, "__name__", str(bare))
    return f"{name}, optional" if optional else name


def _bounds(field: FieldInfo) -> str:
    parts = []
    for item in field.metadata:
        for attr, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            value = getattr(item, attr, None)
            if value is not None:
                parts.append(f"{sign} {value}")
    return f" ({', '.join(parts)})" if parts else ""


def default_of(field: FieldInfo) -> Any:
    if field.default_factory is not None:
        return field.default_factory()  # type: ignore[call-arg]
    return field.default


def toml_value(value: Any) -> str:
    """A default as it would be written in firebreak.toml (or the environment)."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return toml_value(value.value)
    if isinstance(value, timedelta):
        return f'"{format_duration(value)}"'
    if isinstance(value, Path | str):
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, SecretStr):
        return "(secret)"
    if isinstance(value, BaseModel):
        return "(table)"
    if isinstance(value, dict):
        inner = ", ".join(f"{_toml_key(k)} = {toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, int | float):
        return str(value)
    return toml_value(str(value))  # a custom type (an offset, say) written as a string


def _toml_key(key: Any) -> str:
    text = str(key)
    bare = text.replace("_", "").replace("-", "").isalnum()
    return text if bare else toml_value(text)


def _default_cell(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = default_of(field)
    if value is PydanticUndefined:
        return "required"
    text = toml_value(value)
    return "unset" if text == "unset" else f"`{text}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# --------------------------------------------------------------------------------------------
# Writing the reference


def variable_name(model: type[BaseSettings], name: str, field: FieldInfo) -> str:
    """The environment variable a settings field is read from."""
    prefix = str(model.model_config.get("env_prefix") or "")
    return field.alias or (prefix + name).upper()


def environment_variables(
    model: type[BaseSettings],
) -> Iterator[tuple[str, str, str, str]]:
    """(variable, type, default, meaning) for every field of a settings model."""
    for name, field in model.model_fields.items():
        kind = type_name(field.annotation) + _bounds(field)
        meaning = describe(model, name, field)
        yield variable_name(model, name, field), kind, _default_cell(field), meaning


def all_variables() -> list[str]:
    """Every environment variable Firebreak reads."""
    names = [row[0] for _, model in SETTINGS for row in environment_variables(model)]
    return names + [row[0] for row in OTHER_VARIABLES]


_NOT_SETTINGS = ("FIREBREAK_TEST_", "FIREBREAK_BENCH_", "FIREBREAK_SERVICE_", "FIREBREAK_PORT")
"""Variables of this repository's test and benchmark scripts, and those Kubernetes sets for a
Service named ``firebreak`` (``FIREBREAK_SERVICE_HOST``, ``FIREBREAK_PORT_80_TCP``...): not
Firebreak's settings."""


def unknown_variables(names: Iterable[str]) -> list[tuple[str, str | None]]:
    """``FIREBREAK_`` variables among ``names`` that Firebreak does not read (a typo, or one a
    newer version added), each with the known name it most resembles, if any."""
    known = all_variables()
    return [
        (name, next(iter(difflib.get_close_matches(name, known, n=1, cutoff=0.8)), None))
        for name in sorted(names)
        if name.startswith("FIREBREAK_")
        and not name.startswith(_NOT_SETTINGS)
        and name not in known
    ]


def _table(rows: list[tuple[str, str, str, str]], first: str) -> list[str]:
    lines = [f"| {first} | Type | Default | Meaning |", "|---|---|---|---|"]
    for key, kind, default, meaning in rows:
        lines.append(f"| `{key}` | {_cell(kind)} | {_cell(default)} | {_cell(meaning)} |")
    return lines


def _model_section(
    model: type[BaseModel], path: str, heading: str, level: int, child_level: int
) -> list[str]:
    """The keys of ``model`` as a table, then one section per nested table or array."""
    rows: list[tuple[str, str, str, str]] = []
    nested: list[list[str]] = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        dotted = f"{path}.{key}" if path else key
        bare, _ = _unwrap(field.annotation)
        meaning = describe(model, name, field)
        item_model = _list_item_model(field.annotation)
        if _is_model(bare):
            nested.append(_nested(bare, dotted, f"[{dotted}]", child_level, meaning))
        elif item_model is not None:
            default = default_of(field) if not field.is_required() else []
            count = len(default) if isinstance(default, list) else 0
            extra = _list_default(item_model, default) if count else "Default: none."
            nested.append(
                _nested(item_model, dotted, f"[[{dotted}]]", child_level, f"{meaning} {extra}")
            )
        else:
            kind = type_name(field.annotation) + _bounds(field)
            rows.append((key, kind, _default_cell(field), meaning))
    lines = ["#" * level + f" {heading}", ""]
    if rows:
        lines += _table(rows, "Key")
        lines.append("")
    for section in nested:
        lines += section
    return lines


def _nested(model: type[BaseModel], path: str, heading: str, level: int, meaning: str) -> list[str]:
    lines = _model_section(model, path, f"`{heading}`", level, level + 1)
    own = model.__dict__.get("__doc__") or ""  # not a base class's docstring
    intro = meaning.strip() or " ".join(inspect.cleandoc(own).split()).replace("``", "`")
    if intro:
        lines[2:2] = [intro, ""]
    return lines


def _list_default(model: type[BaseModel], items: list[Any]) -> str:
    keys = [str(getattr(item, "key", "")) for item in items if getattr(item, "key", "")]
    if keys:
        shown = ", ".join(f"`{k}`" for k in keys)
        return f"Default: {len(items)} entries ({shown}); listing any replaces them all."
    return f"Default: {len(items)} entries."


def reference() -> str:
    lines = [_INTRO.format(regenerate=REGENERATE), "## Environment variables", ""]
    for heading, model in SETTINGS:
        lines += [f"### {heading}", ""]
        lines += _table(list(environment_variables(model)), "Variable")
        lines.append("")
    if OTHER_VARIABLES:
        lines += ["### Other", ""]
        lines += _table(list(OTHER_VARIABLES), "Variable")
        lines.append("")
    lines += ["## `firebreak.toml`", ""]
    lines += _model_section(Policy, "", "Top-level keys", 3, 3)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bot.config_reference",
        description="Write the configuration reference (docs/configuration.md) from the models.",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is out of date")
    parser.add_argument("--stdout", action="store_true", help="print instead of writing")
    parser.add_argument("--output", type=Path, default=REFERENCE, help="where to write it")
    args = parser.parse_args(argv)
    text = reference()
    if args.stdout:
        sys.stdout.write(text)
        return 0
    current = args.output.read_text(encoding="utf-8") if args.output.is_file() else None
    if args.check:
        if current != text:
            print(f"{args.output} is out of date: run `{REGENERATE}`", file=sys.stderr)
            return 1
        return 0
    if current != text:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
