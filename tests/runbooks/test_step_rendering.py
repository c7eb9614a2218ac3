"""What a responder sees of a step in Slack for content real runbooks hold: HTML comments
(notes to the authors) and code that itself contains a markdown fence."""

from __future__ import annotations

from bot.runbooks.parser import parse_runbook
from bot.slack.limits import message_errors
from bot.slack.runbook_messages import preview_run_view, render_run_message


def sections(markdown: str) -> list[str]:
    view = preview_run_view(parse_runbook(markdown, runbook_id="ops/test"), run_id=7)
    message = render_run_message(view, steps_per_page=10)
    assert message_errors(message.text, message.blocks) == []
    return [b["text"]["text"] for b in message.blocks if b["type"] == "section"]


def test_a_step_holding_only_an_html_comment_says_no_instructions_were_written() -> None:
    text = """\
# DNS failures

## Diagnosis

<!-- Owner: @net-team. Keep the commands in sync with the dashboard. -->
Check resolution from a pod.

## Mitigation

<!--
TODO: document the CoreDNS restart procedure
-->

## Verify

- [ ] `nslookup` returns an answer from every zone.
"""
    shown = "\n".join(sections(text))

    mitigation = shown.split("*2. Mitigation*", 1)[1].split("*3.*", 1)[0]
    assert "_No instructions were written for this step._" in mitigation
    assert "TODO" not in shown
    assert shown.count("No instructions were written") == 1


NESTED_FENCE = """\
# Post a status update

## Steps

Post this template in #status, including the code block:

````markdown
**Incident**: checkout 500s
```
curl -s https://status.example.com/api
```
````
"""


def test_a_fence_inside_code_does_not_end_the_slack_code_block() -> None:
    [shown] = [s for s in sections(NESTED_FENCE) if "Incident" in s]
    code = shown.split("\n```\n", 1)[1]

    # one code block: opened once, closed once at the very end
    assert code.endswith("\n```")
    body = code.removesuffix("\n```")
    assert "```" not in body
    # the text reads the same: the inner fences only hold invisible zero-width spaces
    assert body.replace("\u200b", "") == (
        "**Incident**: checkout 500s\n```\ncurl -s https://status.example.com/api\n```"
    )
