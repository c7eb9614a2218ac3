"""Every table Firebreak stores, registered on one ``SQLModel.metadata``.

Each domain package keeps its own tables (``bot/models.py`` holds the incident core's). Alembic
and the test fixtures import this module, so a new package's tables are seen by migrations,
the drift check and the per-test reset by adding one import here.
"""

from __future__ import annotations

from sqlmodel import SQLModel

import bot.alerts.models
import bot.audit.models  # audit: the append-only guard
import bot.effects.models
import bot.models  # noqa: F401  (the incident core's tables)

metadata = SQLModel.metadata
