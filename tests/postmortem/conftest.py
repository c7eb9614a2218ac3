from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Policy, policy_from_dict


@pytest.fixture
def output_dir(tmp_path: Path) -> Path:
    return tmp_path / "postmortems"


@pytest.fixture
def team_policy(output_dir: Path) -> Policy:
    """A team in Berlin that writes drafts to a temporary directory (never the checkout)."""
    return policy_from_dict(
        {"timezone": "Europe/Berlin", "postmortem": {"output_dir": str(output_dir)}}
    )
