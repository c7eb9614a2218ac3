"""Alerts in: Alertmanager, Grafana, Datadog, PagerDuty, Opsgenie and a generic JSON shape open,
group, update and resolve incidents. See docs/alerts.md."""
