"""A runbook with no level-1 heading whose first heading is one of several sections at its
level is titled after its file, and a title never ends in ":"."""

from __future__ import annotations

from bot.runbooks.parser import parse_runbook

DOCKER = """\
To clear unused Docker images, follow these steps:

## docker system prune:

```
docker system prune
```

## Remove Images:

1. Remove unused images:

```
docker image prune
```
"""


def test_the_first_of_several_sections_does_not_title_the_runbook() -> None:
    runbook = parse_runbook(DOCKER, runbook_id="ops/docker-cleanup")

    assert runbook.title == "Docker cleanup"
    assert [s.section for s in runbook.steps] == ["docker system prune", "Remove Images"]


def test_a_title_never_ends_in_a_colon() -> None:
    runbook = parse_runbook("# Disk full:\n\n- [ ] Free space\n", runbook_id="disk")

    assert runbook.title == "Disk full"


def test_a_level_two_heading_alone_still_titles_the_runbook() -> None:
    runbook = parse_runbook("## Redis failover\n\n- [ ] Promote\n", runbook_id="redis")

    assert runbook.title == "Redis failover"
