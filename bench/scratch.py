"""What the benchmarks share: a throwaway database and percentiles."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from bot.config import normalise_database_url


@contextmanager
def scratch_database(url: str | None, *, script: str = "bench") -> Iterator[str]:
    """A temporary SQLite file (``None``), or a throwaway database created beside ``url`` and
    dropped afterwards. An unreachable server stops the run with one line."""
    if url is None:
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{Path(tmp) / 'bench.db'}"
        return
    admin_url = normalise_database_url(url)
    if make_url(admin_url).get_backend_name() == "sqlite":
        yield admin_url
        return
    name = f"firebreak_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        shown = make_url(admin_url).render_as_string(hide_password=True)
        raise SystemExit(
            f"{script}: cannot create a scratch database on {shown}: {reason}\n"
            "Start PostgreSQL, or pass --database-url."
        ) from None
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` by the nearest-rank method."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
