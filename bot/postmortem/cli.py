"""Command line: ``firebreak postmortem INC-42 [--output FILE]``."""

from __future__ import annotations

import argparse
import getpass
import sys
import uuid
from pathlib import Path
from typing import Any

from bot import incidents
from bot.config import load_configuration
from bot.db import Database
from bot.outputs import check_output_file
from bot.postmortem.store import _generate, write_file_atomically


def register(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``postmortem`` to the ``firebreak`` command line (``bot/cli.py``)."""
    parser = commands.add_parser(
        "postmortem",
        help="generate a new version of an incident's postmortem draft",
        description="Generate a new version of the postmortem draft from the database. The "
        "draft is stored (earlier versions are kept) and written to [postmortem] output_dir; "
        "the path is printed.",
    )
    parser.add_argument("incident", help="incident number, e.g. INC-42")
    parser.add_argument(
        "--output",
        "-o",
        metavar="FILE",
        help="also write the draft to FILE ('-' for standard output)",
    )
    parser.set_defaults(handler=cmd_postmortem)


def _cli_actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        return "cli"
    return f"cli:{user}"[:64] if user.isprintable() and user.strip() else "cli"


def cmd_postmortem(args: argparse.Namespace) -> int:
    """Exit 0 when the draft was produced; 1 when it is stored but a file could not be
    written (or the incident does not exist)."""
    settings, policy = load_configuration(getattr(args, "policy", None))
    if args.output and args.output != "-":
        check_output_file(Path(args.output))
    database = Database(settings.database_url)
    try:
        with database.transaction() as session:
            incident = incidents.find_incident(session, args.incident)
            assert incident.id is not None
            result = _generate(
                session, policy, incident.id, actor=_cli_actor(), key=f"cli:{uuid.uuid4()}"
            )
    finally:
        database.dispose()
    postmortem = result.postmortem
    label = f"{incident.ref} postmortem v{postmortem.version}"
    if postmortem.template_error:
        print(
            f"firebreak: warning: {postmortem.template_error} (the built-in template was used)",
            file=sys.stderr,
        )
    status = 0
    if result.file_error:
        print(f"firebreak: {label} is stored, but {result.file_error}", file=sys.stderr)
        status = 1
    if args.output == "-":
        sys.stdout.write(postmortem.markdown)
    elif args.output:
        try:
            write_file_atomically(Path(args.output), postmortem.markdown)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            print(f"firebreak: {args.output}: cannot write: {reason}", file=sys.stderr)
            return 1
        print(f"wrote {args.output}")
    elif postmortem.file_path:
        print(postmortem.file_path)
    elif not result.file_error:
        # No output directory configured: the terminal is the only place to show it.
        sys.stdout.write(postmortem.markdown)
    return status
