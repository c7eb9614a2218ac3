"""The running Firebreak: configuration, database and Slack gateway, built once per process.

Nothing here is module-level state: tests and the demo build as many as they need.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import Policy, Settings, load_configuration
from bot.db import Database
from bot.slack.gateway import SlackGateway, build_client

if TYPE_CHECKING:
    from bot.runbooks.catalog import RunbookCatalog


def new_worker_id() -> str:
    """Unique per process, and readable in the database: ``host:pid:random``."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass
class Firebreak:
    settings: Settings
    policy: Policy
    db: Database
    gateway: SlackGateway
    catalog: RunbookCatalog | None = field(default=None)

    @classmethod
    def create(
        cls,
        settings: Settings,
        policy: Policy,
        *,
        database: Database | None = None,
        catalog: RunbookCatalog | None = None,
    ) -> Firebreak:
        token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
        gateway = SlackGateway(build_client(token, settings.slack_api_url))
        return cls(
            settings=settings,
            policy=policy,
            db=database or Database(settings.database_url),
            gateway=gateway,
            catalog=catalog,
        )

    @classmethod
    def from_environment(cls, policy_file: Path | None = None) -> Firebreak:
        settings, policy = load_configuration(policy_file)
        return cls.create(settings, policy)

    def close(self) -> None:
        self.db.dispose()
        self.gateway.close()
