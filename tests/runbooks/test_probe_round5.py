"""Runbooks as teams really write them, from the fifth probe: a folded manual way under a step
stays that step's, a table's links keep their targets in Slack, and an alert's link to the
published page finds the runbook."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.alerts.routing import runbooks_named_by
from bot.runbooks.catalog import RunbookCatalog
from bot.runbooks.parser import parse_runbook
from bot.slack.runbook_messages import markdown_to_mrkdwn

DETAILS_IN_NUMBERED = """\
# Database restore

## Steps

1. Stop writes.
<details><summary>Manual way</summary>

1. Open the admin UI.
2. Toggle read-only.

</details>

2. Restore the snapshot.
3. Resume writes.
"""

DETAILS_IN_CHECKLIST = """\
# Database restore

## Steps

- [ ] Stop writes.
<details><summary>Manual way</summary>

- [ ] Open the admin UI.

```sh
admin-cli set read-only --cluster orders
```

</details>

- [ ] Restore the snapshot.
- [ ] Resume writes.
"""


@pytest.mark.parametrize("text", [DETAILS_IN_NUMBERED, DETAILS_IN_CHECKLIST])
def test_a_list_folded_in_details_after_an_item_is_part_of_that_item(text: str) -> None:
    steps = parse_runbook(text, runbook_id="restore").steps
    assert [s.title for s in steps] == ["Stop writes.", "Restore the snapshot.", "Resume writes."]
    first = steps[0].markdown
    assert first.startswith("Stop writes.\n\n<details><summary>Manual way</summary>")
    assert "Open the admin UI." in first and first.endswith("</details>")
    assert "admin-cli" not in steps[1].markdown
    if "admin-cli" in text:
        assert "```sh\nadmin-cli set read-only --cluster orders\n```" in first
        assert "```\nadmin-cli set read-only --cluster orders\n```" in markdown_to_mrkdwn(first)


DASHBOARDS = """\
# Checkout latency

## Diagnosis

Check the dashboards:

| Signal | Where |
|---|---|
| Latency | [Grafana](https://grafana.example.com/d/x?var-env=prod&from=now-1h) |
| Logs | [Kibana][kib] |
| Traces | <a href="https://tempo.example.com/explore">Tempo</a> |
| Runbook | [more](../payments/latency.md) |
| Status | [https://status.example.com](https://evil.example.net/login) |

## Links

[kib]: https://kibana.example.com/app/discover#/view/checkout
"""


def test_a_table_s_links_keep_their_web_address_in_slack() -> None:
    runbook = parse_runbook(DASHBOARDS, runbook_id="latency")
    [step] = runbook.steps
    shown = markdown_to_mrkdwn(step.markdown)
    # A table is a code block, where Slack links nothing: the address is shown to copy.
    assert "Grafana (https://grafana.example.com/d/x?var-env=prod&amp;from=now-1h)" in shown
    assert "Kibana (https://kibana.example.com/app/discover#/view/checkout)" in shown
    assert "Tempo (https://tempo.example.com/explore)" in shown
    # Only web addresses: a relative path means nothing in Slack; a label naming another
    # address than the target shows the target alone.
    assert "more" in shown and "latency.md" not in shown
    assert "https://evil.example.net/login" in shown and "status.example.com" not in shown
    rows = [line for line in shown.splitlines() if " | " in line]
    assert len(rows) == 6 and len({line.index("|") for line in rows}) == 1  # still aligned


def test_slack_markup_in_an_html_block_is_shown_as_written() -> None:
    shown = markdown_to_mrkdwn(
        "<details><summary>Page <!here> only for SEV1</summary>\n"
        "<p>Ask <!subteam^S1|@oncall> first. <!-- a note to authors --></p>\n</details>"
    )
    assert "*Page &lt;!here&gt; only for SEV1*" in shown
    assert "Ask &lt;!subteam^S1|@oncall&gt; first." in shown
    assert "<!" not in shown and "authors" not in shown


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("https://wiki.example.com/runbooks/node/disk-full.html", ["node/disk-full"]),
        ("https://wiki.example.com/runbooks/node/disk-full.htm", ["node/disk-full"]),
        ("https://wiki.example.com/runbooks/node/disk-full/index.html", ["node/disk-full"]),
        ("https://wiki.example.com/runbooks/node/disk-full/", ["node/disk-full"]),
        ("https://github.com/acme/runbooks/blob/main/node/disk-full.md", ["node/disk-full"]),
        # a directory's own page: its index.md, as the site publishes it
        ("https://wiki.example.com/runbooks/kafka/", ["kafka/index"]),
        ("https://wiki.example.com/runbooks/kafka/index.html", ["kafka/index"]),
        # another directory's index page is not this one's
        ("https://wiki.example.com/runbooks/redis/index.html", []),
        ("https://wiki.example.com/runbooks/redis/", []),
    ],
)
def test_an_alert_s_link_to_the_published_page_names_its_runbook(
    tmp_path: Path, url: str, named: list[str]
) -> None:
    # (.md and a directory's address were read before; the published pages were not)
    catalog = _site(tmp_path)
    assert [r.id for r in runbooks_named_by(catalog, url)] == named


def test_a_runbook_typed_as_its_published_page_is_found(tmp_path: Path) -> None:
    catalog = _site(tmp_path)
    found = catalog.get("node/disk-full")
    assert found is not None
    assert catalog.get("node/disk-full.html") is found and catalog.get("disk-full.HTM") is found


def _site(root: Path) -> RunbookCatalog:
    for rid in ("node/disk-full", "kafka/index", "postgres/index"):
        path = root / f"{rid}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {rid}\n\n1. Look at it\n", encoding="utf-8")
    return RunbookCatalog.load([root])
