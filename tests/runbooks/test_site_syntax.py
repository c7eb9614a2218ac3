"""Runbooks from documentation sites (MkDocs, Docusaurus, Hugo, Jekyll) and the layouts real
runbook repositories use: commands inside call-outs and shortcodes reach Slack as written, the
sites' tags are not shown, and what to do is a step, not context."""

from __future__ import annotations

from pathlib import Path

from bot.runbooks.catalog import RunbookCatalog
from bot.runbooks.parser import parse_runbook
from bot.runbooks.site_syntax import to_commonmark
from bot.slack.runbook_messages import render_runbook_pages


def shown(text: str) -> str:
    runbook = parse_runbook(text, runbook_id="r")
    return "\n".join(
        b["text"]["text"]
        for page in render_runbook_pages(runbook, steps_per_page=20)
        for b in page.blocks
        if b["type"] == "section"
    )


def test_commands_inside_a_mkdocs_call_out_stay_separate_lines() -> None:
    text = """\
# Node drain

## Mitigation

!!! Danger "Drain & restart <db> first"
    Run:

    ```bash
    kubectl drain node-1 --ignore-daemonsets
    kubectl delete pod db-1
    ```

1. Check health.
"""
    out = shown(text)
    assert "```\nkubectl drain node-1 --ignore-daemonsets\nkubectl delete pod db-1\n```" in out
    # The marker is a label, its title escaped once ("&amp;", never "&amp;amp;").
    assert ":warning: *Drain &amp; restart &lt;db&gt; first*" in out
    assert "!!!" not in out and "&amp;amp;" not in out


def test_docusaurus_call_outs_tabs_and_imports_are_not_shown_as_text() -> None:
    text = """\
# Restore

import Tabs from '@theme/Tabs';
import TabItem from '@theme/TabItem';

## Steps

:::note
Stop the application first.
:::

<Tabs>
<TabItem value="es" label="Elasticsearch">

1. Restore the templates: `curl -XPOST es:9200/_snapshot/s/restore`

</TabItem>
<TabItem value="os" label="OpenSearch">

1. Restore the templates: `curl -XPOST os:9200/_snapshot/s/restore`

</TabItem>
</Tabs>
"""
    out = shown(text)
    for debris in (":::", "import Tabs", "<Tabs>", "TabItem"):
        assert debris not in out
    assert "Stop the application first." in out
    assert out.index("*Elasticsearch*") < out.index("*OpenSearch*") < out.rindex("os:9200")


def test_a_hugo_text_shortcode_is_a_code_block_kept_byte_for_byte() -> None:
    command = (
        "$ kubectl -n istio-system patch deployment istiod \\\n"
        '    -p "{\\"spec\\":{\\"template\\":{}}}"\n'
        "$ kubectl get pods -o jsonpath='{.items[*].metadata.name}'"
    )
    text = f"""\
# Sidecar injection

## Mitigation

Restart istiod:

{{{{< text bash >}}}}
{command}
{{{{< /text >}}}}

{{{{% comment %}}}}
Authors: keep this in sync with the install guide.
{{{{% /comment %}}}}
{{% include_cached copy-clipboard.html %}}
{{{{site.data.alerts.callout_info}}}}
"""
    runbook = parse_runbook(text, runbook_id="istio")
    [step] = runbook.steps
    assert f"```bash\n{command}\n```" in step.markdown
    out = shown(text)
    assert command.replace("&", "&amp;") in out
    for debris in ("{{", "{%", "Authors:"):
        assert debris not in out


def test_rewriting_keeps_every_line_where_it_was() -> None:
    lines = ["# T", "", "!!! note", "    body", "", "{{< text bash >}}", "ls", "{{< /text >}}"]
    assert len(to_commonmark(lines)) == len(lines)
    fenced = ["```", "!!! note", "    not a call-out inside code", "```"]
    assert to_commonmark(fenced) == fenced


def test_alert_sections_without_sub_headings_are_steps_not_context() -> None:
    """Grafana Mimir's runbooks: ``## Alerts`` then ``### <Alert>`` sections that say what to
    do in their text and lists; the fix used to be one long context, cut in Slack."""
    text = """\
# Ingester runbooks

## Alerts

### IngesterReachingSeriesLimit

This alert fires when an ingester nears its series limit.

How to **fix** it:

1. **Temporarily increase the limit**<br />
   Raise `max_series` in the runtime config.
2. **Scale up ingesters**<br />
   More ingesters hold fewer series each.

### CompactorUnhealthy

Use the Forget button on the ring page to drop unhealthy compactors.
"""
    runbook = parse_runbook(text, runbook_id="ingester")
    assert runbook.context == ()
    titles = [(s.title, s.section) for s in runbook.steps]
    assert ("Temporarily increase the limit", "IngesterReachingSeriesLimit") in titles
    assert ("Scale up ingesters", "IngesterReachingSeriesLimit") in titles
    assert titles[-1] == ("CompactorUnhealthy", "CompactorUnhealthy")


def test_what_to_do_under_a_cause_heading_is_steps() -> None:
    text = """\
# Certificate re-issued in a loop

## Cause 1: another controller rewrites the Secret

### Description

An external secret manager overwrites the certificate's Secret.

### Diagnosis

1. Check the Certificate's events for re-issuance.
2. Look at the Secret's managed fields.

### Fix

Stop the other controller from managing the Secret.
"""
    runbook = parse_runbook(text, runbook_id="loop")
    assert [s.title for s in runbook.steps] == [
        "Check the Certificate's events for re-issuance.",
        "Look at the Secret's managed fields.",
        "Fix",
    ]
    assert "Description" in [c.title for c in runbook.context]


def test_a_section_that_tells_what_to_do_is_a_step_whatever_its_heading_says() -> None:
    text = """\
# Account compromise

## Cut off the attack vector

* Delete every access key except your own.
* Rotate your MFA tokens.

## Forensic analysis

Snapshot the volumes before anything is changed.

## Assess risk

1. List what the keys could reach.

## History

The playbook was written after the 2023 incident.
"""
    runbook = parse_runbook(text, runbook_id="compromise")
    assert [s.title for s in runbook.steps] == [
        "Cut off the attack vector",
        "Forensic analysis",
        "List what the keys could reach.",
    ]
    assert [c.title for c in runbook.context] == ["History"]


def test_a_hugo_section_page_is_a_runbook_named_after_its_directory(tmp_path: Path) -> None:
    section = tmp_path / "mimir-runbooks"
    section.mkdir()
    (section / "_index.md").write_text(
        "# Mimir runbooks\n\n## Alerts\n\n### MimirIngesterRestarts\n\n1. Check the pod logs\n",
        encoding="utf-8",
    )
    (section / "_partial.md").write_text("# A partial\n\n1. Not a runbook\n", encoding="utf-8")
    catalog = RunbookCatalog.load([tmp_path])
    assert [r.id for r in catalog] == ["mimir-runbooks"]
    # Mimir's alerts link there: .../mimir-runbooks/#mimiringesterrestarts
    from bot.alerts.routing import runbooks_named_by

    found = runbooks_named_by(
        catalog,
        "https://grafana.com/docs/mimir/latest/manage/mimir-runbooks/#mimiringesterrestarts",
    )
    assert [r.id for r in found] == ["mimir-runbooks"]


def test_inline_code_in_triple_backticks_does_not_open_a_fence() -> None:
    # CommonMark: a backtick fence's info string holds no backtick, so this line is inline
    # code; the block after it is the real fence and its template lines are the command's.
    command = (
        '{% for host in hosts %}\nssh {{ host }} uptime\n{% endfor %}\n!!! warning "x"\n    hi'
    )
    text = f"""\
# Ping

## Steps

```ansible -m ping all```

```
{command}
```
"""
    [step] = parse_runbook(text, runbook_id="ping").steps
    assert f"```\n{command}\n```" in step.markdown
    assert f"```\n{command}\n```" in shown(text)  # no call-out made of the code's "!!!" line


def test_template_lines_inside_pre_are_the_command_s() -> None:
    text = """\
# Canary

## Steps

<pre>
{% if canary %}
curl -fsS https://canary.example.com/health
{% endif %}
</pre>

{% include footer.html %}
"""
    [step] = parse_runbook(text, runbook_id="canary").steps
    pre = "<pre>\n{% if canary %}\ncurl -fsS https://canary.example.com/health\n{% endif %}\n</pre>"
    assert pre in step.markdown
    out = shown(text)
    assert "{% if canary %}\ncurl" in out and "{% endif %}" in out
    assert "footer" not in out  # a template line outside it is still left out


def test_mkdocs_content_tabs_are_labelled_blocks_with_clean_commands() -> None:
    text = """\
# Restart the API

## Mitigation

=== "Kubernetes"

    Roll the deployment:

    ```bash
    kubectl -n api rollout restart deploy/api
    ```

===! "Docker Compose"

    !!! note
        Run it on the host.

    ```bash
    docker compose restart api
    ```

## Verify

Check the dashboard.
"""
    runbook = parse_runbook(text, runbook_id="api")
    markdown = "\n".join(step.markdown for step in runbook.steps)
    titles = [step.title for step in runbook.steps]
    assert "===" not in markdown and not any("===" in title for title in titles)
    assert "```bash\nkubectl -n api rollout restart deploy/api\n```" in markdown
    assert "```bash\ndocker compose restart api\n```" in markdown
    out = shown(text)
    assert out.index("*Kubernetes*") < out.index("kubectl") < out.index("*Docker Compose*")
    assert out.index("*Docker Compose*") < out.index("Run it on the host.") < out.index("docker ")
    assert "```\nkubectl -n api rollout restart deploy/api\n```" in out
    assert "!!!" not in out and "===" not in out


QUOTED_FENCE = """\
# Drain a node

## Mitigation

1. Cordon the node and check what still runs on it:
   > ```sh
   > kubectl cordon "$NODE"
>
   > kubectl get pods --all-namespaces --field-selector spec.nodeName="$NODE"
   > ```
2. Drain it: `kubectl drain "$NODE" --ignore-daemonsets`
"""


def test_a_bare_quote_line_inside_a_quoted_command_keeps_the_command_whole() -> None:
    """A quote's empty line written as ``>`` at column 0 inside a quote indented under a list
    item ended the item: the command was cut after its first line, the rest shown as quoted
    text outside the code block (and lint said the fence was never closed)."""
    runbook = parse_runbook(QUOTED_FENCE, runbook_id="drain")
    cordon, drain = runbook.steps
    assert cordon.title == "Cordon the node and check what still runs on it"
    assert cordon.markdown == (
        "Cordon the node and check what still runs on it:\n"
        '> ```sh\n> kubectl cordon "$NODE"\n>\n'
        '> kubectl get pods --all-namespaces --field-selector spec.nodeName="$NODE"\n> ```'
    )
    assert drain.title.startswith("Drain it")
    assert runbook.problems == ()
