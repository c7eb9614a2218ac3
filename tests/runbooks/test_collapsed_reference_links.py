"""A link written ``[label][]`` whose definition comes later in the file, outside the section
that uses it, is shown as a link, as ``[text][label]`` and ``[label]`` are."""

from __future__ import annotations

from bot.runbooks.parser import parse_runbook
from bot.slack.runbook_messages import render_runbook_pages

# Excerpt of alphagov/govuk-developer-docs
# source/manual/alerts/elasticsearch-cluster-health.html.md @02473dbb.
CLUSTER_HEALTH = """\
---
title: Elasticsearch cluster health
---

Elasticsearch reports cluster health as one of three possible states.

Icinga uses the `check_elasticsearch_aws` check from [nagios-plugins][] to
monitor the health of the AWS managed Elasticsearch cluster. This plugin uses
various endpoints of the Elasticsearch API, but also extrapolates additional
information to help you diagnose any problems.

[nagios-plugins]: https://github.com/alphagov/nagios-plugins/

### Investigating problems

#### View a live dashboard

The [AWS Console](https://eu-west-1.console.aws.amazon.com/es/home?region=eu-west-1#)
provides a dashboard with graphical UI showing the state of the cluster and
individual instances.  After logging into the console, you must [assume a
role](/manual/aws-console-access.html#1-click-quotswitch-rolequot-in-the-top-right-corner)
for the relevant environment to see the cluster (referred to as a 'domain' by AWS).

There are tabs for 'Cluster health' and 'Instance health'.  The graphs in the
console link to AWS Cloudwatch, where historic metrics can be viewed over custom
time periods.

### Fixing issues with the cluster

GOV.UK have a Enterprise level support plan with AWS for staging and
production. Since we are using a managed service, AWS should be the first point
of contact for fixing issues with the Elasticsearch cluster.  They can be
contacted by telephone, live chat or support request.
"""


def test_a_collapsed_reference_defined_after_its_section_is_a_link() -> None:
    runbook = parse_runbook(CLUSTER_HEALTH, runbook_id="es")
    shown = "\n".join(page.text for page in render_runbook_pages(runbook, steps_per_page=10))
    shown += "\n".join(
        str(page.blocks) for page in render_runbook_pages(runbook, steps_per_page=10)
    )

    assert "<https://github.com/alphagov/nagios-plugins/|nagios-plugins>" in shown
    assert "[nagios-plugins][]" not in shown
