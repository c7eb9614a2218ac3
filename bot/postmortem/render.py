"""Rendering a postmortem context to Markdown with Jinja2, in a sandbox with strict undefined
variables; a team template that fails falls back to the built-in one."""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    FileSystemLoader,
    PrefixLoader,
    StrictUndefined,
    Template,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
)
from jinja2.exceptions import SecurityError
from sqlmodel import Session

from bot import incidents
from bot.config import Policy
from bot.markup import (
    Markdown,
    NameResolver,
    escape_block,
    escape_inline,
    escape_link_label,
    escape_link_url,
    escape_table_cell,
)
from bot.postmortem.bounds import BoundedEnvironment, TooCostly, render_bounded
from bot.postmortem.context import build_context
from bot.postmortem.facts import PostmortemContext

logger = logging.getLogger("bot.postmortem")
"""One logger for the package (its name is the one operators filter on)."""


TEMPLATE_NAME = "postmortem.md.j2"


BUILTIN_TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"


BUILTIN_PREFIX = "firebreak"


DEFAULT_TEMPLATE = "default"


@dataclass(frozen=True)
class Rendered:
    markdown: str
    template: str
    """``default`` or the path of the team's template that was used."""
    template_error: str | None
    """Why the team's template was not used (``file:line: message``), if it failed."""


def _text(value: object) -> str:
    """The value as text; :class:`Markdown` stays Markdown (the filters escape only the rest)."""
    if isinstance(value, str):
        return value
    return "" if value is None else str(value)


def _list_item(value: object) -> str:
    """Text after ``- **02:55** @name — ``: one line stays on the bullet; several lines start
    on the next line, indented into the item, so a code block or a heading in a message stays
    inside its entry."""
    raw = _text(value)
    stripped = raw.strip("\n")
    text = escape_block(Markdown(stripped) if isinstance(raw, Markdown) else stripped)
    if "\n" not in text:
        return text
    return "\n" + "\n".join(f"  {line}" if line.strip() else "" for line in text.split("\n"))


_FILTERS: dict[str, Callable[[object], str]] = {
    "cell": lambda v: escape_table_cell(_text(v)),
    "inline": lambda v: escape_inline(_text(v)),
    "block": lambda v: escape_block(_text(v)),
    "item": _list_item,
    "url": lambda v: escape_link_url(_text(v)),
    "label": lambda v: escape_link_label(_text(v)),
}


def _environment(loader: BaseLoader) -> BoundedEnvironment:
    environment = BoundedEnvironment(
        loader=loader,
        undefined=StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    environment.filters.update(_FILTERS)
    return environment


@cache
def _builtin_template() -> Template:
    return _environment(FileSystemLoader(BUILTIN_TEMPLATE_DIR)).get_template(TEMPLATE_NAME)


def _team_template(directory: Path) -> Template:
    """Compiled afresh each time, so an edited template is used at once."""
    loader = ChoiceLoader(
        [
            FileSystemLoader(directory),
            PrefixLoader({BUILTIN_PREFIX: FileSystemLoader(BUILTIN_TEMPLATE_DIR)}),
        ]
    )
    return _environment(loader).get_template(TEMPLATE_NAME)


def _finish(markdown: str) -> str:
    """One trailing newline, no trailing spaces (which Markdown would read as line breaks)."""
    return "\n".join(line.rstrip() for line in markdown.rstrip().split("\n")) + "\n"


def render_context(policy: Policy, context: PostmortemContext) -> Rendered:
    """Render with the team's template, falling back to the built-in one if it fails."""
    variables = context.variables()
    error = None
    if policy.postmortem.template_dir is not None:
        directory = policy.resolve_path(policy.postmortem.template_dir)
        path = directory / TEMPLATE_NAME
        try:
            markdown = render_bounded(_team_template(directory), variables)
            return Rendered(_finish(markdown), str(path)[:1000], None)
        except Exception as exc:  # a team template can fail in any way while rendering
            error = _template_error(exc, path, directory)
        logger.warning("postmortem template failed, the built-in one was used: %s", error)
    markdown = _builtin_template().render(variables)
    return Rendered(_finish(markdown), DEFAULT_TEMPLATE, error)


def team_template_error(policy: Policy) -> str | None:
    """Why the team's template cannot be used, as ``file:line: message`` (``None``: it compiles,
    or there is none): what ``firebreak policy check`` refuses. An error that only a render
    meets (an unknown variable in one branch) shows at the first draft, which then uses the
    built-in template."""
    if policy.postmortem.template_dir is None:
        return None
    directory = policy.resolve_path(policy.postmortem.template_dir)
    path = directory / TEMPLATE_NAME
    if not path.is_file():
        return None  # a warning of its own: the built-in template is used
    try:
        _team_template(directory)
    except Exception as exc:  # compiling is reading and parsing a file people wrote
        return _template_error(exc, path, directory)
    return None


def _template_error(exc: Exception, path: Path, directory: Path) -> str:
    if isinstance(exc, TemplateSyntaxError):  # unknown filters too
        return f"{exc.filename or path}:{exc.lineno}: syntax error: {exc.message}"
    if isinstance(exc, TemplateNotFound):
        if exc.name == TEMPLATE_NAME:
            return (
                f"{path}: template not found; create it or unset "
                "[postmortem] template_dir in the policy file"
            )
        return _located(exc, path, directory, f"template {exc.name!r} not found")
    if isinstance(exc, UnicodeDecodeError):
        return f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"
    return _located(exc, path, directory, _describe(exc))


def _describe(exc: Exception) -> str:
    message = str(exc) or type(exc).__name__
    if isinstance(exc, UndefinedError):
        return f"undefined: {message}"
    if isinstance(exc, SecurityError):
        return f"not allowed in a template: {message}"
    if isinstance(exc, TooCostly):
        return f"too costly: {message}"
    return f"{type(exc).__name__}: {message}"


def _located(exc: BaseException, path: Path, directory: Path, message: str) -> str:
    """``file:line: message`` for an error raised while rendering. Jinja rewrites tracebacks so
    that template code shows up as frames of the template file at the template's line."""
    roots = (str(directory.resolve()) + os.sep, str(BUILTIN_TEMPLATE_DIR) + os.sep)
    where = f"{path}"
    for frame in traceback.extract_tb(exc.__traceback__):
        filename = frame.filename
        if not filename.endswith(".py") and (
            filename.startswith(roots) or str(Path(filename).resolve()).startswith(roots)
        ):
            where = f"{filename}:{frame.lineno}"
    return f"{where}: {message}"


def render_postmortem(
    session: Session,
    policy: Policy,
    incident_id: int,
    *,
    version: int,
    actor: str,
    names: NameResolver | None = None,
    now: datetime | None = None,
) -> Rendered:
    """Render a draft without storing it (a preview, or a benchmark)."""
    incident = incidents.get_incident(session, incident_id)
    context = build_context(
        session, policy, incident, version=version, actor=actor, names=names, now=now
    )
    return render_context(policy, context)
