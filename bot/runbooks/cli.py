"""``firebreak runbooks lint | show | list``.

``register`` adds the commands to the ``firebreak`` parser (``bot.cli._EXTENSIONS``). Handlers
return an exit code: lint exits 1 when it found errors, so teams can run it in CI; a file that
cannot be read is one line on stderr (exit 1), never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bot.config import Policy, load_configuration
from bot.errors import InvalidInput, NotFound
from bot.runbooks.catalog import RunbookCatalog, file_id, runbook_id
from bot.runbooks.files import names_a_file, real_path
from bot.runbooks.lint import lint_paths
from bot.runbooks.parser import Runbook, RunbookFileError, load_runbook_file
from bot.slack.runbook_messages import blocks_to_text, render_runbook_pages
from bot.slack.runbook_messages.fit import SLACK_CHECKS

EXIT_OK = 0
EXIT_FAILED = 1


def _policy(args: argparse.Namespace) -> Policy:
    _, policy = load_configuration(getattr(args, "policy", None))
    return policy


def _runbook_dirs(policy: Policy) -> list[Path]:
    return [policy.resolve_path(p) for p in policy.runbooks.paths]


def cmd_lint(args: argparse.Namespace) -> int:
    policy = _policy(args)
    paths = list(args.paths) or _runbook_dirs(policy)
    report = lint_paths(paths, policy=policy, checks=SLACK_CHECKS)
    for message in report.messages:
        print(message.format())
    print(report.summary())
    return EXIT_FAILED if report.errors else EXIT_OK


def _load_for_show(path: Path, policy: Policy) -> Runbook:
    if path.is_dir():
        raise InvalidInput(
            f"{path}: a directory; show takes one runbook file (`firebreak runbooks list` lists "
            "them all)"
        )
    if not names_a_file(path):
        raise NotFound(f"{path}: no such file")
    rid = file_id(path)
    resolved = real_path(path)
    for directory in _runbook_dirs(policy):
        try:
            rid = runbook_id(resolved, directory.resolve())
            break
        except ValueError:
            continue
    try:
        return load_runbook_file(path, rid)
    except RunbookFileError as exc:
        raise InvalidInput(f"{path}:{exc.line}: {exc}") from None


def _runbook_json(runbook: Runbook, steps_per_page: int) -> dict[str, Any]:
    pages = render_runbook_pages(runbook, steps_per_page=steps_per_page)
    return {
        "id": runbook.id,
        "title": runbook.title,
        "description": runbook.description,
        "services": list(runbook.services),
        "severities": list(runbook.severities),
        "alerts": list(runbook.alerts),
        "tags": list(runbook.tags),
        "owner": runbook.owner,
        "path": str(runbook.path) if runbook.path else None,
        "snapshot": runbook.snapshot(),
        "problems": [
            {"line": p.line, "level": p.level, "message": p.message} for p in runbook.problems
        ],
        "pages": [page.as_dict() for page in pages],
    }


def cmd_show(args: argparse.Namespace) -> int:
    policy = _policy(args)
    runbook = _load_for_show(args.file, policy)
    per_page = policy.runbooks.steps_per_page
    for problem in runbook.problems:
        print(f"{args.file}:{problem.line}: {problem.level}: {problem.message}", file=sys.stderr)
    if args.json:
        json.dump(_runbook_json(runbook, per_page), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return EXIT_OK
    pages = render_runbook_pages(runbook, steps_per_page=per_page)
    for number, page in enumerate(pages, start=1):
        if len(pages) > 1:
            print(f"--- page {number} of {len(pages)} ---")
        sys.stdout.write(blocks_to_text(page.blocks))
        if number < len(pages):
            print()
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    policy = _policy(args)
    catalog = RunbookCatalog.from_policy(policy)
    for problem in catalog.skipped:
        print(f"{problem.path}: skipped: {problem.message}", file=sys.stderr)
    if not len(catalog):
        dirs = ", ".join(str(d) for d in _runbook_dirs(policy))
        print(f"no runbooks in {dirs}")
        return EXIT_OK
    rows = []
    for runbook in catalog:
        keys = [f"service {s}" for s in runbook.services]
        keys += [f"alert {a}" for a in runbook.alerts]
        rows.append((runbook.id, runbook.title, str(len(runbook.steps)), ", ".join(keys)))
    headers = ("ID", "TITLE", "STEPS", "SERVICES/ALERTS")
    id_width = min(max(len(headers[0]), *(len(r[0]) for r in rows)), 60)
    title_width = min(max(len(headers[1]), *(len(r[1]) for r in rows)), 50)
    for rid, full_title, steps, matches in (headers, *rows):
        title = full_title
        if len(title) > title_width:
            title = title[: title_width - 1] + "…"
        print(f"{rid:<{id_width}}  {title:<{title_width}}  {steps:>5}  {matches}".rstrip())
    return EXIT_OK


def register(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``firebreak runbooks ...`` to the CLI (called from ``bot.cli.build_parser``)."""
    runbooks = commands.add_parser("runbooks", help="check, preview and list the runbooks")
    actions = runbooks.add_subparsers(dest="runbooks_command", metavar="ACTION", required=True)

    lint = actions.add_parser(
        "lint",
        help="check runbooks for problems (exit 1 on errors); for CI",
        description="Check runbook files: front matter, empty steps, unclosed code blocks, "
        "broken links, duplicates, content Slack cannot show. Prints file:line: level: message.",
    )
    lint.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATH",
        help="runbook directories or files (default: the policy's runbooks.paths)",
    )
    lint.set_defaults(handler=cmd_lint)

    show = actions.add_parser(
        "show", help="preview a runbook's steps exactly as the bot posts them"
    )
    show.add_argument("file", type=Path, metavar="FILE")
    show.add_argument(
        "--json", action="store_true", help="print the parsed runbook and the Slack blocks"
    )
    show.set_defaults(handler=cmd_show)

    listing = actions.add_parser("list", help="list the runbooks the bot loads")
    listing.set_defaults(handler=cmd_list)
