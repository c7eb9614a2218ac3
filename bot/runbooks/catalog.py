"""The runbook catalog: every runbook in the configured directories, by id and by title, and
matching an incident to the runbooks most likely to help.

Loading is forgiving: a file that is binary, over 1 MB or unreadable is skipped with a logged
warning (``firebreak runbooks lint`` reports it as an error), so one bad file never hides the
others. Which files are runbooks:

* ``*.md`` files anywhere under a runbook directory (hidden directories skipped);
* not Hugo section files (``_index.md``) nor files starting with ``_`` or ``.`` (templates,
  drafts), and not ``README.md`` / ``CONTRIBUTING.md`` / ``CHANGELOG.md`` (docs about the
  runbooks) nor templates (``TEMPLATE.md``, ``runbook-template.md``); a README or a template
  whose front matter names alerts is a runbook.

A runbook's id is its path relative to its directory without ``.md``
(``kubernetes/KubePodCrashLooping``). When two directories hold the same id, the first directory
wins and the other file is skipped with a warning.

Matching is ranked in tiers so that what the alerting system says beats what the words suggest:
an alert name (from front matter, else the file name or title when it looks like an alert name)
outranks the affected service, which outranks keywords. Severities in front matter narrow: a
runbook for SEV1/SEV2 is not suggested for a SEV4. Tokens, weights and indexes are computed once
at load, so matching one incident against thousands of runbooks takes well under a millisecond
per hundred runbooks.

Keywords are the words that tell runbooks apart. English function words and the filler every
incident report and every runbook uses ("customers see ... since", "page the on-call", "Verify")
are not keywords: otherwise a runbook that says "customers" in a step would be offered for every
incident whose reporter wrote it. A keyword counts by where it is (title, tags and alert names
far above a passing mention in the body) and by how rare it is in the catalog, and a runbook is
suggested only when a keyword is in more than its body.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bot.config import Policy
from bot.runbooks.front_matter import LIST_KEYS, _split_front_matter
from bot.runbooks.headings import alert_heading
from bot.runbooks.model import alert_key, alert_names
from bot.runbooks.parser import Runbook, RunbookFileError, load_runbook_file
from bot.runbooks.words import NAME_QUOTES, compact, fold, query_words, words

log = logging.getLogger(__name__)

NOT_RUNBOOKS = frozenset({"contributing.md", "changelog.md", "license.md"})

ALERT_SCORE = 100.0
IMPLICIT_ALERT_SCORE = 90.0
"""An alert the runbook names elsewhere than its front matter: its file name, title, a
heading, an ``Alert:`` line of its body."""
LISTED_ALERT_SCORE = 80.0
"""An alert in a table of alerts the runbook holds: a service's page listing every alert it
has, below the runbook of one of them."""
SERVICE_SCORE = 60.0
KEYWORD_MAX = 40.0
"""Keyword scores stay below a service match, so tiers never mix."""
KEYWORD_SCALE = 20.0
"""The relevance (sum of idf x field weight) at which a keyword score reaches 63 % of
``KEYWORD_MAX``: two uncommon words in a title."""
TITLE_WEIGHT = 8.0
DESCRIPTION_WEIGHT = 4.0
SECTION_WEIGHT = 2.0
BODY_WEIGHT = 1.0
"""How much a word tells about a runbook depends on where it is. The title, tags and alert names
say what the runbook is for; the description summarises it; headings and step titles name what
it does; the body mentions many things in passing ("roll back the deploy" in a latency runbook).
The steep ratio keeps a runbook *about* the incident's words above one that merely mentions
several of them."""
OTHER_SERVICE_FACTOR = 0.5
"""A runbook written for other services is a weaker keyword match than a general one."""


HUGO_SECTION_PAGE = "_index.md"
"""A Hugo site's page for a whole directory: Grafana Mimir's runbooks, one section per alert,
are ``mimir-runbooks/_index.md``. Other names starting with ``_`` are partials and drafts."""


def is_runbook_file(path: Path) -> bool:
    name = path.name.casefold()
    if name == HUGO_SECTION_PAGE:
        return _has_body(path)
    if name == README or is_template(path):
        return _names_alerts(path)
    if name.startswith(("_", ".")) or name in NOT_RUNBOOKS:
        return False
    return name.endswith(".md")


README = "readme.md"
"""A directory's README is its index, not a runbook, unless its front matter names the alerts
it answers (``alerts: [RedisDown]``): teams that keep one directory per service often write the
service's runbook there."""


_TEMPLATE = re.compile(r"(?:_|runbook[-_.]?)?template\.md")
"""The file a team copies to write a new runbook: ``TEMPLATE.md``, ``_template.md``,
``runbook-template.md``. It is no runbook (its steps are placeholders), unless its front matter
names the alerts it answers."""


def is_template(path: Path) -> bool:
    """A runbook template by its name (``templates/TEMPLATE.md``, ``_template.md``)."""
    return _TEMPLATE.fullmatch(path.name.casefold()) is not None


def _lines(path: Path) -> list[str] | None:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").removeprefix("\ufeff")
    except OSError:
        return None  # unreadable: loading it says so
    return text.splitlines()[:20_000]


def _has_body(path: Path) -> bool:
    """Whether a section page says anything: most hold only front matter (a title, a menu
    weight) for the site's navigation."""
    lines = _lines(path)
    if lines is None:
        return True
    body = lines[_split_front_matter(lines).lines :]
    return any(line.strip() for line in body)


def _names_alerts(path: Path) -> bool:
    lines = _lines(path)
    if lines is None:
        return True
    data = _split_front_matter(lines).data
    return isinstance(data, dict) and any(data.get(key) for key in LIST_KEYS["alerts"])


_SOURCE_SUFFIX = re.compile(r"(?:\.html?)?\.md$", re.IGNORECASE)
"""The ending of a runbook's file: ``.md``, or ``.html.md`` (GOV.UK's developer docs: the
source of the ``.html`` page the site publishes)."""
_PAGE_SUFFIX = re.compile(rf"{_SOURCE_SUFFIX.pattern}|\.html?$", re.IGNORECASE)
"""The ending of a runbook's file or of the page a site publishes from it (``.html``)."""


def runbook_id(path: Path, root: Path) -> str:
    """The path under its runbook directory, without ``.md`` (nor the ``.html`` of
    ``.html.md``); a Hugo section page is its directory, as the site publishes it
    (``mimir-runbooks/_index.md`` is ``mimir-runbooks``)."""
    relative = path.relative_to(root).as_posix()
    if path.name.casefold() == HUGO_SECTION_PAGE and "/" in relative:
        return relative.rsplit("/", 1)[0]
    return _SOURCE_SUFFIX.sub("", relative)


def file_id(path: Path) -> str:
    """The id of a runbook file read outside its runbook directory: its name as
    :func:`runbook_id` makes it."""
    return runbook_id(path, path.parent)


_INDEX_PAGES = frozenset({"index", "_index", "readme"})
"""Pages a site shows for their directory (``node/disk-full/index.html``)."""

GENERIC_NAMES = frozenset({*_INDEX_PAGES, "runbook", "runbooks", "home"})
"""File names that say what a page is, not what it is about: Thanos', Linkerd's and
kubernetes-mixin's ``.../mixin/runbook.md``, a GitHub wiki's ``Runbook`` page. A URL ending
in one names a runbook of that name only when more than the name agrees (a directory of its
id in the URL, or the URL's anchor naming a section the runbook has)."""


def names_section(runbook: Runbook, anchor: str) -> bool:
    """Whether a ``runbook_url`` anchor (``#alert-name-kubejobfailed``,
    ``#replication-is-lagging``) names a section of the runbook: an alert's, or a heading."""
    wanted = alert_key(anchor)
    if not wanted:
        return False
    return runbook.first_step_for([anchor]) is not None or any(
        alert_key(h) == wanted for h in runbook.headings
    )


def typed_name(name: str) -> str:
    """A runbook's name as typed, without the quotes around it or a ``.md``, ``.html.md`` (or
    published ``.html``) ending."""
    return _PAGE_SUFFIX.sub("", name.strip().strip(NAME_QUOTES).strip())


def iter_files(root: Path) -> Iterator[Path]:
    """Every file under ``root`` in a stable order, skipping hidden directories."""
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            yield Path(directory) / name


_ALERT_LIKE = re.compile(r"^[A-Za-z][A-Za-z0-9]*[A-Z][A-Za-z0-9]*$")


# --------------------------------------------------------------------------------------------
# Matches


@dataclass(frozen=True)
class Match:
    runbook: Runbook
    score: float
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class _Named:
    """How a runbook names an alert: the score a match on it gets, and where (empty for its
    front matter), as the match's reason says it: ``alert X (its file name)``."""

    score: float
    where: str = ""

    def reason(self, alert: str) -> str:
        return f"alert {alert} ({self.where})" if self.where else f"alert {alert}"


@dataclass
class _Entry:
    runbook: Runbook
    alerts: dict[str, _Named]
    """Compacted alert name -> how the runbook names it (the strongest way)."""
    services: frozenset[str]
    severities: frozenset[str]
    weights: dict[str, float]


def _named_alerts(runbook: Runbook, stem_name: str) -> dict[str, _Named]:
    """The alerts a runbook names, each the strongest way it does: its front matter's
    ``alerts:``; its file name or title when written as an alert's name (not a generic name:
    ``README``); a heading naming alerts (``## Alert: PaymentsHighErrorRate``: a file with a
    section per alert is a runbook for each); an ``Alert:`` line of its body; a table of
    alerts."""
    found: dict[str, _Named] = {}

    def add(name: str, named: _Named) -> None:
        key = compact(name)
        if key and (key not in found or found[key].score < named.score):
            found[key] = named

    for name in runbook.alerts:
        add(name, _Named(ALERT_SCORE))
    implicit = [(stem_name, "its file name"), (runbook.title, "its title")]
    for heading in runbook.headings:
        implicit += [(a, "its heading") for a in alert_names(alert_heading(heading) or "")]
    for name, where in implicit:
        if _ALERT_LIKE.match(name) and fold(name) not in GENERIC_NAMES:
            add(name, _Named(IMPLICIT_ALERT_SCORE, where))
    for declared in runbook.declared_alerts:
        score = LISTED_ALERT_SCORE if declared.how == "table" else IMPLICIT_ALERT_SCORE
        add(declared.name, _Named(score, declared.where()))
    return found


def _weights(runbook: Runbook) -> dict[str, float]:
    weights: dict[str, float] = {}

    def add(text: str, weight: float) -> None:
        for token, _ in words(text):
            if weights.get(token, 0.0) < weight:
                weights[token] = weight

    add(runbook.title, TITLE_WEIGHT)
    add(" ".join(runbook.tags), TITLE_WEIGHT)
    add(" ".join(runbook.alerts), TITLE_WEIGHT)
    add(runbook.id.replace("/", " "), TITLE_WEIGHT * 0.75)
    add(" ".join(runbook.services), DESCRIPTION_WEIGHT)
    add(runbook.description, DESCRIPTION_WEIGHT)
    add(" ".join(runbook.headings), SECTION_WEIGHT)
    add(" ".join(s.title for s in runbook.steps), SECTION_WEIGHT)
    add(runbook.text, BODY_WEIGHT)
    return weights


@dataclass
class FileProblem:
    """A file the catalog skipped, and why (lint shows these as errors)."""

    path: Path
    message: str


@dataclass
class RunbookCatalog:
    runbooks: dict[str, Runbook] = field(default_factory=dict)
    skipped: list[FileProblem] = field(default_factory=list)
    policy: Policy | None = None
    _entries: list[_Entry] = field(default_factory=list, repr=False)
    _by_title: dict[str, list[str]] = field(default_factory=dict, repr=False)
    _by_stem: dict[str, list[str]] = field(default_factory=dict, repr=False)
    _tokens: dict[str, list[tuple[int, float]]] = field(default_factory=dict, repr=False)
    _idf: dict[str, float] = field(default_factory=dict, repr=False)
    _alerts: dict[str, list[tuple[int, _Named]]] = field(default_factory=dict, repr=False)
    _services: dict[str, list[int]] = field(default_factory=dict, repr=False)

    # -- loading

    @classmethod
    def load(cls, directories: Sequence[Path], *, policy: Policy | None = None) -> RunbookCatalog:
        """Load every runbook under ``directories`` (missing directories are logged)."""
        catalog = cls(policy=policy)
        for directory in directories:
            if not directory.is_dir():
                log.warning("runbook directory %s does not exist", directory)
                catalog.skipped.append(FileProblem(directory, "runbook directory not found"))
                continue
            for path in iter_files(directory):
                if not is_runbook_file(path):
                    continue
                rid = runbook_id(path, directory)
                if rid in catalog.runbooks:
                    first = catalog.runbooks[rid].path
                    message = f"duplicate runbook id {rid!r} (already loaded from {first})"
                    log.warning("skipping %s: %s", path, message)
                    catalog.skipped.append(FileProblem(path, message))
                    continue
                try:
                    runbook = load_runbook_file(path, rid)
                except RunbookFileError as exc:
                    log.warning("skipping runbook %s: %s", path, exc)
                    catalog.skipped.append(FileProblem(path, str(exc)))
                    continue
                catalog.runbooks[rid] = runbook
        catalog._index()
        return catalog

    @classmethod
    def from_policy(cls, policy: Policy) -> RunbookCatalog:
        return cls.load([policy.resolve_path(p) for p in policy.runbooks.paths], policy=policy)

    @classmethod
    def of(cls, runbooks: Iterable[Runbook], *, policy: Policy | None = None) -> RunbookCatalog:
        """A catalog of already parsed runbooks (tests, previews)."""
        catalog = cls(runbooks={r.id: r for r in runbooks}, policy=policy)
        catalog._index()
        return catalog

    def _index(self) -> None:
        self._entries = []
        self._by_title, self._by_stem = defaultdict(list), defaultdict(list)
        tokens: dict[str, list[tuple[int, float]]] = defaultdict(list)
        alerts: dict[str, list[tuple[int, _Named]]] = defaultdict(list)
        services: dict[str, list[int]] = defaultdict(list)
        for number, runbook in enumerate(self.runbooks.values()):
            stem_name = runbook.id.rsplit("/", 1)[-1]
            entry = _Entry(
                runbook=runbook,
                alerts=_named_alerts(runbook, stem_name),
                services=frozenset(fold(s) for s in runbook.services),
                severities=frozenset(self._severity_key(s) for s in runbook.severities),
                weights=_weights(runbook),
            )
            self._entries.append(entry)
            self._by_title[fold(runbook.title)].append(runbook.id)
            self._by_stem[fold(stem_name)].append(runbook.id)
            for token, weight in entry.weights.items():
                tokens[token].append((number, weight))
            for alert, named in entry.alerts.items():
                alerts[alert].append((number, named))
            for service in entry.services:
                services[service].append(number)
        total = max(1, len(self._entries))
        self._tokens = dict(tokens)
        # A word mentioned in passing in every runbook still tells the runbook that has it in
        # its title apart: document frequency counts each occurrence by its field's weight.
        self._idf = {
            t: math.log(1 + total / sum(w / TITLE_WEIGHT for _, w in p)) for t, p in tokens.items()
        }
        self._alerts, self._services = dict(alerts), dict(services)

    def _severity_key(self, value: str) -> str:
        if self.policy is not None:
            found = self.policy.find_severity(value)
            if found is not None:
                return found.key.casefold()
        return compact(value)

    # -- lookups

    def __len__(self) -> int:
        return len(self.runbooks)

    def __iter__(self) -> Iterator[Runbook]:
        return iter(self.runbooks.values())

    def get(self, name: str) -> Runbook | None:
        """A runbook by id (``kubernetes/KubePodCrashLooping``), by title, or by its file name
        when that is unique; case does not matter, nor quotes around it (``"Disk full"``,
        ``“Disk full”``), nor the runbook directory written before the id
        (``runbooks/disk-full.md``, as ``firebreak runbooks show`` takes it)."""
        name = typed_name(name)
        found = self._get(name)
        parts = name.replace("\\", "/").split("/")
        while found is None and len(parts) > 1:
            parts = parts[1:]
            found = self._get("/".join(parts))
        return found

    def _get(self, name: str) -> Runbook | None:
        if name in self.runbooks:
            return self.runbooks[name]
        folded = fold(name)
        for rid, runbook in self.runbooks.items():
            if rid.casefold() == folded:
                return runbook
        for index in (self._by_title, self._by_stem):
            ids = index.get(folded, [])
            if len(ids) == 1:
                return self.runbooks[ids[0]]
        return None

    def named_by(
        self, path: Sequence[str], *, around: Sequence[str] = (), anchor: str = ""
    ) -> list[Runbook]:
        """The runbooks a path names (the segments of an alert's ``runbook_url``): those whose
        id ends in the most of its segments, case ignored (``.md`` or not). Each runbook
        repository vendored into one catalog has its ``kubernetes/KubePodNotReady``: the URL's
        whole path, then the rest of the URL (``around``: its host's labels, its other
        segments) naming the id's directories (``prometheus-operator/...`` for
        ``runbooks.prometheus-operator.dev``) tell them apart. More than one when nothing
        does; none when no id ends in the path's last segment.

        The page a site publishes from a file names it too: ``node/disk-full.html``, and
        ``node/disk-full/index.html`` (or ``README.md``, shown for the directory) when no
        runbook of that directory is called so; a directory (``node/``) names its
        ``node/index.md``.

        A generic file name (:data:`GENERIC_NAMES`: ``mixin/runbook.md``) is not enough: the
        URL must also name one of the runbook's directories, or its ``anchor`` a section of
        it; and an anchor naming an alert (``#alert-name-kubestatemetricslisterrors``) that a
        runbook of alerts' sections has no section for means the URL is about another runbook
        (the alert's name then decides)."""
        wanted = [fold(s) for s in path if s.strip()]
        if not wanted:
            return []
        wanted[-1] = _PAGE_SUFFIX.sub("", wanted[-1])
        elsewhere = {fold(s) for s in (*around, *wanted)}
        if wanted[-1] in _INDEX_PAGES:
            own = self._ending_in(wanted, elsewhere, least=min(2, len(wanted)), anchor=anchor)
            return own or self._ending_in(wanted[:-1], elsewhere)
        return self._ending_in(wanted, elsewhere, anchor=anchor) or self._ending_in(
            [*wanted, "index"], elsewhere, least=2
        )

    def _ending_in(
        self, wanted: list[str], elsewhere: set[str], *, least: int = 1, anchor: str = ""
    ) -> list[Runbook]:
        """``named_by`` for ``wanted`` (folded segments): the runbooks whose ids end in the
        most of them, and in ``least`` at least; one of generic name only when more agrees."""
        generic = bool(wanted) and wanted[-1] in GENERIC_NAMES
        best, found = (0, 0), []
        for rid in self._by_stem.get(wanted[-1], []) if wanted else []:
            have = fold(rid).split("/")
            same = 0
            while same < min(len(have), len(wanted)) and have[-1 - same] == wanted[-1 - same]:
                same += 1
            if same < least:
                continue
            score = (same, sum(1 for s in have[: len(have) - same] if s in elsewhere))
            if generic and not self._generic_agrees(self.runbooks[rid], score, anchor):
                continue
            if score > best:
                best, found = score, [self.runbooks[rid]]
            elif score == best:
                found.append(self.runbooks[rid])
        return found

    @staticmethod
    def _generic_agrees(runbook: Runbook, score: tuple[int, int], anchor: str) -> bool:
        """For a URL ending in a generic name: whether it names ``runbook`` (``score``: the
        segments its id ends in, its directories named elsewhere in the URL)."""
        sections = names_section(runbook, anchor) if anchor else False
        per_alert = any(step.alert for step in runbook.steps)
        if anchor.casefold().startswith("alert-name-") and per_alert and not sections:
            return False  # a file of alerts' sections, none for this alert
        return sections or score[0] > 1 or score[1] > 0

    def names_alert(self, runbook: Runbook, alerts: Sequence[str]) -> bool:
        """Whether ``runbook`` names one of ``alerts`` (front matter, file name, title, a
        heading, its body's ``Alert:`` lines or alert table), as matching reads them."""
        return any(
            self._entries[number].runbook.id == runbook.id
            for alert in alerts
            for number, _ in self._alerts.get(compact(alert), [])
        )

    # -- matching

    def match(
        self,
        *,
        title: str = "",
        summary: str = "",
        service: str | None = None,
        severity: str | None = None,
        alerts: Sequence[str] = (),
        limit: int | None = 10,
    ) -> list[Match]:
        """Runbooks for an incident, best first, each with its score and the reasons."""
        wanted_severity = self._severity_key(severity) if severity else None
        scores: dict[int, float] = defaultdict(float)
        reasons: dict[int, list[str]] = defaultdict(list)

        for alert in dict.fromkeys(a.strip() for a in alerts if a.strip()):
            for number, named in self._alerts.get(compact(alert), []):
                scores[number] += named.score
                reasons[number].append(named.reason(alert))
        folded_service = fold(service) if service else ""
        if folded_service:
            for number in self._services.get(folded_service, []):
                scores[number] += SERVICE_SCORE
                reasons[number].append(f"service {service.strip() if service else ''}")

        query = query_words(f"{title}\n{summary}")
        keyword_hits: set[int] = set()
        for number, raw in self._keyword_totals(query, strong_only=True).items():
            entry = self._entries[number]
            value = KEYWORD_MAX * (1 - math.exp(-raw / KEYWORD_SCALE))
            if folded_service and entry.services and folded_service not in entry.services:
                value *= OTHER_SERVICE_FACTOR
            scores[number] += value
            keyword_hits.add(number)

        ranked = sorted(
            (
                (-score, self._entries[number].runbook.id, number)
                for number, score in scores.items()
                if not (
                    wanted_severity
                    and self._entries[number].severities
                    and wanted_severity not in self._entries[number].severities
                )
            )
        )
        if limit is not None:
            ranked = ranked[:limit]
        # Reasons are spelled out only for the runbooks returned.
        results = []
        for negative, _, number in ranked:
            why = list(reasons.get(number, []))
            if number in keyword_hits:
                why.append("keywords: " + ", ".join(self._matched_words(number, query)[:5]))
            results.append(Match(self._entries[number].runbook, round(-negative, 2), tuple(why)))
        return results

    def suggest(
        self,
        *,
        title: str = "",
        summary: str = "",
        service: str | None = None,
        severity: str | None = None,
        alerts: Sequence[str] = (),
        limit: int | None = None,
    ) -> list[Match]:
        """The runbooks to offer when an incident is declared: :meth:`match`, cut to the
        policy's ``runbooks.suggestions`` unless ``limit`` says otherwise."""
        if limit is None:
            limit = self.policy.runbooks.suggestions if self.policy is not None else 3
        if limit < 1:
            return []
        return self.match(
            title=title,
            summary=summary,
            service=service,
            severity=severity,
            alerts=alerts,
            limit=limit,
        )

    def _keyword_totals(self, query: dict[str, str], *, strong_only: bool) -> dict[int, float]:
        """Keyword relevance per runbook: the sum over query words of idf x field weight.
        With ``strong_only`` a runbook must match at least one word outside its body text."""
        totals: dict[int, float] = defaultdict(float)
        strong: set[int] = set()
        for token in query:
            idf = self._idf.get(token)
            if idf is None:
                continue
            for number, weight in self._tokens[token]:
                totals[number] += idf * weight
                if weight > BODY_WEIGHT:
                    strong.add(number)
        if strong_only:
            return {n: t for n, t in totals.items() if n in strong}
        return totals

    def _matched_words(self, number: int, query: dict[str, str]) -> list[str]:
        """The incident's words this runbook matched, in the incident's own order."""
        weights = self._entries[number].weights
        return list(dict.fromkeys(surface for token, surface in query.items() if token in weights))

    def search(self, query: str, *, limit: int | None = 10) -> list[Match]:
        """``/incident runbook <words>``: an exact id or title first, then alert names, then
        keyword matches."""
        query = " ".join(query.split())
        if not query:
            return []
        best: dict[str, Match] = {}

        def offer(match: Match) -> None:
            current = best.get(match.runbook.id)
            if current is None or match.score > current.score:
                best[match.runbook.id] = match

        exact = self.get(query)
        if exact is not None:
            offer(Match(exact, 1000.0, ("name",)))
        for match in self.match(alerts=[query], limit=None):
            offer(match)
        words_of_query = query_words(query)
        for number, raw in self._keyword_totals(words_of_query, strong_only=False).items():
            runbook = self._entries[number].runbook
            value = KEYWORD_MAX * (1 - math.exp(-raw / KEYWORD_SCALE))
            matched = self._matched_words(number, words_of_query)
            offer(Match(runbook, round(value, 2), ("keywords: " + ", ".join(matched[:5]),)))
        results = sorted(best.values(), key=lambda m: (-m.score, m.runbook.id))
        return results[:limit] if limit is not None else results


def catalog_directories(policy: Policy, extra: Sequence[Path] | None = None) -> list[Path]:
    """The policy's runbook directories (relative to the policy file), plus ``extra`` ones."""
    directories = [policy.resolve_path(p) for p in policy.runbooks.paths]
    for path in extra or []:
        if path not in directories and path.is_dir():
            directories.append(path)
    return directories


def load_catalog(policy: Policy, extra: Sequence[Path] | None = None) -> RunbookCatalog:
    """The runbooks of the policy's directories (plus ``extra`` ones), loaded once: what the
    demo, the tests and the benches run with (``serve`` follows the files:
    ``bot.runbooks.reloading.follow_catalog``)."""
    directories = catalog_directories(policy, extra)
    catalog = RunbookCatalog.load(directories, policy=policy)  # logs what it skips
    log.info("runbooks loaded", extra={"count": len(catalog)})
    return catalog
