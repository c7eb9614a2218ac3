"""The ``firebreak`` command line.

Exit codes: 0 success, 1 the command failed (e.g. lint errors, incident not found), 2 bad
configuration or usage. Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from sqlalchemy.exc import OperationalError

from bot import __version__
from bot.config import Policy, Settings, load_configuration
from bot.db import Database
from bot.errors import ConfigError, FirebreakError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG)


def _configuration(args: argparse.Namespace) -> tuple[Settings, Policy]:
    return load_configuration(args.policy)


def _database(settings: Settings) -> Database:
    return Database(settings.database_url)


# --------------------------------------------------------------------------------------------
# db


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from bot import migrations

    settings, _ = _configuration(args)
    migrations.upgrade(settings.database_url, args.revision)
    db = _database(settings)
    try:
        print(f"database at revision {migrations.current_revision(db.engine)} ({db.backend})")
    finally:
        db.dispose()
    return EXIT_OK


def cmd_db_downgrade(args: argparse.Namespace) -> int:
    from bot import migrations

    settings, _ = _configuration(args)
    migrations.downgrade(settings.database_url, args.revision)
    print(f"database downgraded to {args.revision}")
    return EXIT_OK


def cmd_db_current(args: argparse.Namespace) -> int:
    from bot import migrations

    settings, _ = _configuration(args)
    db = _database(settings)
    try:
        current = migrations.current_revision(db.engine)
    finally:
        db.dispose()
    head = migrations.head_revision()
    state = "up to date" if current == head else f"behind: run 'firebreak db upgrade' (head {head})"
    print(f"{current or 'empty'} ({state})")
    return EXIT_OK if current == head else EXIT_FAILED


# --------------------------------------------------------------------------------------------
# policy


def cmd_policy_check(args: argparse.Namespace) -> int:
    settings, policy = _configuration(args)
    source = args.policy or settings.resolved_policy_file() or "built-in defaults"
    for path in policy.runbooks.paths:
        if not policy.resolve_path(path).is_dir():
            print(
                f"{source}: warning: runbooks.paths: {policy.resolve_path(path)} is not a "
                "directory; no runbooks will be loaded from it",
                file=sys.stderr,
            )
    template_dir = policy.postmortem.template_dir
    if (
        template_dir is not None
        and not (policy.resolve_path(template_dir) / "postmortem.md.j2").is_file()
    ):
        print(
            f"{source}: warning: postmortem.template_dir: no postmortem.md.j2 in "
            f"{policy.resolve_path(template_dir)}; the built-in template will be used",
            file=sys.stderr,
        )
    print(
        f"{source}: ok: {len(policy.severities)} severities, {len(policy.statuses)} statuses, "
        f"{len(policy.roles)} roles"
    )
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# incidents


def cmd_incidents_list(args: argparse.Namespace) -> int:
    from bot import incidents

    settings, policy = _configuration(args)
    db = _database(settings)
    try:
        with db.transaction() as session:
            rows = incidents.list_incidents(
                session, policy, phases=None if args.all else ("active", "resolved")
            )
            for incident in rows:
                print(
                    f"{incident.ref:<9} {incident.severity:<6} {incident.status:<14} "
                    f"{incident.declared_at:%Y-%m-%d %H:%MZ}  {incident.title}"
                )
            if not rows:
                print("no incidents")
    finally:
        db.dispose()
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from bot.export import export_incident

    settings, policy = _configuration(args)
    db = _database(settings)
    try:
        with db.transaction() as session:
            document = export_incident(session, policy, args.incident)
    finally:
        db.dispose()
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# serve


def cmd_serve(args: argparse.Namespace) -> int:
    from bot import migrations
    from bot.server import configure_service_logging, serve

    settings, policy = _configuration(args)
    configure_service_logging(settings)
    if args.migrate:
        migrations.upgrade(settings.database_url)
    serve(settings, policy, host=args.host, port=args.port)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from bot.demo import run_demo

    return run_demo(args.database_url)


# --------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="firebreak",
        description="Incident response for Slack. Configuration comes from the environment "
        "(DATABASE_URL, SLACK_*) and the policy file firebreak.toml.",
    )
    parser.add_argument("--version", action="version", version=f"firebreak {__version__}")
    parser.add_argument(
        "--policy",
        type=Path,
        default=None,
        help="policy file (default: $FIREBREAK_POLICY_FILE, else ./firebreak.toml if present, "
        "else the built-in defaults)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    serve = commands.add_parser("serve", help="run the Slack bot (HTTP or Socket Mode)")
    serve.add_argument("--host", help="address to listen on (default: $FIREBREAK_HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (default: $PORT or 3000)")
    serve.add_argument(
        "--migrate", action="store_true", help="upgrade the database schema before serving"
    )
    serve.set_defaults(handler=cmd_serve)

    demo = commands.add_parser(
        "demo", help="play a realistic incident against a built-in fake Slack (no Slack needed)"
    )
    demo.add_argument(
        "--database-url", help="keep the demo's data here (default: a temporary SQLite file)"
    )
    demo.set_defaults(handler=cmd_demo)

    db = commands.add_parser("db", help="database migrations")
    db_commands = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    upgrade = db_commands.add_parser("upgrade", help="migrate the database to the latest schema")
    upgrade.add_argument("revision", nargs="?", default="head")
    upgrade.set_defaults(handler=cmd_db_upgrade)
    downgrade = db_commands.add_parser("downgrade", help="migrate back to REVISION ('base')")
    downgrade.add_argument("revision")
    downgrade.set_defaults(handler=cmd_db_downgrade)
    current = db_commands.add_parser("current", help="show the schema revision (exit 1 if behind)")
    current.set_defaults(handler=cmd_db_current)

    policy = commands.add_parser("policy", help="the incident policy (firebreak.toml)")
    policy_commands = policy.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    check = policy_commands.add_parser("check", help="validate the policy file")
    check.set_defaults(handler=cmd_policy_check)

    incidents = commands.add_parser("incidents", help="list incidents")
    incidents.add_argument("--all", action="store_true", help="include closed incidents")
    incidents.set_defaults(handler=cmd_incidents_list)

    export = commands.add_parser("export", help="write an incident and its timeline as JSON")
    export.add_argument("incident", help="incident number, e.g. INC-42")
    export.add_argument("--output", "-o", help="file to write (default: standard output)")
    export.set_defaults(handler=cmd_export)

    for register in _EXTENSIONS:
        register(commands)
    return parser


def _register_postmortem(commands: argparse._SubParsersAction[_Parser]) -> None:
    from bot.postmortem import register

    register(commands)


def _register_runbooks(commands: argparse._SubParsersAction[_Parser]) -> None:
    from bot.runbooks.cli import register

    register(commands)


# Modules that add commands of their own.
_EXTENSIONS: list[Callable[[argparse._SubParsersAction[_Parser]], None]] = [
    _register_postmortem,
    _register_runbooks,
]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_OK
    try:
        return int(handler(args))
    except ConfigError as exc:
        print(f"firebreak: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except FirebreakError as exc:
        print(f"firebreak: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OperationalError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        print(f"firebreak: cannot use the database: {reason}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
