"""What the policy says about a message: severity, service, dropped alerts, the runbook.

Pure functions of (policy, catalog, message): the receiver uses them to store, and
``firebreak alerts replay`` uses them to show what would happen, with no side effects.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from bot.alerts.model import Alert, AlertMessage, Status
from bot.config import Policy
from bot.config.lifecycle import short_level
from bot.runbooks.catalog import GENERIC_NAMES, RunbookCatalog, typed_name
from bot.runbooks.parser import Runbook


@dataclass(frozen=True)
class Route:
    """The decisions for one message."""

    severity: str
    """A severity key of the policy."""
    service: str | None
    dropped: frozenset[str]
    """Keys of the alerts that drop rules remove."""
    runbook: Runbook | None
    runbook_reason: str
    runbook_alerts: tuple[str, ...] = ()
    """Where in the runbook the firing alerts point (``runbook_url`` anchors, alert names): a
    run started for them opens at the section of the first one the runbook has."""


def mapped_severity(policy: Policy, raw: str | None) -> str | None:
    """The policy severity a source severity maps to (``P1`` -> ``SEV1``), or the one it
    already names (``SEV2``); ``None`` when neither. A level named with its description or a
    dash (``P1 - Critical``, ``SEV-1``: PagerDuty priorities as accounts rename them) reads as
    its short form when the whole does not map."""
    key = policy.alerts.severity_for(raw)
    found = policy.find_severity(key) if key else None
    if found is None and raw:
        found = policy.find_severity(raw)
    short = short_level(raw or "")
    if found is None and short is not None:
        return mapped_severity(policy, short)
    return found.key if found is not None else None


def severity_of(policy: Policy, alerts: list[Alert] | tuple[Alert, ...]) -> str:
    """The most severe mapped severity among the alerts, else the [alerts] default, else the
    policy default. Severities are ordered as the policy lists them (first = most severe)."""
    order = {s.key: i for i, s in enumerate(policy.severities)}
    best: str | None = None
    for alert in alerts:
        candidates = [alert.severity] + [alert.labels.get(n) for n in policy.alerts.severity_labels]
        for raw in candidates:
            mapped = mapped_severity(policy, raw)
            if mapped is not None:
                if best is None or order[mapped] < order[best]:
                    best = mapped
                break
    if best is not None:
        return best
    fallback = policy.alerts.default_severity or policy.default_severity
    found = policy.find_severity(fallback)
    return found.key if found is not None else policy.severities[-1].key


def service_of(policy: Policy, alerts: list[Alert] | tuple[Alert, ...]) -> str | None:
    for alert in alerts:
        if alert.service:
            return alert.service
        for name in policy.alerts.service_labels:
            value = alert.labels.get(name)
            if value:
                return value[:200]
    return None


def dropped_keys(policy: Policy, message: AlertMessage) -> frozenset[str]:
    rules = policy.alerts.drop
    if not rules:
        return frozenset()
    return frozenset(
        alert.key
        for alert in message.alerts
        if any(rule.matches(message.source, alert.title, alert.labels) for rule in rules)
    )


def runbooks_named_by(catalog: RunbookCatalog, reference: str) -> list[Runbook]:
    """The runbooks an alert's ``runbook_url`` names: a catalog id or path
    (``kubernetes/KubePodCrashLooping.md``), or a URL whose path ends in one; the id ending in
    most of the path wins (see ``RunbookCatalog.named_by``). A ``#heading`` is where in the
    runbook, not which: only when the path names nothing is an anchor read as an alert name
    (``runbook.md#alert-name-kubepodcrashlooping``). Else the path's last segment as a
    title, unless a generic one (``wiki/Runbook``): a path ending in ``runbook.md`` names a
    runbook of that name only when a directory of it or the anchor agrees (``named_by``).
    Only looked up in the catalog, never opened: ``../../etc/passwd`` finds nothing."""
    text = reference.strip()
    if not text or len(text) > 2000:
        return []
    parts = urlsplit(text)
    web = parts.scheme in ("http", "https")
    path, anchor = (unquote(parts.path), parts.fragment) if web else text.partition("#")[::2]
    segments = [s for s in path.split("/") if s.strip() and s not in (".", "..")]
    around = (parts.hostname or "").split(".") if web else ()
    found = catalog.named_by(segments, around=around, anchor=anchor)
    if not found and anchor:
        found = catalog.named_by([anchor.removeprefix("alert-name-")])
    generic = bool(segments) and typed_name(segments[-1]).casefold() in GENERIC_NAMES
    if not found and segments and not generic:
        # A wiki page's title: Confluence writes its spaces as "+" (``/display/SRE/Disk+full``).
        title = segments[-1]
        by_title = catalog.get(title) or (catalog.get(title.replace("+", " ")) if web else None)
        found = [by_title] if by_title is not None else []
    return found


def runbook_for(
    catalog: RunbookCatalog | None, policy: Policy, message: AlertMessage, severity: str
) -> tuple[Runbook | None, str]:
    """The runbook an alert names: by its ``runbook_url``, else by its alert name (runbooks'
    ``alerts:`` front matter, a file or section named after it), the title and service
    breaking ties; and why, saying so when a ``runbook_url`` named no runbook of the catalog,
    or more than one. A runbook that only shares words with the alert's title is not named
    by it: it is never started for it, nor offered as the alert's (the incident's own
    suggestions, shown with their reasons, may still list it)."""
    if catalog is None or len(catalog) == 0:
        return None, ""
    firing = [a for a in message.alerts if a.status == Status.FIRING] or list(message.alerts)
    unresolved = ""
    for alert in firing:
        if alert.runbook_url:
            found = runbooks_named_by(catalog, alert.runbook_url)
            if len(found) == 1:
                return found[0], _by_url(catalog, found[0], firing)
            if not unresolved:
                url = alert.runbook_url.strip()[:200]
                unresolved = (
                    f"its runbook_url {url} names {len(found)} runbooks of the catalog "
                    f"({', '.join(r.id for r in found[:3])}{', ...' if len(found) > 3 else ''})"
                    if found
                    else f"its runbook_url {url} names no runbook of the catalog"
                )
    names = list(dict.fromkeys(a.rule or a.name for a in firing if a.rule or a.name))
    matches = catalog.match(
        title=message.title,
        service=service_of(policy, firing),
        severity=severity,
        alerts=names,
        limit=10,
    )
    named = next((m for m in matches if any(r.startswith("alert ") for r in m.reasons)), None)
    if named is not None:
        reason = ", ".join(named.reasons)
    elif matches:
        reason = f"none named by the alert; closest {_ranked_by(matches[0].reasons)}: "
        reason += matches[0].runbook.id
    else:
        reason = ""
    reason = "; ".join(r for r in (reason, unresolved) if r)
    return (named.runbook if named else None), reason


def _by_url(catalog: RunbookCatalog, runbook: Runbook, firing: list[Alert]) -> str:
    """Why the runbook a ``runbook_url`` names was chosen; a weak match when it rests on a
    generic file name (``runbook.md``, ``README.md``, ``index.md``: any repository has one)
    and the runbook names none of the firing alerts, so the catalog's owner knows to name the
    alert in it."""
    names = list(dict.fromkeys(a.rule or a.name for a in firing if a.rule or a.name))
    stem = runbook.id.rsplit("/", 1)[-1]
    if stem.casefold() not in GENERIC_NAMES or catalog.names_alert(runbook, names):
        return "runbook_url of the alert"
    file = runbook.path.name if runbook.path is not None else stem
    alert = names[0] if names else "the alert"
    return (
        f"runbook_url of the alert; weak: only by the generic file name {file}, and the "
        f"runbook does not name {alert} (add it to its alerts: front matter)"
    )


def _ranked_by(reasons: tuple[str, ...]) -> str:
    """What a runbook no alert names was ranked first by: ``by words``, ``by service
    postgres``, ``by service postgres and words``."""
    words = any(r.startswith("keywords") for r in reasons)
    parts = [r for r in reasons if not r.startswith("keywords")] + (["words"] if words else [])
    return "by " + " and ".join(parts or ["words"])


def section_names(message: AlertMessage) -> tuple[str, ...]:
    """The firing alerts' ``runbook_url`` anchors (``_index.md#mimiringesterunhealthy``) and
    names, in order: what names the section of a runbook covering many alerts."""
    firing = [a for a in message.alerts if a.status == Status.FIRING] or list(message.alerts)
    found: list[str] = []
    for alert in firing:
        anchor = urlsplit(alert.runbook_url.strip()).fragment if alert.runbook_url else ""
        found.extend(n for n in (anchor, alert.rule, alert.name) if n)
    return tuple(dict.fromkeys(found))


def route(policy: Policy, catalog: RunbookCatalog | None, message: AlertMessage) -> Route:
    dropped = dropped_keys(policy, message)
    kept = [a for a in message.alerts if a.key not in dropped]
    # What fires decides, as for the runbook: a critical alert that has resolved never makes
    # its group SEV1. A message with nothing firing (all resolved) still reports one.
    firing = [a for a in kept if a.status == Status.FIRING] or kept
    severity = severity_of(policy, firing or list(message.alerts))
    runbook, reason = runbook_for(catalog, policy, message, severity)
    return Route(
        severity=severity,
        service=service_of(policy, firing),
        dropped=dropped,
        runbook=runbook,
        runbook_reason=reason,
        runbook_alerts=_as_sections(runbook, section_names(message)),
    )


def _as_sections(runbook: Runbook | None, names: tuple[str, ...]) -> tuple[str, ...]:
    """``names`` with each that names a section of the runbook spelled as the runbook spells
    its alert (``#mimirrequesterrors`` is ``MimirRequestErrors``): what the alert's post
    shows as the section a run opens at."""
    if runbook is None:
        return names
    spelled = []
    for name in names:
        found = runbook.section_for([name])
        spelled.append(found[1] if found is not None else name)
    return tuple(dict.fromkeys(spelled))
