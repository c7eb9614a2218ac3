"""The text that introduces a command goes with it: a lead-in ending in ":" introduces the next
command even when a note sits between it and the code block (hmcts/ops-runbooks'
jenkins/builds-not-triggering.md)."""

from __future__ import annotations

from bot.runbooks.parser import parse_runbook

THREAD_DUMPS = """\
# Collect thread dumps

Normally I run it with something like:
```
./collectPerformanceData.sh 6 120 10
```

You can copy the tarball to your machine with:

(Replacing the pid if required, it's 6 in the example)

```
kubectl cp jenkins-0:/var/jenkins_home/performanceData.6.output.tar.gz .
```
"""


def test_a_lead_in_with_a_note_after_it_goes_with_the_next_command() -> None:
    runbook = parse_runbook(THREAD_DUMPS, runbook_id="jenkins/builds-not-triggering")

    first, second = runbook.steps
    assert first.title == "Normally I run it with something like"
    assert first.markdown == (
        "Normally I run it with something like:\n```\n./collectPerformanceData.sh 6 120 10\n```"
    )
    assert second.title == "You can copy the tarball to your machine with"
    assert second.markdown == (
        "You can copy the tarball to your machine with:\n\n"
        "(Replacing the pid if required, it's 6 in the example)\n\n"
        "```\nkubectl cp jenkins-0:/var/jenkins_home/performanceData.6.output.tar.gz .\n```"
    )


def test_a_remark_on_the_previous_command_still_stays_with_it() -> None:
    text = """\
# Restart

Run:
```
systemctl restart app
```

It takes a minute to come back.

Then check it:

```
systemctl status app
```
"""
    first, second = parse_runbook(text, runbook_id="restart").steps

    assert first.markdown.endswith("It takes a minute to come back.")
    assert second.markdown.startswith("Then check it:")
