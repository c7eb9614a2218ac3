"""The words runbooks and incidents are matched by: any script, CamelCase alert names split,
a light English stemmer, and the stop words and filler that would make every runbook look
relevant to every incident."""

from __future__ import annotations

import re
from functools import lru_cache

_RAW_WORD = re.compile(r"[^\W_]+")
"""A word in any script: ``Störung``, ``сервер``, ``数据库连接耗尽`` (a run of CJK, which has no
spaces, is one "word" here and is cut into bigrams by :func:`_word`)."""
_CJK = re.compile(
    "[\u2e80-\u2fdf\u3040-\u30ff\u3100-\u312f\u31a0-\u31ff\u3400-\u4dbf"
    "\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0002fa1f]+"
)
"""Han, kana, bopomofo and Hangul syllables: scripts written without spaces between words."""
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")

ENGLISH_STOPWORDS = frozenset(
    """a about above across after afterwards again against ago all almost alone along already
    also although always am among amongst an and another any anybody anyone anything anyway
    anywhere are aren around as at be became because become becomes becoming been before
    beforehand being below beside besides between beyond both but by can cannot could couldn d
    did didn do does doesn doing don done down during each eg either else elsewhere enough etc even
    ever every everybody everyone everything everywhere except few for former formerly from
    further had hadn has hasn have haven having he hence her here hereby herein hers herself him
    himself his how however i ie if in indeed into is isn it its itself just ll least less let
    lets like m many may me meanwhile might mine more moreover most mostly much must mustn my
    myself namely neither never nevertheless next no nobody none noone nor not nothing now
    nowhere of off often on once one ones only onto or other others otherwise ought our ours
    ourselves out over own per perhaps quite rather re s same several shall shan she should
    shouldn since so some somebody someone something sometime sometimes somewhere soon still such
    t than that the their theirs them themselves then thence there thereafter thereby therefore
    therein these they this those though through throughout thru thus to together too toward
    towards under until unto up upon us ve very via was wasn we were weren what whatever when
    whence whenever where whereas whereby wherever whether which while who whoever whom whose
    why will with within without won would wouldn yet you your yours yourself yourselves""".split()  # noqa: SIM905
)
"""Function words of English: they say nothing about which runbook helps."""

_FILLER_GROUPS = (
    # who is affected, how it was noticed, what the report is
    """customer customers user users people person persons folks everyone team teams issue issues
    problem problems incident incidents thing things stuff alert alerts alerting firing fired
    opened monitor monitors
    sev please help urgent asap fyi hi hello thanks ok okay see sees saw seen seeing notice
    notices noticed noticing observe observed observing report reports reported reporting
    experience experiences experienced experiencing affect affects affected affecting impact
    impacts impacted impacting""",
    # "page the on-call", "login page": never what tells runbooks apart
    "page pages paged paging",
    # verbs and adverbs any sentence can carry
    """get gets getting got gotten go goes going went gone come comes coming came make makes
    making made take takes taking took taken give gives giving gave given seem seems seemed
    seeming look looks looking looked want wants wanted need needs needed try tries trying tried
    keep keeps keeping kept say says said tell tells told know knows knew known think thinks
    thought use uses used using return returns returned returning happen happens happened
    happening work works worked working started show shows showed showing shown able unable
    actually apparently approx approximately basically certainly clearly completely currently
    definitely entirely especially exactly generally hopefully instead likely maybe mainly
    possibly probably randomly really recently roughly seemingly simply suddenly totally usually
    intermittently occasionally constantly new old first second last left right""",
    # every incident fails somewhere; the kind of failure ("errors", "timeouts") is the signal
    "fail fails failed failing failure failures broken",
    # when: the report's clock, not the problem
    """today yesterday tonight tomorrow morning afternoon evening night overnight midnight noon
    weekend week weeks day days hour hours hr hrs minute minutes min mins seconds sec secs utc
    gmt pm cet cest bst pst pdt est edt monday tuesday wednesday thursday friday saturday sunday
    mon tue tues wed thu thur thurs fri sat sun january february march april june july august
    september october november december jan feb mar apr jun jul aug sep sept oct nov dec""",
    # what every incident is about and every host name holds
    """service services system systems app apps application applications api apis prod
    production environment env com org www example xx""",
    # how every runbook is written: its section names and the verbs of most steps
    """runbook runbooks playbook playbooks meaning diagnosis diagnose mitigation mitigate
    remediation summary overview background procedure procedures step steps verification
    troubleshooting troubleshoot check checks checked checking verify verifies verified
    verifying confirm confirms confirmed confirming ensure ensures find finds found finding
    identify identifies identified identifying determine""",
)
INCIDENT_FILLER = frozenset(word for group in _FILLER_GROUPS for word in group.split())
"""Words every incident report and every runbook uses ("customers see errors since the deploy",
"page the on-call", "## Mitigation"): they would make any runbook look relevant to any incident.
Words that name a kind of failure ("errors", "latency", "disk", "slow", "outage", "timeouts")
are not filler."""

STOPWORDS = ENGLISH_STOPWORDS | INCIDENT_FILLER
_FILLER_TOKEN = re.compile(r"^(?:\d{1,2}|sev\d|p[0-5])$")
"""Times, dates and counts (``02:40``, ``3 pods``) and severity labels (``SEV1``, ``P2``)."""
_HTTP_CLASS = re.compile(r"^([45])\d\d$")
"""An HTTP status (``500``, ``503s``) also matches the class runbooks are written for (``5xx``)."""
_SUFFIXES = (("sses", "ss"), ("shes", "sh"), ("ches", "ch"), ("xes", "x"), ("ies", "y"))


def stem(word: str) -> str:
    """A light English stemmer: ``disks`` -> ``disk``, ``looping`` -> ``loop``,
    ``crashes`` -> ``crash``. Good enough to match how people write incident titles."""
    if len(word) <= 3 or word.isdigit():
        return word
    for suffix, replacement in _SUFFIXES:
        if word.endswith(suffix):
            return word[: -len(suffix)] + replacement
    if word.endswith("ing") and len(word) > 5:
        base = word[:-3]
        if len(base) > 2 and base[-1] == base[-2] and base[-1] not in "lsz":
            base = base[:-1]
        return base
    if word.endswith("ed") and len(word) > 4:
        base = word[:-2]
        if len(base) > 2 and base[-1] == base[-2] and base[-1] not in "lsz":
            base = base[:-1]
        return base
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def words(text: str) -> list[tuple[str, str]]:
    """``(stem, surface)`` pairs of the meaningful words in ``text``. CamelCase names are split
    too (``KubePodCrashLooping`` -> kube, pod, crash, loop) and also kept whole."""
    out: list[tuple[str, str]] = []
    for raw in _RAW_WORD.findall(text):
        for part in _CJK.split(raw):
            if part:
                out.extend(_word(part))
        for run in _CJK.findall(raw):
            out.extend(_cjk_bigrams(run))
    return out


def _cjk_bigrams(run: str) -> list[tuple[str, str]]:
    """A run of CJK as its overlapping pairs of characters (数据库 -> 数据, 据库), the usual way
    to index text without spaces: a query word of two or more characters matches wherever it
    is written, without a dictionary of words. One character alone says too little."""
    return [(run[i : i + 2], run[i : i + 2]) for i in range(len(run) - 1)]


@lru_cache(maxsize=65_536)
def _word(raw: str) -> tuple[tuple[str, str], ...]:
    """The tokens of one word; cached, because runbooks repeat the same words a lot."""
    lower = raw.lower()
    # CamelCase is split only in ASCII names (alerts, services); other words are kept whole
    parts = _CAMEL.findall(raw) if raw.isascii() else [raw]
    out: list[tuple[str, str]] = []
    if len(parts) > 1:
        if _meaningful(lower):
            out.append((lower, lower))
        for part in parts:
            part_lower = part.lower()
            if _meaningful(part_lower):
                out.append((stem(part_lower), part_lower))
    elif _meaningful(lower):
        out.append((stem(lower), lower))
    for part in parts:
        status = _HTTP_CLASS.match(part)
        if status:
            out.append((f"{status.group(1)}xx", lower))
    return tuple(out)


def _meaningful(lower: str) -> bool:
    return len(lower) > 1 and lower not in STOPWORDS and not _FILLER_TOKEN.match(lower)


NAME_QUOTES = "\"'`“”‘’«»„‚"
"""Quotes people put around a name (straight, curly, guillemets, backticks): a runbook's as
typed (``"Disk full"``), an alert's in a heading (``Alert Name: "KubeAPIDown"``)."""


def fold(value: str) -> str:
    return " ".join(value.split()).casefold()


def compact(value: str) -> str:
    return re.sub(r"[\s_-]+", "", value).casefold()


_NOT_SAID = re.compile(
    r"\[\[[^\]]*\]\([^)]*\)\]"  # Datadog's [[Monitor Status](https://...)] footer links
    r"|\]\(\s*[a-z][\w+.-]*:[^)]*\)"  # the target of a [label](url): the label stays
    r"|<[a-z][\w+.-]*:[^|>]*\|"  # the target of Slack's <url|label>: the label stays
    r"|<?\b[a-z][\w+.-]*://[^\s>]*>?"  # a bare address
    r"|(?<![\w.])@[\w.-]+",  # a notification handle (@webhook-firebreak, @slack-ops)
    re.IGNORECASE,
)
"""What an incident's text carries that says nothing about the failure: addresses (their
host and path words would match any runbook with links) and a monitor's notification
handles."""


def query_words(text: str) -> dict[str, str]:
    """The distinct word stems of a query, each with the first surface form seen."""
    query: dict[str, str] = {}
    for token, surface in words(_NOT_SAID.sub(" ", text)):
        query.setdefault(token, surface)
    return query
