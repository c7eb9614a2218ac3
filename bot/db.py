"""The database: engine, transactions, and the pieces that make SQLite and PostgreSQL behave alike.

Every write in Firebreak happens inside ``Database.transaction()``. On PostgreSQL the domain core
locks the incident row (``SELECT ... FOR NO KEY UPDATE``) so that concurrent changes to one
incident are serialised. SQLite has no row locks, so every transaction starts with
``BEGIN IMMEDIATE``: it takes the database's write lock up front, which serialises writers the
same way and avoids the ``database is locked`` dead end of upgrading a read transaction to a
write one. WAL mode keeps readers unblocked meanwhile.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.request import pathname2url

from sqlalchemy import MetaData, event, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import GenericFunction
from sqlalchemy.sql.selectable import GenerativeSelect
from sqlalchemy.types import DateTime, TypeDecorator
from sqlmodel import Session, create_engine

from bot import priority
from bot.clock import as_utc
from bot.db_errors import database_unavailable
from bot.errors import ConfigError

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
POSTGRESQL_CONNECT_ARGS: dict[str, Any] = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 15_000,
}
"""libpq's defaults wait for a network that has gone silent (a partition, a blackholed route)
for minutes: a new connection for the kernel's 2 minutes of SYN retries, an open one until
TCP gives up. These bound both (new connections 10 s; an open one whose peer stops answering
within about 15 to 25 s), so requests fail, readiness says so and shutdown is not held for
minutes. Any of them given in the URL's query (``?connect_timeout=30``) wins."""
READ_ONLY = "firebreak_read_only"
_BEGIN = threading.local()
"""``wait_ms``: the longest the calling thread's next transaction waits to begin (SQLite's
writer), in ms; set by ``Database.transaction(wait=...)`` around its begin."""

_Select = TypeVar("_Select", bound=GenerativeSelect)
_T = TypeVar("_T")

INTEGER_MAX = 2_147_483_647
"""The largest id or number an INTEGER column holds (PostgreSQL's ``integer``)."""


def whole_number(text: str) -> int | None:
    """An id or number as Firebreak writes it (buttons, forms, commands, console URLs): ASCII
    digits, leading zeros allowed, from 1 up to ``INTEGER_MAX``; ``None`` for anything else.
    (``str.isdigit`` also accepts ``²`` and other scripts' digits, which ``int`` refuses or
    misreads; a larger number would fail in the database.)"""
    digits = text.lstrip("0")
    if not text.isascii() or not text.isdigit() or not digits or len(digits) > 10:
        return None
    number = int(digits)
    return number if number <= INTEGER_MAX else None


def locked_for_change(statement: _Select) -> _Select:
    """``statement`` locking the incident row it selects, as every change to an incident does
    first: ``FOR NO KEY UPDATE`` on PostgreSQL, which serialises changes to the incident but not
    the foreign-key checks of rows pointing at it (SQLite ignores it: its transactions already
    hold the write lock)."""
    return statement.with_for_update(key_share=True)


# Stable constraint names, so migrations can alter and drop them on both backends.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def configure_metadata(metadata: MetaData) -> None:
    metadata.naming_convention = NAMING_CONVENTION


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, whatever the backend.

    PostgreSQL stores ``timestamptz``; SQLite stores text without an offset, so values read back
    from it get UTC attached. Naive datetimes are refused on the way in.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        utc = as_utc(value)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return as_utc(value)


class unicode_lower(GenericFunction[str]):
    """``lower()`` that folds every letter on both backends: SQLite's own folds ASCII only
    ("Échec" would not match "échec"), so there it is Python's ``str.lower``."""

    inherit_cache = True
    name = "lower"
    _register = False  # ``func.lower`` stays SQL's own


@compiles(unicode_lower, "sqlite")
def _sqlite_unicode_lower(element: unicode_lower, compiler: SQLCompiler, **kw: Any) -> str:
    return f"firebreak_lower({compiler.process(element.clauses, **kw)})"


def _python_lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _use_wal(cursor: Any) -> None:
    """Switch a new database file to WAL (it is persistent, so later connections find it set).
    Several processes opening a fresh file at once may see it locked for a moment: retry."""
    for attempt in range(50):
        if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
            return
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError:
            time.sleep(0.02 * (attempt + 1))
    cursor.execute("PRAGMA journal_mode=WAL")


def _prepare_sqlite(engine: Engine, *, read_only: bool = False) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below decide how transactions start.
        dbapi_connection.isolation_level = None
        dbapi_connection.create_function("firebreak_lower", 1, _python_lower, deterministic=True)
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        if not read_only:
            _use_wal(cursor)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # Straight to the driver (this runs for every transaction), with the driver's error
        # translated as SQLAlchemy would. Reads begin deferred: in WAL mode they never wait.
        statement = (
            "BEGIN" if connection.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE"
        )
        driver = connection.connection.driver_connection
        wait = getattr(_BEGIN, "wait_ms", None)
        try:
            if wait is not None:
                driver.execute(f"PRAGMA busy_timeout={int(wait)}")  # type: ignore[union-attr]
            driver.execute(statement)  # type: ignore[union-attr]
        except sqlite3.OperationalError as exc:
            raise OperationalError(statement, None, exc) from exc
        finally:
            if wait is not None:
                driver.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")  # type: ignore[union-attr]


def _read_only_sqlite(path: str) -> Callable[[], sqlite3.Connection]:
    """Connections that never write the file: for reading a copy (an auditor's snapshot, on
    read-only media or in a directory they cannot write). A WAL database needs its -shm file
    even to be read; where it cannot be made, the file is opened as immutable (nothing else
    may be writing it then, as nothing writes a copy)."""
    address = "file:" + pathname2url(str(Path(path).expanduser().resolve()))

    def connect() -> sqlite3.Connection:
        timeout = SQLITE_BUSY_TIMEOUT_MS / 1000
        connection = sqlite3.connect(
            f"{address}?mode=ro", uri=True, check_same_thread=False, timeout=timeout
        )
        try:
            connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError:
            connection.close()
            connection = sqlite3.connect(
                f"{address}?immutable=1", uri=True, check_same_thread=False, timeout=timeout
            )
        return connection

    return connect


def create_db_engine(url: str | URL, *, pool_size: int = 10, read_only: bool = False) -> Engine:
    """Create an engine with the settings Firebreak relies on for either backend.
    ``read_only`` (SQLite): never write the file, nor create its directory (see
    ``_read_only_sqlite``); PostgreSQL is only read through such an engine anyway.

    ``hide_parameters``: database errors never carry the values of a statement into a log,
    because those values are incident text (titles, notes, captured messages)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if read_only and database and database != ":memory:" and not database.startswith("file:"):
            engine = create_engine(
                "sqlite://", hide_parameters=True, creator=_read_only_sqlite(database)
            )
            _prepare_sqlite(engine, read_only=True)
            return engine
        if database and database != ":memory:" and not database.startswith("file:"):
            folder = Path(database).expanduser().parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(
                    f"database: cannot create the directory {folder} for the SQLite file "
                    f"({exc.strerror or exc}): create it writable, or set DATABASE_URL to a "
                    "path that is"
                ) from None
        engine = create_engine(
            parsed,
            hide_parameters=True,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            poolclass=NullPool if database in ("", ":memory:") else None,
        )
        _prepare_sqlite(engine)
        return engine
    given = set(parsed.query)
    return create_engine(
        parsed,
        hide_parameters=True,
        connect_args={k: v for k, v in POSTGRESQL_CONNECT_ARGS.items() if k not in given},
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
    )


URGENT_IN_A_ROW = 8
"""How many urgent waiters ``FairLock`` serves one after another while an ordinary one waits:
a storm of requests delays background work, it never stops it."""


class FairLock:
    """A first-come, first-served, re-entrant lock. ``threading.Lock`` lets the thread that
    just released it take it straight back, which starves the others and stretches tail
    latency; here the lock is handed to the longest waiter, and only that waiter is woken.

    Waiters that someone is waiting for (``urgent``: the write that must be done before Slack
    or an alerting tool is answered) are served before ordinary ones (background work), up to
    ``URGENT_IN_A_ROW`` of them in a row; each kind in its order of arrival."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._owner: int | None = None
        self._depth = 0
        self._waiters: deque[threading.Lock] = deque()
        self._urgent: deque[threading.Lock] = deque()
        self._urgent_in_a_row = 0

    def __enter__(self) -> None:
        self.acquire()

    def acquire(self, timeout: float | None = None, *, urgent: bool = False) -> bool:
        """Take the lock, waiting at most ``timeout`` seconds (``None``: as long as it takes);
        False if it was not had in time. ``urgent``: served before ordinary waiters."""
        me = threading.get_ident()
        with self._guard:
            if self._owner is None or self._owner == me:
                self._owner = me
                self._depth += 1
                return True
            waiter = threading.Lock()
            waiter.acquire()
            queue = self._urgent if urgent else self._waiters
            queue.append(waiter)
        # Released by the holder when it hands the lock over.
        if not waiter.acquire(timeout=-1 if timeout is None else max(timeout, 0.0)):
            with self._guard:
                if waiter in queue:  # not handed over: leave the queue
                    queue.remove(waiter)
                    return False
            waiter.acquire()  # handed over as the wait ran out: it is ours (at once)
        with self._guard:
            self._owner = me
            self._depth = 1
        return True

    @property
    def waiting(self) -> int:
        """How many threads are queued for the lock right now."""
        with self._guard:
            return len(self._waiters) + len(self._urgent)

    def __exit__(self, *_: object) -> None:
        self.release()

    def release(self) -> None:
        with self._guard:
            self._depth -= 1
            if self._depth:
                return
            if self._urgent and not (self._waiters and self._urgent_in_a_row >= URGENT_IN_A_ROW):
                self._urgent_in_a_row += 1
                following = self._urgent
            else:
                self._urgent_in_a_row = 0
                following = self._waiters
            if following:
                self._owner = -1  # handed over: taken by the woken waiter
                following.popleft().release()
            else:
                self._owner = None


class Database:
    """Owns the engine; hands out sessions that are one transaction each."""

    def __init__(self, url: str | URL, *, pool_size: int = 10, read_only: bool = False) -> None:
        """``read_only``: for commands that only read (``audit verify``, ``export``), so they
        also work on a copy nobody may write."""
        self.engine = create_db_engine(url, pool_size=pool_size, read_only=read_only)
        self.url = self.engine.url if not read_only else make_url(url)
        # SQLite has one writer at a time. Threads of this process queue on a lock instead of
        # polling in SQLite's busy handler, whose back-off sleeps stretch the tail latency to
        # hundreds of milliseconds; other processes still wait on the busy timeout.
        self._writer = FairLock() if self.engine.dialect.name == "sqlite" else None
        self._reader = self.engine.execution_options(**{READ_ONLY: True})
        # A SQLite read transaction sees one snapshot already (WAL); PostgreSQL's default
        # (READ COMMITTED) gives each statement its own.
        self._snapshot_reader = (
            self._reader.execution_options(isolation_level="REPEATABLE READ")
            if self.backend == "postgresql"
            else self._reader
        )

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self, *, until: float | None = None) -> Iterator[Session]:
        """A session whose work is committed on success and rolled back on any error.
        ``until`` (``time.monotonic()``): how long it may wait for SQLite's writer or, on
        PostgreSQL, for a lock (else ``OperationalError``); unbounded but by the busy timeout
        if ``None``."""
        priority.pause_point()
        wait = None if until is None else until - time.monotonic()
        with priority.holding(), self._writer_for(wait):
            # What is left of the wait once this process's other writers are done.
            ms = None if until is None else max(1, int((until - time.monotonic()) * 1000))
            with Session(self.engine, expire_on_commit=False) as session, session.begin():
                if ms is not None:
                    _BEGIN.wait_ms = ms
                    try:
                        if self.backend == "postgresql":
                            session.execute(text(f"SET LOCAL lock_timeout = {ms}"))
                        else:
                            session.connection()  # begins now, waiting at most ``ms``
                    finally:
                        _BEGIN.wait_ms = None
                yield session

    @contextmanager
    def _writer_for(self, wait: float | None) -> Iterator[None]:
        """This process's turn at SQLite's writer, waiting at most ``wait`` seconds (then the
        error SQLite gives when its own wait runs out)."""
        if self._writer is None:
            yield
            return
        # A request's own write (not background work) goes first: someone waits for its answer.
        if not self._writer.acquire(timeout=wait, urgent=not priority.in_background()):
            locked = sqlite3.OperationalError("database is locked")
            raise OperationalError("BEGIN IMMEDIATE", None, locked)
        try:
            yield
        finally:
            self._writer.release()

    def transact(
        self,
        work: Callable[[Session], _T],
        *,
        attempts: int = 3,
        retry_on: tuple[type[Exception], ...] = (OperationalError,),
        until: float | None = None,
    ) -> _T:
        """``work`` in a transaction, tried again (``attempts`` in all) when it fails with one of
        ``retry_on``: the transaction rolled back, so nothing of it was written (a connection
        the server dropped, a deadlock, a lock wait that ran out). ``work`` must be safe to run
        again from the start. The database unreachable is waited out with a growing pause, and
        with a deadline (``until``) for as long as it allows: a failover or a restart of a
        second or so is then a slower answer, not a refusal."""
        attempt = 0
        while True:
            attempt += 1
            try:
                with self.transaction(until=until) as session:
                    return work(session)
            except retry_on as exc:
                unavailable = database_unavailable(exc)
                pause = min(0.05 * 2 ** (attempt - 1), 0.4) if unavailable else 0.0
                waiting_out = until is not None and time.monotonic() + pause < until
                if attempt >= attempts and not (unavailable and waiting_out):
                    raise
                # A deadlock or a lock wait is worth a warning; the database gone is reported
                # by whoever waits it out, once per outage (``OutageLog``), not per attempt.
                log.log(
                    logging.DEBUG if unavailable else logging.WARNING,
                    "transaction rolled back, trying again",
                    extra={"error": type(getattr(exc, "orig", None) or exc).__name__},
                )
                time.sleep(pause)

    @contextmanager
    def read(self, *, snapshot: bool = False) -> Iterator[Session]:
        """A session for reading only: it takes no write lock, so on SQLite it neither waits for
        writers nor makes them wait (WAL). Anything it writes is rolled back. ``snapshot``:
        every statement sees the database as the first one did (a record read in several
        statements that must agree with itself, such as an evidence bundle)."""
        priority.pause_point()
        # Closing the session hands the connection back to the pool, which rolls the read
        # transaction back; unlike an explicit rollback, it leaves loaded objects readable.
        reader = self._snapshot_reader if snapshot else self._reader
        with Session(reader, expire_on_commit=False) as session:
            yield session

    def probe_write(self) -> None:
        """Raise if the database cannot be written (full disk, read-only file or role): one
        real write, committed, to a row kept for it."""
        with self.transaction() as session:
            session.execute(
                text(
                    "INSERT INTO counters (name, value) VALUES ('readiness_probe', 1) "
                    "ON CONFLICT (name) DO UPDATE SET value = counters.value + 1"
                )
            )

    def ping(self) -> None:
        """Raise if the database cannot be reached."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
