"""``firebreak runbooks lint | show | list`` and the starter runbooks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.config import policy_from_dict
from bot.runbooks.catalog import RunbookCatalog
from bot.runbooks.lint import lint_paths
from bot.runbooks.parser import MAX_FILE_BYTES
from bot.slack.limits import message_errors
from bot.slack.runbook_messages.fit import SLACK_CHECKS
from tests.conftest import Run

REPO = Path(__file__).resolve().parents[2]
GOOD = "---\ntitle: Disk full\n---\n# Disk full\n\n- [ ] Check `df -h`\n- [ ] Free space\n"


def write(root: Path, name: str, text: str | bytes) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def findings(root: Path) -> list[tuple[str, int, str, str]]:
    report = lint_paths([root], checks=SLACK_CHECKS)
    return [(Path(m.path).name, m.line, m.level, m.message) for m in report.messages]


def levels(root: Path) -> list[tuple[str, int, str]]:
    return [(name, line, level) for name, line, level, _ in findings(root)]


def test_a_good_runbook_has_no_findings(tmp_path: Path) -> None:
    write(tmp_path, "disk.md", GOOD)

    assert findings(tmp_path) == []


def test_invalid_yaml_front_matter_is_an_error_at_its_line(tmp_path: Path) -> None:
    write(tmp_path, "bad.md", "---\ntitle: ok\nservices: [a\n---\n- [ ] x\n")

    ((name, line, level, message),) = findings(tmp_path)
    assert (name, level) == ("bad.md", "error")
    assert line in (3, 4)
    assert message.startswith("invalid YAML front matter")


def test_front_matter_types_and_misspelt_keys(tmp_path: Path) -> None:
    write(tmp_path, "t.md", "---\ntitle: [a]\nservics: [x]\nweight: 3\n---\n- [ ] x\n")

    result = findings(tmp_path)
    assert ("t.md", 2, "error", "front matter 'title' must be text, not a list or map") in result
    assert (
        "t.md",
        1,
        "warning",
        "unknown front-matter key 'servics': did you mean 'services'?",
    ) in result
    assert not any("weight" in message for *_, message in result)


def test_binary_huge_and_empty_files_are_errors(tmp_path: Path) -> None:
    write(tmp_path, "image.md", b"\x89PNG\r\n\x1a\n\x00\x00")
    write(tmp_path, "huge.md", "- [ ] x\n" * (5 * 1024 * 1024 // 8))
    write(tmp_path, "empty.md", "")
    write(tmp_path, "title-only.md", "---\ntitle: Nothing yet\n---\n# Nothing yet\n")
    assert (tmp_path / "huge.md").stat().st_size > MAX_FILE_BYTES

    result = {name: message for name, _, level, message in findings(tmp_path) if level == "error"}
    assert "binary file" in result["image.md"]
    assert "5,242,880 bytes" in result["huge.md"]
    assert result["empty.md"].startswith("empty runbook")
    assert result["title-only.md"].startswith("empty runbook")


def test_unterminated_fence_and_step_without_text(tmp_path: Path) -> None:
    write(tmp_path, "f.md", "# X\n\n## Diagnosis\n\n## Mitigation\n\n```sh\nkubectl get pods\n")

    assert findings(tmp_path) == [
        (
            "f.md",
            3,
            "error",
            "step 1 ('Diagnosis') has no text: write what responders should do, or remove the "
            "heading",
        ),
        (
            "f.md",
            7,
            "error",
            "code block opened with ``` is never closed: add a line with ``` after the code",
        ),
    ]


def test_a_heading_that_is_itself_an_instruction_needs_no_text(tmp_path: Path) -> None:
    text = "# X\n\n## Steps\n\n### Restart the ingress pods\n\n### Verify\n\nok\n"
    write(tmp_path, "ok.md", text)

    assert findings(tmp_path) == []


def test_broken_relative_links_are_errors(tmp_path: Path) -> None:
    write(tmp_path, "other.md", GOOD.replace("Disk full", "Other"))
    write(tmp_path, "img/graph.png", b"\x89PNG")
    text = (
        "# Links\n\n- [ ] See [other](other.md), [hugo](other) and [web](https://x.io)\n"
        "- [ ] ![graph](img/graph.png) [anchor](#x) [gone](missing.md#part)\n"
        "- [ ] ![lost](img/lost.png)\n"
    )
    write(tmp_path, "links.md", text)

    assert [f for f in findings(tmp_path) if f[0] == "links.md"] == [
        ("links.md", 4, "error", "broken link: missing.md does not exist"),
        ("links.md", 5, "error", "broken image: img/lost.png does not exist"),
    ]


def test_duplicate_ids_across_directories_and_duplicate_titles(tmp_path: Path) -> None:
    write(tmp_path / "a", "db.md", GOOD)
    write(tmp_path / "b", "db.md", GOOD.replace("Disk full", "Database"))
    write(tmp_path / "b", "disk.md", GOOD)

    report = lint_paths([tmp_path / "a", tmp_path / "b"], checks=SLACK_CHECKS)
    messages = [
        (Path(m.path).parent.name, m.level, m.message.split(" (")[0]) for m in report.messages
    ]
    assert ("b", "error", "duplicate runbook id 'db'") in messages
    assert ("b", "warning", "duplicate title 'Disk full'") in messages


def test_content_slack_cannot_show(tmp_path: Path) -> None:
    write(tmp_path, "wide.md", "# W\n\n- [ ] " + "x" * 3_500 + "\n")
    steps = "\n".join(f"- [ ] step {i}" for i in range(300))
    write(tmp_path, "many.md", f"# Many\n\n{steps}\n")
    long_step = "# L\n\n## Mitigation\n\n" + "\n\n".join(["word " * 400] * 12)
    write(tmp_path, "long.md", long_step)

    result = levels(tmp_path)
    assert ("wide.md", 3, "error") in result
    assert ("many.md", 1, "warning") in result
    assert ("long.md", 3, "warning") in result
    assert not any(name == "many.md" and level == "error" for name, _, level in result)
    assert not any(name == "long.md" and level == "error" for name, _, level in result)


def test_unknown_severities_and_extensionless_markdown_are_warnings(tmp_path: Path) -> None:
    write(tmp_path, "sev.md", "---\nseverities: [P1]\n---\n- [ ] x\n")
    write(tmp_path, "KubeThing", "# KubeThing\n\n## Mitigation\n\nx\n")
    write(tmp_path, "LICENSE", "# Apache License\n")
    write(tmp_path, "_index.md", "---\ntitle: section\n---\n")

    assert levels(tmp_path) == [("KubeThing", 1, "warning"), ("sev.md", 1, "warning")]


def test_lint_command_prints_file_line_level_message_and_exits_1_on_errors(
    run: Run, tmp_path: Path
) -> None:
    write(tmp_path, "books/good.md", GOOD)
    write(tmp_path, "books/bad.md", "---\ntitle: [x\n---\n- [ ] y\n")

    code, out, err = run("runbooks", "lint", "books")

    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith("books/bad.md:2: error: invalid YAML front matter")
    assert lines[-1] == "2 runbooks checked: 1 error, 0 warnings"
    assert err == ""

    code, out, _ = run("runbooks", "lint", "books/good.md")
    assert (code, out) == (0, "1 runbook checked: 0 errors, 0 warnings\n")


def test_lint_defaults_to_the_policy_paths(run: Run, tmp_path: Path) -> None:
    write(tmp_path, "firebreak.toml", '[runbooks]\npaths = ["team", "shared"]\n')
    write(tmp_path, "team/a.md", GOOD)
    write(tmp_path, "shared/b.md", "")

    code, out, _ = run("runbooks", "lint")

    assert code == 1
    assert out.splitlines() == [
        "shared/b.md:1: error: empty runbook: write the steps as a checklist (- [ ] ...) or "
        "under a heading such as '## Mitigation'",
        "2 runbooks checked: 1 error, 0 warnings",
    ]


def test_show_prints_the_steps_as_the_bot_posts_them(run: Run, tmp_path: Path) -> None:
    write(tmp_path, "runbooks/disk.md", GOOD)

    code, out, _ = run("runbooks", "show", "runbooks/disk.md")

    assert code == 0
    assert out.startswith("Runbook: Disk full\n")
    assert ":arrow_forward: *1.* Check `df -h`" in out
    assert "[Done] [Skip] [Assign…]" in out


def test_show_json_has_the_parsed_runbook_and_valid_blocks(run: Run, tmp_path: Path) -> None:
    steps = "\n".join(f"- [ ] step {i}" for i in range(25))
    write(tmp_path, "runbooks/ops/many.md", f"# Many\n\n{steps}\n")

    code, out, _ = run("runbooks", "show", "runbooks/ops/many.md", "--json")

    assert code == 0
    document = json.loads(out)
    assert document["id"] == "ops/many"
    assert len(document["snapshot"]["steps"]) == 25
    assert len(document["pages"]) == 3
    for page in document["pages"]:
        assert message_errors(page["text"], page["blocks"]) == []


def test_show_reports_a_missing_or_binary_file_in_one_line(run: Run, tmp_path: Path) -> None:
    write(tmp_path, "bin.md", b"\x00\x01")

    assert run("runbooks", "show", "nope.md") == (1, "", "firebreak: nope.md: no such file\n")
    code, out, err = run("runbooks", "show", "bin.md")
    assert (code, out) == (1, "")
    assert err.startswith("firebreak: bin.md:1: binary file") and err.count("\n") == 1


def test_list_shows_ids_titles_steps_and_what_they_match(run: Run, tmp_path: Path) -> None:
    write(tmp_path, "runbooks/disk.md", GOOD.replace("title:", "services: [api]\ntitle:"))
    write(tmp_path, "runbooks/k8s/KubePodCrashLooping.md", "# KubePodCrashLooping\n\n1. a\n")
    write(tmp_path, "runbooks/broken.md", b"\x00")

    code, out, err = run("runbooks", "list")

    assert code == 0
    rows = [line.split() for line in out.splitlines()]
    assert rows[0] == ["ID", "TITLE", "STEPS", "SERVICES/ALERTS"]
    assert rows[1] == ["disk", "Disk", "full", "2", "service", "api"]
    assert rows[2] == ["k8s/KubePodCrashLooping", "KubePodCrashLooping", "1"]
    assert "broken.md: skipped: binary file" in err


def test_usage_errors_exit_2(run: Run) -> None:
    with pytest.raises(SystemExit) as info:
        run("runbooks", "show")
    assert info.value.code == 2


# --------------------------------------------------------------------------------------------
# The starter set


def test_the_starter_runbooks_pass_lint_and_cover_the_common_incidents() -> None:
    directory = REPO / "runbooks"
    report = lint_paths([directory], policy=policy_from_dict({}), checks=SLACK_CHECKS)

    assert [m.format() for m in report.messages if m.level == "error"] == []
    catalog = RunbookCatalog.load([directory])
    assert len(catalog) >= 10
    for runbook in catalog:
        assert runbook.problems == ()
        assert runbook.description and runbook.tags and runbook.owner and runbook.alerts
        assert runbook.severities
        assert len(runbook.steps) >= 5, runbook.id
    styles = {bool(r.context and r.context[0].title == "Meaning") for r in catalog}
    assert styles == {True, False}  # both prose and checklist runbooks


@pytest.mark.parametrize(
    ("incident", "expected"),
    [
        ({"title": "Checkout 500 errors", "alerts": ["HTTP5xxRateHigh"]}, "high-error-rate"),
        ({"title": "API p99 latency very high"}, "high-latency"),
        ({"title": "Postgres too many clients"}, "database-connection-exhaustion"),
        ({"title": "Disk full on db-3", "alerts": ["NodeFilesystemAlmostOutOfSpace"]}, "disk-full"),
        ({"title": "TLS certificate expired for api.example.com"}, "certificate-expiry"),
        ({"title": "Kafka consumer lag on orders topic"}, "kafka-consumer-lag"),
        ({"title": "us-east-1a availability zone degraded"}, "cloud-zone-degradation"),
        ({"title": "AWS access key leaked on GitHub", "severity": "SEV1"}, "leaked-credential"),
        ({"title": "Stripe outage: payments failing"}, "third-party-outage"),
        ({"title": "Bad deploy, need to roll back"}, "bad-deploy-rollback"),
    ],
)
def test_the_starter_runbooks_are_suggested_for_their_incidents(
    incident: dict[str, object], expected: str
) -> None:
    catalog = RunbookCatalog.load([REPO / "runbooks"], policy=policy_from_dict({}))

    matches = catalog.match(**incident)  # type: ignore[arg-type]
    assert matches and matches[0].runbook.id == expected, [
        (m.runbook.id, m.score) for m in matches[:3]
    ]


def test_a_long_prose_line_is_wrapped_but_a_long_command_or_word_is_an_error(
    tmp_path: Path,
) -> None:
    sentence = "Check the vendor status page and confirm with support before failing over. "
    write(tmp_path, "prose.md", "# P\n\n## Mitigation\n\n" + sentence * 45 + "\n")
    command = "kubectl annotate pod api " + " ".join(f"key{i}=value{i}" for i in range(300))
    write(tmp_path, "code.md", f"# C\n\n## Mitigation\n\n```sh\n{command}\n```\n")
    write(tmp_path, "url.md", "# U\n\n## Mitigation\n\nOpen https://x.io/" + "a" * 3_000 + "\n")

    result = levels(tmp_path)
    assert not any(name == "prose.md" for name, _, _ in result)
    assert ("code.md", 6, "error") in result
    assert ("url.md", 5, "error") in result


def test_a_file_that_is_not_utf8_is_reported_at_its_line(run: Run, tmp_path: Path) -> None:
    text = "# Disk full\n\n1. Check free space \u2013 run `df -h`\n".encode("cp1252")
    write(tmp_path, "disk.md", text)

    assert findings(tmp_path) == [
        (
            "disk.md",
            3,
            "error",
            "not UTF-8 text (byte 0x96 in column 21): save the file as UTF-8",
        )
    ]
    code, out, err = run("runbooks", "show", "disk.md")
    assert (code, out) == (1, "")
    assert err == (
        "firebreak: disk.md:3: not UTF-8 text (byte 0x96 in column 21): save the file as UTF-8\n"
    )


def test_show_on_a_directory_says_it_takes_a_file(run: Run, tmp_path: Path) -> None:
    (tmp_path / "ops").mkdir()
    assert run("runbooks", "show", "ops") == (
        1,
        "",
        "firebreak: ops: a directory; show takes one runbook file (`firebreak runbooks list` "
        "lists them all)\n",
    )


def test_a_file_over_the_limit_says_its_size_and_the_limit(tmp_path: Path) -> None:
    write(tmp_path, "big.md", "# Big\n\n" + "x" * MAX_FILE_BYTES)
    assert findings(tmp_path) == [
        (
            "big.md",
            1,
            "error",
            f"the file is {MAX_FILE_BYTES + 7:,} bytes; runbooks over 1 MB (1,048,576 bytes) "
            "are not loaded: split it into smaller runbooks",
        )
    ]


def test_a_directory_with_no_runbook_is_an_error_not_a_silent_pass(tmp_path: Path) -> None:
    """A CI job pointed at the wrong directory (or at one whose only file is README.md)
    checked nothing and passed."""
    (tmp_path / "README.md").write_text("# Our runbooks\n\nSee below.\n", encoding="utf-8")
    report = lint_paths([tmp_path])
    [message] = report.messages
    assert (message.level, message.line) == ("error", 0)
    assert message.message.startswith("no runbooks here: the bot reads files ending in .md")


@pytest.mark.parametrize("links", [{"loop.md": "loop.md"}, {"a.md": "b.md", "b.md": "a.md"}])
def test_a_link_in_a_loop_is_a_file_that_cannot_be_read_not_a_crash(
    run: Run, tmp_path: Path, links: dict[str, str]
) -> None:
    (tmp_path / "books").mkdir()
    for name, target in links.items():
        (tmp_path / "books" / name).symlink_to(target)
    unreadable = "cannot read the file: Too many levels of symbolic links"

    code, out, err = run("runbooks", "lint", "books")
    assert (code, err) == (1, "")
    assert out.splitlines()[:-1] == [f"books/{name}:1: error: {unreadable}" for name in links]

    first = f"books/{next(iter(links))}"
    code, out, _ = run("runbooks", "lint", first)
    assert (code, out.splitlines()[0]) == (1, f"{first}:1: error: {unreadable}")
    assert run("runbooks", "show", first) == (1, "", f"firebreak: {first}:1: {unreadable}\n")


REDIS = """---
alerts: [RedisDown]
---
# Redis

## Mitigation

1. Restart the primary: `kubectl -n cache rollout restart statefulset/redis`
"""

INDEX = "# Kafka runbooks\n\nSee broker-down.md.\n"


def test_a_readme_naming_its_alerts_is_a_runbook_an_index_readme_is_not(tmp_path: Path) -> None:
    """One directory per service, its runbook in README.md (as GitLab's runbooks are kept): a
    README whose front matter names the alerts it answers is catalogued and matched; a README
    that is a directory's index is not, and linting it says why. Before, every README was
    skipped while `lint` on the file said it was fine."""
    write(tmp_path / "redis", "README.md", REDIS)
    write(tmp_path / "kafka", "README.md", INDEX)
    write(tmp_path / "kafka", "broker-down.md", GOOD)
    catalog = RunbookCatalog.load([tmp_path])
    assert sorted(r.id for r in catalog) == ["kafka/broker-down", "redis/README"]
    [match] = catalog.suggest(alerts=["RedisDown"], limit=1)
    assert match.runbook.id == "redis/README"
    report = lint_paths([tmp_path / "kafka" / "README.md"], checks=SLACK_CHECKS)
    [said] = [m for m in report.messages if m.level == "warning" and "README" in m.message]
    assert said.message.startswith("the bot reads a README.md as its directory's index")


def test_an_alert_named_by_two_runbooks_is_a_warning(tmp_path: Path) -> None:
    """Two runbooks both claim ``DiskFull``: the alert opens only one of them (its id sorts
    first), so the other's author is told. Before, lint said nothing."""

    def runbook(title: str, alerts: str) -> str:
        return f"---\ntitle: {title}\nalerts: [{alerts}]\n---\n# {title}\n\n- [ ] Check `df -h`\n"

    write(tmp_path, "disk-full.md", runbook("Disk full", "DiskFull, NodeDiskPressure"))
    write(tmp_path, "storage.md", runbook("Storage", "diskfull"))
    report = lint_paths([tmp_path], checks=SLACK_CHECKS)
    said = [(Path(m.path).name, m.message) for m in report.messages if "also named by" in m.message]
    assert said == [
        (
            "storage.md",
            f"alert 'DiskFull' is also named by {tmp_path / 'disk-full.md'}: the alert chooses "
            "that runbook (its id sorts first), this one only as a further suggestion; name "
            "each alert in one runbook",
        )
    ]


TEMPLATE = """\
# <Alert name>

## Meaning

TODO: what the alert means.

## Mitigation

1. TODO: the first thing to do
"""


@pytest.mark.parametrize("name", ["templates/TEMPLATE.md", "_template.md", "runbook-template.md"])
def test_a_runbook_template_is_skipped_and_lint_says_so(tmp_path: Path, name: str) -> None:
    """The template a team copies to write a runbook was catalogued as a runbook: suggested
    for incidents, its "TODO" steps offered to responders. It is skipped like an index
    README, and linting the directory says it was; with alerts in its front matter it is a
    runbook."""
    write(tmp_path, "disk-full.md", GOOD)
    write(tmp_path, name, TEMPLATE)
    catalog = RunbookCatalog.load([tmp_path])
    assert [r.id for r in catalog] == ["disk-full"]
    said = [(m.path, m.level, m.message) for m in lint_paths([tmp_path]).messages]
    assert [(Path(path).name, level) for path, level, _ in said] == [(Path(name).name, "warning")]
    assert said[0][2].startswith("skipped: a runbook template")

    write(tmp_path, name, "---\nalerts: [DiskFull]\n---\n" + TEMPLATE)
    catalog = RunbookCatalog.load([tmp_path])
    assert len(catalog) == 2
    [match] = catalog.suggest(alerts=["DiskFull"], limit=1)
    assert match.runbook.path == tmp_path / name
