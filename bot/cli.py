"""The ``firebreak`` command line.

Exit codes: 0 success, 1 the command failed (e.g. lint errors, incident not found), 2 bad
configuration or usage. Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from sqlalchemy.exc import DBAPIError

from bot import __version__
from bot.audit.retention import check_archive_dir
from bot.config import (
    Policy,
    Settings,
    check_port,
    load_configuration,
    load_settings,
    normalise_database_url,
)
from bot.config_reference import unknown_variables
from bot.db import Database, create_db_engine
from bot.db_errors import describe_database, explain_database_error, sqlite_file
from bot.errors import ConfigError, FirebreakError
from bot.outputs import check_output_dir, check_output_file
from bot.postmortem.render import team_template_error

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


def require_database(url: str) -> None:
    """Commands that read incidents need an existing, migrated database. Opening a SQLite path
    creates the file, so a typo would otherwise leave a new empty database and "no incidents"."""
    from bot import migrations

    path = sqlite_file(url)
    if path is not None and not path.exists():
        raise ConfigError(
            f"no Firebreak database at {path}; run `firebreak db upgrade` or check DATABASE_URL"
        )
    engine = create_db_engine(url, read_only=True)  # a check: it writes nothing
    try:
        with engine.connect() as connection:
            migrations.check_known_revision(connection)
        current = migrations.current_revision(engine)
    finally:
        engine.dispose()
    if current is None:
        raise ConfigError(
            f"no Firebreak schema in {describe_database(url)}; run `firebreak db upgrade` or "
            "check DATABASE_URL"
        )
    if current != migrations.head_revision():
        raise ConfigError(
            f"database: the schema of {describe_database(url)} is at revision {current}, "
            f"behind this Firebreak ({migrations.head_revision()}); run `firebreak db upgrade`"
        )


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

    if not args.yes:
        raise ConfigError(
            f"db downgrade: migrating back to {args.revision[:40]!r} drops the tables and "
            "columns later revisions added, and what they hold ('base': every table); "
            "add --yes to do it"
        )
    settings, _ = _configuration(args)
    migrations.downgrade(settings.database_url, args.revision)
    print(f"database downgraded to {args.revision}")
    return EXIT_OK


def cmd_db_current(args: argparse.Namespace) -> int:
    from bot import migrations

    settings, _ = _configuration(args)
    head = migrations.head_revision()
    path = sqlite_file(settings.database_url)
    if path is not None and not path.exists():  # reading must not create the file
        print(f"empty: no database at {path} (behind: run 'firebreak db upgrade'; head {head})")
        return EXIT_FAILED
    db = _database(settings)
    try:
        current = migrations.current_revision(db.engine)
    finally:
        db.dispose()
    if current is not None and not migrations.is_known(current):
        print(
            f"{current} (ahead: a newer Firebreak migrated it; this one ({__version__}) knows "
            f"revisions up to {head}: run the newer version)"
        )
        return EXIT_FAILED
    state = "up to date" if current == head else f"behind: run 'firebreak db upgrade' (head {head})"
    print(f"{current or 'empty'} ({state})")
    return EXIT_OK if current == head else EXIT_FAILED


# --------------------------------------------------------------------------------------------
# policy


def cmd_policy_check(args: argparse.Namespace) -> int:
    settings, policy = _configuration(args)
    source = args.policy or settings.resolved_policy_file() or "built-in defaults"
    check_archive_dir(policy)
    problem = team_template_error(policy)
    if problem is not None:
        raise ConfigError(f"{problem} (postmortem.template_dir)")
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
    if policy.alerts.default_map_matches_none(policy.severities):
        fallback = policy.alerts.default_severity or policy.default_severity
        print(
            f"{source}: warning: alerts.severity_map: the default map (critical -> SEV1, ...) "
            f"matches none of the severities ({', '.join(s.key for s in policy.severities)}), "
            f"so every alert gets {fallback}; set [alerts] severity_map",
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
            # Columns as wide as the policy's longest key shown (``postmortem-review``).
            ref = max([9, *(len(i.ref) for i in rows)])
            sev = max([6, *(len(i.severity) for i in rows)])
            status = max([14, *(len(i.status) for i in rows)])
            for incident in rows:
                print(
                    f"{incident.ref:<{ref}} {incident.severity:<{sev}} "
                    f"{incident.status:<{status}} "
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
    if args.output:
        check_output_file(Path(args.output))
    db = _database(settings)
    try:
        with db.transaction() as session:
            document = export_incident(session, policy, args.incident)
    finally:
        db.dispose()
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise FirebreakError(f"{args.output}: cannot write: {exc.strerror or exc}") from None
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# serve


def cmd_serve(args: argparse.Namespace) -> int:
    from bot import migrations
    from bot.console import load_console_settings
    from bot.server import check_credentials, check_listen, serve

    settings, policy = _configuration(args)
    port = check_port(args.port, "--port") if args.port is not None else settings.port
    host = args.host or settings.host
    # Configuration first: a missing secret, a bad console setting or a taken port must not
    # migrate the database.
    check_credentials(settings)
    load_console_settings()
    check_listen(host, port)

    def prepare() -> None:
        if args.no_migrate:
            engine = create_db_engine(settings.database_url)
            try:
                with engine.connect() as connection:
                    migrations.check_known_revision(connection)
            finally:
                engine.dispose()
        else:
            # Every replica migrates at start-up; the migration lock makes one do the work
            # while the others wait and then find nothing to do.
            migrations.upgrade(settings.database_url)

    serve(settings, policy, host=host, port=port, prepare=prepare)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from bot.demo import DEFAULT_OUTPUT_DIR, run_demo

    settings, policy = _configuration(args)
    url = _demo_database_url(args.database_url) if args.database_url else settings.database_url
    serve_port = check_port(args.port, "--port") if args.serve else None
    output_dir = Path(args.output_dir) if args.output_dir else DEFAULT_OUTPUT_DIR
    if args.output_dir:
        check_output_dir(output_dir)
    try:
        return run_demo(
            url,
            policy=policy,
            output_dir=output_dir,
            hint_url=args.database_url is not None,
            serve_port=serve_port,
        )
    except DBAPIError as exc:  # named by the URL the demo used, not $DATABASE_URL
        raise explain_database_error(exc, url) from None


def _demo_database_url(value: str) -> str:
    """--database-url, held to DATABASE_URL's rules (postgres:// accepted, sqlite or
    postgresql only)."""
    try:
        return normalise_database_url(value)
    except ValueError as exc:
        raise ConfigError(f"--database-url: {exc}") from None


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
        "--no-migrate",
        action="store_true",
        help="do not upgrade the database schema at start-up (by default serve migrates it, "
        "under a lock that makes concurrent replicas safe)",
    )
    # Kept for deployments written when migrating was opt-in; it is now the default.
    serve.add_argument("--migrate", action="store_true", help=argparse.SUPPRESS)
    serve.set_defaults(handler=cmd_serve)

    demo = commands.add_parser(
        "demo", help="play a realistic incident against a built-in fake Slack (no Slack needed)"
    )
    demo.add_argument(
        "--database-url",
        help="keep the demo's incident here (default: $DATABASE_URL, else ./firebreak.db)",
    )
    demo.add_argument(
        "--output-dir",
        help="directory for the demo's files, the postmortem draft (default: ./firebreak-demo)",
    )
    demo.add_argument(
        "--serve",
        action="store_true",
        help="then keep the fake Slack running and serve the web console with a demo sign-in",
    )
    demo.add_argument("--port", type=int, default=8000, help="port for --serve (default: 8000)")
    demo.set_defaults(handler=cmd_demo)

    db = commands.add_parser("db", help="database migrations")
    db_commands = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    upgrade = db_commands.add_parser("upgrade", help="migrate the database to the latest schema")
    upgrade.add_argument("revision", nargs="?", default="head")
    upgrade.set_defaults(handler=cmd_db_upgrade)
    downgrade = db_commands.add_parser(
        "downgrade",
        help="migrate back to REVISION, dropping what later revisions hold (needs --yes; "
        "refused below the timeline's hash chain while the timeline holds events)",
    )
    downgrade.add_argument("revision")
    downgrade.add_argument("--yes", action="store_true", help="yes, drop it")
    downgrade.set_defaults(handler=cmd_db_downgrade)
    current = db_commands.add_parser(
        "current", help="show the schema revision (exit 1 if behind or ahead)"
    )
    current.set_defaults(handler=cmd_db_current)

    policy = commands.add_parser("policy", help="the incident policy (firebreak.toml)")
    policy_commands = policy.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    check = policy_commands.add_parser("check", help="validate the policy file")
    check.set_defaults(handler=cmd_policy_check)

    incidents = commands.add_parser("incidents", help="list incidents")
    incidents.add_argument("--all", action="store_true", help="include closed incidents")
    incidents.set_defaults(handler=cmd_incidents_list, needs_database=True)

    export = commands.add_parser("export", help="write an incident and its timeline as JSON")
    export.add_argument("incident", help="incident number, e.g. INC-42")
    export.add_argument("--output", "-o", help="file to write (default: standard output)")
    export.set_defaults(handler=cmd_export, needs_database=True)

    for register in _EXTENSIONS:
        register(commands)
    commands.choices["postmortem"].set_defaults(needs_database=True)
    return parser


def _register_postmortem(commands: argparse._SubParsersAction[_Parser]) -> None:
    from bot.postmortem.cli import register

    register(commands)


def _register_runbooks(commands: argparse._SubParsersAction[_Parser]) -> None:
    from bot.runbooks.cli import register

    register(commands)


def _register_alerts(commands: argparse._SubParsersAction[_Parser]) -> None:
    from bot.alerts.cli import register

    register(commands)


def _register_effects(commands: argparse._SubParsersAction[_Parser]) -> None:
    from bot.effects.cli import register

    register(commands)


def _register_audit(commands: argparse._SubParsersAction[_Parser]) -> None:
    from bot.audit.cli import register

    register(commands)


# Modules that add commands of their own.
_EXTENSIONS: list[Callable[[argparse._SubParsersAction[_Parser]], None]] = [
    _register_postmortem,
    _register_runbooks,
    _register_alerts,
    _register_audit,
    _register_effects,
]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:  # no command: usage, as for any other bad command line
        parser.print_help(sys.stderr)
        return EXIT_CONFIG
    if handler is not cmd_serve:  # serve logs them, in its log format
        for name, close in unknown_variables(os.environ):
            hint = f" (did you mean {close}?)" if close else ""
            print(f"firebreak: warning: {name} is not a Firebreak variable{hint}", file=sys.stderr)
    try:
        if getattr(args, "needs_database", False):
            require_database(load_settings().database_url)
        status = int(handler(args))
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return status
    except ConfigError as exc:
        print(f"firebreak: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except FirebreakError as exc:
        print(f"firebreak: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except DBAPIError as exc:
        error = explain_database_error(exc, _database_url())
        print(f"firebreak: {error}", file=sys.stderr)
        return EXIT_CONFIG if isinstance(error, ConfigError) else EXIT_FAILED
    except BrokenPipeError:
        # The reader went away (`firebreak ... | head`): stop quietly, as standard tools do.
        # Python would report the pipe again when it flushes at exit, so stdout goes nowhere.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


def _database_url() -> str | None:
    try:
        return load_settings().database_url
    except ConfigError:
        return None
