"""docker-compose.yml: Firebreak and PostgreSQL with one command. No Docker engine runs here, so
the file's shape is checked: services, health checks, start order, settings, ports, volumes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from bot.config import Settings, normalise_database_url
from bot.effects.runner import CALL_GRACE
from bot.server import GRACEFUL_SECONDS

ROOT = Path(__file__).resolve().parents[1]
_VARIABLE = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def with_defaults(value: str) -> str:
    """Compose's ``${NAME:-default}`` with nothing set: the default."""
    return _VARIABLE.sub(lambda m: m.group(2) or "", value)


def test_two_services_and_the_volumes_they_keep_data_in() -> None:
    data = compose()
    assert set(data["services"]) == {"db", "firebreak"}
    assert set(data["volumes"]) == {"db-data", "postmortems"}
    assert "db-data:/var/lib/postgresql/data" in data["services"]["db"]["volumes"]
    assert "postmortems:/app/postmortems" in data["services"]["firebreak"]["volumes"]


def test_firebreak_starts_once_postgresql_is_healthy() -> None:
    services = compose()["services"]
    assert services["firebreak"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    db_check = services["db"]["healthcheck"]["test"]
    assert db_check[0] == "CMD-SHELL" and "pg_isready" in db_check[1]
    web_check = services["firebreak"]["healthcheck"]["test"]
    assert web_check[0] == "CMD" and "http://127.0.0.1:3000/healthz" in web_check[-1]


def test_firebreak_uses_the_database_service_and_known_settings() -> None:
    services = compose()["services"]
    db_env = services["db"]["environment"]
    env = services["firebreak"]["environment"]
    url = with_defaults(env["DATABASE_URL"])
    user, password, database = (
        db_env["POSTGRES_USER"],
        with_defaults(db_env["POSTGRES_PASSWORD"]),
        db_env["POSTGRES_DB"],
    )
    assert url == f"postgresql://{user}:{password}@db:5432/{database}"
    assert normalise_database_url(url).startswith("postgresql+psycopg://")
    aliases = {field.alias for field in Settings.model_fields.values()}
    assert set(env) <= aliases, f"unknown settings: {sorted(set(env) - aliases)}"
    assert env["FIREBREAK_HOST"] == "0.0.0.0"
    assert services["firebreak"]["env_file"] == [{"path": ".env", "required": True}]


def test_the_port_is_published_on_localhost() -> None:
    firebreak = compose()["services"]["firebreak"]
    assert firebreak["ports"] == ["127.0.0.1:3000:3000"]
    assert firebreak["environment"]["PORT"] == "3000"


def test_the_policy_and_runbooks_it_mounts_exist() -> None:
    for volume in compose()["services"]["firebreak"]["volumes"]:
        source = volume.split(":")[0]
        if source.startswith("./"):
            assert (ROOT / source).exists(), source


def test_docker_waits_for_the_shutdown_to_finish_what_was_acknowledged() -> None:
    """Docker kills a container 10 s after SIGTERM unless told otherwise."""
    grace = compose()["services"]["firebreak"]["stop_grace_period"]
    worst = GRACEFUL_SECONDS + GRACEFUL_SECONDS + CALL_GRACE
    assert grace.endswith("s") and int(grace[:-1]) > worst
