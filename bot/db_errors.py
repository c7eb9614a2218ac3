"""Database failures people meet when they set Firebreak up, as one line that says what to do.

The driver's own messages are long (PostgreSQL's connection errors span lines, SQLite's name no
file) and a traceback tells an operator nothing they can act on. ``explain_database_error`` turns
the errors of a first deployment (missing database or role, wrong password, no rights on schema
``public``, read-only file or replica, server unreachable) into a ``ConfigError`` (exit 2: fix the
configuration) or a ``FirebreakError`` (exit 1: try again), naming the database, never its
password.
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from bot.errors import ConfigError, FirebreakError

# What libpq says about a setting in the URL (port, sslmode, an unknown option) before it tries
# to connect: the configuration is wrong, trying again cannot help.
_BAD_SETTING = re.compile(
    r"invalid connection option|invalid port number|invalid \w+ value|invalid integer value|"
    r"bad value for|invalid URI query parameter|invalid percent-encoded token",
    re.IGNORECASE,
)

# PostgreSQL error codes (SQLSTATE) that only the configuration can fix.
_INSUFFICIENT_PRIVILEGE = "42501"
_READ_ONLY_TRANSACTION = "25006"
_INVALID_CATALOG_NAME = "3D000"


def sqlite_file(url: str | URL) -> Path | None:
    """The file a SQLite URL names, or ``None`` for other backends and in-memory databases."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database.startswith("file:"):
        database = database[len("file:") :].split("?", 1)[0]
    if not database or database == ":memory:":
        return None
    return Path(database).expanduser()


def describe_database(url: str | URL) -> str:
    """How to name the database in a message: the SQLite file, or PostgreSQL's host and name."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "the database"
    path = sqlite_file(parsed)
    if path is not None:
        return str(path)
    if parsed.get_backend_name() == "sqlite":
        return "the in-memory SQLite database"
    host = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    return f'PostgreSQL database "{parsed.database or ""}" at {host}'


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "unknown error"


def explain_database_error(exc: DBAPIError, url: str | URL | None) -> FirebreakError:
    """One line for ``exc`` (a ``ConfigError`` when the configuration must change)."""
    original = exc.orig if exc.orig is not None else exc
    message = str(original)
    sqlstate = getattr(original, "sqlstate", None)
    where = describe_database(url) if url is not None else "the database"
    user = ""
    if url is not None:
        try:
            user = make_url(url).username or ""
        except ArgumentError:
            user = ""
    role = f'"{user}"' if user else "Firebreak's role"

    if _BAD_SETTING.search(message):
        detail = _first_line(message).removeprefix("connection is bad: ")
        return ConfigError(f"database: {where}: {detail}: fix this setting in DATABASE_URL")
    if sqlstate == _INSUFFICIENT_PRIVILEGE:
        detail = _first_line(message)
        if "schema" in detail:
            return ConfigError(
                f"database: {detail}: the role {role} cannot create Firebreak's tables in "
                f"{where}; as the database owner run GRANT USAGE, CREATE ON SCHEMA public TO "
                f"{role} (or make {role} the owner of the database) and start again"
            )
        return ConfigError(
            f"database: {detail} in {where}: grant the role {role} rights on Firebreak's tables "
            "(or make it their owner) and start again"
        )
    if sqlstate == _READ_ONLY_TRANSACTION:
        return ConfigError(
            f"database: {where} only accepts reads (a standby, or default_transaction_read_only "
            "is on): point DATABASE_URL at the primary"
        )
    if sqlstate == _INVALID_CATALOG_NAME or re.search(r'database "[^"]*" does not exist', message):
        name = make_url(url).database if url is not None else ""
        return ConfigError(
            f"database: {where} does not exist: create it (createdb --owner={user or 'ROLE'} "
            f"{name or 'NAME'}) or fix the database name in DATABASE_URL"
        )
    if re.search(r'role "[^"]*" does not exist', message):
        return ConfigError(
            f"database: PostgreSQL has no role {role}: create it (createuser --pwprompt "
            f"{user or 'ROLE'}) or fix the user name in DATABASE_URL"
        )
    if "password authentication failed" in message or "no password supplied" in message:
        return ConfigError(
            f"database: PostgreSQL refused the password for {role} ({where}): "
            "check the password in DATABASE_URL"
        )
    if "no pg_hba.conf entry" in message:
        return ConfigError(
            f"database: PostgreSQL does not accept connections from this host for {role} "
            f"({where}): add a pg_hba.conf entry or use another role"
        )
    if "attempt to write a readonly database" in message:
        return ConfigError(
            f"database: {where} is read-only: Firebreak must be able to write the file and its "
            "directory (for the -wal and -shm files); fix the permissions or DATABASE_URL"
        )
    if "unable to open database file" in message:
        return ConfigError(
            f"database: cannot open {where}: its directory does not exist or is not "
            "writable; fix the permissions or DATABASE_URL"
        )
    if "no such table" in message or "UndefinedTable" in type(original).__name__:
        return ConfigError(
            f"database: {where} has no Firebreak schema (or an old one): run "
            "`firebreak db upgrade` or check DATABASE_URL"
        )
    lost = ("server closed the connection", "terminating connection", "connection reset")
    if any(text in message.lower() for text in lost) and " failed: " not in message:
        # Connected, then cut off mid-way (a restart, a failover, an operator): not a wrong URL.
        return FirebreakError(
            f"database: the connection to {where} was lost ({_first_line(message)}): run the "
            "command again (if it keeps happening, PostgreSQL's log says why)"
        )
    unreachable = (
        "Connection refused",
        "failed to resolve host",
        "Name or service not known",
        "timeout expired",
        "timed out",
        "could not connect",
        "server closed the connection",
        "No route to host",
        "Network is unreachable",
        "SSL negotiation",
    )
    if any(text.lower() in message.lower() for text in unreachable):
        reason = _first_line(message.split(" failed: ")[-1])
        return FirebreakError(
            f"database: cannot reach {where} ({reason}): check that PostgreSQL is running "
            "and that DATABASE_URL names the right host and port"
        )
    return FirebreakError(f"database: {where}: {_first_line(message)}")


# Conditions of the server rather than of the statement: out of disk or memory, shut down,
# starting up, read-only, the connection lost; and its tables gone (42P01: the database was
# dropped and made again empty, or DATABASE_URL now names another one), which every query
# meets until the schema is back: /readyz says so, the loops warn once rather than trace
# every retry.
_UNAVAILABLE_STATES = ("25006", "53100", "53200", "57P01", "57P02", "57P03", "08", "42P01")


def database_unavailable(exc: BaseException) -> bool:
    """The database is down, cut off, full or read-only: something to wait out and report in
    one line, not a bug to log with its traceback."""
    if isinstance(exc, PoolTimeout):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    sqlstate = str(getattr(exc.orig, "sqlstate", "") or "")
    if sqlstate:  # PostgreSQL says which: a deadlock or a timeout is not an outage
        return sqlstate.startswith(_UNAVAILABLE_STATES)
    # No state: the connection was lost or never made (or SQLite's file cannot be written).
    return isinstance(exc, OperationalError | InterfaceError)


class OutageLog:
    """How a loop that keeps trying reports failures: while the database is unavailable, one
    warning when it goes and one line when it is back, instead of a traceback per attempt;
    anything else is logged whole, every time."""

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self.logger = logger
        self.what = what
        self._down = False
        self._lock = threading.Lock()

    def failed(self, exc: BaseException, message: str, *args: object) -> None:
        """Log ``exc`` from an ``except`` block (``message`` for anything but an outage)."""
        if not database_unavailable(exc):
            self.logger.exception(message, *args)
            return
        with self._lock:
            first, self._down = not self._down, True
        if first:
            reason = _first_line(str(getattr(exc, "orig", None) or exc))[:200]
            self.logger.warning(
                "%s: the database is unavailable (%s: %s); trying again until it is back",
                self.what,
                type(exc).__name__,
                reason,
            )

    def ok(self) -> None:
        """An attempt succeeded: say so once if the database had been unavailable."""
        if self._down:
            with self._lock:
                back, self._down = self._down, False
            if back:
                self.logger.warning("%s: the database is available again", self.what)
