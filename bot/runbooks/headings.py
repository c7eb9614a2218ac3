"""What a heading or a paragraph means: an action (a step), context, a numbered step lead, or a
section name; and short step titles."""

from __future__ import annotations

import re
from typing import Literal

from markdown_it.token import Token

from bot.runbooks.document import HTML_BREAK, _Block, _plain
from bot.runbooks.model import ALERT_SEPARATOR, STEP_TITLE_MAX
from bot.runbooks.words import NAME_QUOTES

_ACTION = re.compile(
    r"\b(?:diagnos\w*|mitigat\w*|remed\w*|resol(?:ve|ves|ving|ution|utions)|steps?|"
    r"procedures?|recover\w*|rollbacks?|roll(?:ing)?[ -]?backs?|troubleshoot\w*|investigat\w*|"
    r"fix|fixes|fixing|actions?|verif\w*|validat\w*|runbooks?|playbooks?|response|respond\w*|"
    r"triage|checks?|checklists?|debug\w*|escalat\w*|restor\w*|fail[ -]?over|solutions?|"
    r"instructions?|workarounds?|clean[ -]?up|what to do|how to|immediate|communicat\w*|"
    r"notif\w*|repair\w*|contain\w*|eradicat\w*|handling|tasks?|prepar\w*)\b"
)
_CONTEXT = re.compile(
    r"\b(?:meaning|impact\w*|summary|overview|background|mental models?|concepts?|"
    r"how it works|descriptions?|links?|see also|"
    r"references?|about|context|symptoms?|what is|what does|why|details?|"
    r"dashboards?|owners?|ownership|contacts?|pre-?requisites?|requirements?|notes?|faq|"
    r"glossary|architecture|history|causes?|purpose|scope|introduction|intro|definitions?|"
    r"further reading|more information|additional information|resources|documentation|docs|"
    r"tl;?dr|who|appendix|appendices)\b"
)
_CONTEXT_SUBJECT = re.compile(
    r"\balerts?(?=[\s:.?!]*$)|^related\b|\brelated(?=\s+(?:runbooks?|alerts?|links?|docs?|"
    r"documentation|dashboards?|pages?|resources|reading|articles?|information|topics?|"
    r"incidents?|issues?)\b)"
)
"""Words that make a heading context only as its subject: "Alert", "Automatic alerts",
"Related", "Related runbooks"; not where they qualify what the section is about ("Alert storm",
"Alerts not firing", "x509 certificate related errors": a procedure)."""
_ASIDE = re.compile(r"\([^()]*\)")
"""A remark in brackets ("Alert storm (> 1000 alerts/minute)"): not the heading's subject."""

# The same sections as Chinese and Japanese runbooks name them (kubesphere's alert runbooks:
# 影响 / 诊断 / 缓解). Words run together in these scripts: matched anywhere in the heading.
_ACTION_CJK = re.compile(
    "诊断|診断|排查|排障|缓解|緩和|处理|処理|处置|解决|解決|修复|修復|恢复|復旧|回滚|步骤|手順|"
    "操作|应对|対応|対処|调查|調査|止血|检查|確認|确认|核实|重启|重啟|再起動|执行|実行|実施|"
    "切换|切替|扩容|回退"
)
_CONTEXT_CJK = re.compile(
    "影响|影響|含义|意味|概述|概要|描述|说明|説明|背景|原因|参考|参照|链接|リンク|症状|告警|アラート"
)
IMPERATIVE_VERBS = frozenset(
    """check restart run scale roll drain cordon uncordon verify confirm identify find look
    escalate notify page open create delete remove increase decrease reduce failover fail switch
    stop start kill disable enable rotate revoke renew replace reboot deploy redeploy revert pause
    resume flush clear purge clean inspect investigate review collect gather capture dump update
    upgrade downgrade apply add set ensure make wait monitor watch communicate post announce
    declare assign block unblock isolate contact call ask compare query test validate restore
    recover reset resize expand extend promote demote evict mitigate fix resolve silence ack
    acknowledge determine assess measure estimate tail ssh exec connect log login trigger
    disconnect drop shed throttle route reroute redirect move migrate copy backup back snapshot
    terminate detach attach mount unmount free archive compress truncate rebuild reindex vacuum
    analyze analyse tune patch pin unpin hold lock unlock freeze unfreeze cancel abort retry rerun
    re-run go use get list describe search grep follow email message tell inform cut shut engage
    coordinate record preserve quarantine liaise warn share take file document ban
    raise request suspend scan rebalance""".split()  # noqa: SIM905
)
_CJK_STEP = (
    r"(?:第\s*[\d一二三四五六七八九十百〇零两]+\s*(?:步|歩)|(?:步骤|步驟|ステップ|手順)\s*\d+)"
)
"""The same in Chinese and Japanese: 第一步, 第 2 步, 步骤3, ステップ1, 手順１ (digits full-width
too; Python's ``\\d`` is any decimal digit)."""
_STEP_WORD = re.compile(rf"^\s*(?:step\s*\d+\b|{_CJK_STEP})", re.IGNORECASE)
"""A heading its author numbered as a step: "Step 2: ...", "Step 3 - ...", "第二步: ..."."""
_NUMBERED = re.compile(
    rf"^\s*(?:(?:step\s*\d+\b|{_CJK_STEP})\s*[:.)\-–—：、．）]?"
    r"|\d{1,3}(?:\.\d{1,3}){1,2}\.?(?=\s)|\d+\s*[.):\-–—](?!\d))\s*",
    re.IGNORECASE,
)
"""The numbering people put in headings: "Step 3:", "2.", "6.1" (a sub-section's number)."""

_STEP_LEAD = re.compile(
    r"^\s*(?:step\s*(\d{1,4})\b\s*[:.)\-–—]?|(\d{1,4})\s*[.):\-–—])\s*", re.IGNORECASE
)
"""How a paragraph that opens a numbered step starts: ``**Step 3: Verify**``, ``**3.** Verify``."""
_PLAIN_STEP_LEAD = re.compile(r"^\s*step\s*(\d{1,4})\s*[:.)\-–—]\s*", re.IGNORECASE)
"""The same without bold: only with the word "Step" and a colon or dash ("Step 3: verify")."""
_SOURCE_STEP_LEAD = re.compile(
    r"^(\s*)(?:(\*\*|__)\s*)?(?:step\s*\d{1,4}\b|\d{1,4}(?=\s*[.):\-–—]))\s*[:.)\-–—]?\s*"
    r"(?:(\2)\s*[:.)\-–—]?\s*)?",
    re.IGNORECASE,
)
"""The numbering at the start of such a paragraph's source line, with its bold markers."""


def _bold_lead(inline: Token) -> tuple[str, str] | None:
    """For a paragraph that starts in bold: the bold text and the text after it."""
    # markdown-it puts empty text tokens around emphasis
    children = [c for c in inline.children or [] if c.type != "text" or c.content]
    if not children or children[0].type != "strong_open":
        return None
    depth = 0
    bold: list[str] = []
    after: list[str] = []
    target = bold
    for child in children:
        if child.type == "strong_open":
            depth += 1
        elif child.type == "strong_close":
            depth -= 1
            if depth == 0:
                target = after  # the first bold run is over; later ones are text
        elif child.type in ("text", "code_inline"):
            target.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            target.append(" ")
    return "".join(bold), "".join(after)


def _step_lead(block: _Block) -> tuple[int, bool] | None:
    """The number of a paragraph that opens a step (``**Step 3: Verify**``, ``**3.** Verify``,
    ``Step 3: verify``), and whether the paragraph is nothing but that title."""
    if block.kind != "paragraph" or len(block.tokens) < 2 or block.tokens[1].type != "inline":
        return None
    inline = block.tokens[1]
    lead = _bold_lead(inline)
    if lead is not None:
        bold, after = lead
        match = _STEP_LEAD.match(bold)
        if match is None:
            return None
        return int(match.group(1) or match.group(2)), not after.strip(" \t:.-–—")
    match = _PLAIN_STEP_LEAD.match(_plain(inline))
    return (int(match.group(1)), False) if match else None


def _strip_step_number(line: str) -> str:
    """``**Step 3:** Verify`` -> ``Verify``; ``**Step 3: Verify** it`` -> ``**Verify** it``."""
    match = _SOURCE_STEP_LEAD.match(line)
    if match is None:
        return line
    opener = match.group(2) if match.group(2) and not match.group(3) else ""
    return match.group(1) + opener + line[match.end() :]


Kind = Literal["action", "context"]


def heading_kind(title: str) -> Kind | None:
    """Whether a heading names steps ("Mitigation", "Roll back the deploy", "Step 2: ...") or
    context ("Impact", "See also"); ``None`` when the words do not say.

    An imperative verb first makes it actionable; otherwise the first keyword in the heading
    decides, so "Diagnosis and background" is actionable and "Related runbooks for mitigation"
    is context. Numbered headings ("3. Drain the node") with no other clue are actionable, and
    one its author numbered as a step ("Step 2: Impact assessment") always is."""
    text = " ".join(title.casefold().replace("_", " ").split())
    if _STEP_WORD.match(text):
        return "action"  # "Step 2: Impact assessment" is a step whatever its words
    numbered = bool(_NUMBERED.match(text))
    text = _NUMBERED.sub("", text, count=1).strip() if numbered else text
    if _opens_with_verb(text):
        return "action"
    head = _cjk_head(text)
    if head is not None and not (_ACTION.search(text) or _CONTEXT.search(text)):
        return head
    action = _ACTION.search(text) or _ACTION_CJK.search(text)
    context = _first(
        _CONTEXT.search(text) or _CONTEXT_CJK.search(text),
        _CONTEXT_SUBJECT.search(_ASIDE.sub(lambda m: " " * len(m.group()), text).rstrip()),
    )
    if action and (not context or action.start() <= context.start()):
        return "action"
    if context:
        return "context"
    return "action" if numbered else None


def _cjk_head(text: str) -> Kind | None:
    """What a Chinese or Japanese heading names: a verb first says what to do (确认用户影响,
    "confirm the user impact"); otherwise the keyword it ends with, the head of a compound
    (ユーザー影響確認, "user impact check", is a check; 告警影响, "alert impact", an impact).
    ``None`` without such a keyword."""
    if _ACTION_CJK.match(text):
        return "action"
    ends = {
        kind: max((m.end() for m in pattern.finditer(text)), default=-1)
        for kind, pattern in (("action", _ACTION_CJK), ("context", _CONTEXT_CJK))
    }
    if ends["action"] < 0 and ends["context"] < 0:
        return None
    return "action" if ends["action"] >= ends["context"] else "context"


def _first(*matches: re.Match[str] | None) -> re.Match[str] | None:
    """The match that starts first of those found."""
    found = [m for m in matches if m is not None]
    return min(found, key=lambda m: m.start()) if found else None


_ALERT_PREFIX = re.compile(
    r"^\s*(?:alert|alarm)(?:\s+name)?\s*[:\-–—]\s*(\S.*?)\s*$", re.IGNORECASE
)
_ALERT_NAME = re.compile(
    r"^(?:[a-z][a-z0-9]*|[A-Z][a-z0-9]+|[A-Z]{2,}(?=[A-Z][a-z]))(?:[A-Z]+[a-z0-9]+)+[A-Z0-9]*$"
)
"""An alert's name as Prometheus and most alerting tools write it: words run together, each
capitalised (``PaymentsHighErrorRate``, ``KubeAPIDown``), the first may be lower case or an
acronym (etcd-mixin's ``etcdNoLeader``, ``CPUThrottlingHigh``). A product name ending in an
acronym (``PostgreSQL``, ``MySQL``) is not one."""


_ALERT_LIST = re.compile(r"\s*(?:/|,|&|\band\b)\s*")
"""Between the alerts a heading names: ``KubePodCrashLooping / KubePodNotReady``, ``A, B``,
``A and B``."""


def alert_heading(title: str) -> str | None:
    """The alert a heading is about, for files that hold one section per alert of a service
    (``## Alert: PaymentsHighErrorRate`` or ``## PaymentsHighErrorRate``, each with its own
    Meaning and Mitigation); ``None`` for any other heading. A heading naming several alerts,
    each an alert's name by itself, is about all of them: their names joined by
    :data:`ALERT_SEPARATOR` (read apart with :func:`alert_names`). "Read / write errors" names
    none."""
    match = _ALERT_PREFIX.match(title)
    name = match.group(1) if match else title.strip()
    names = [_unquoted(part) for part in _ALERT_LIST.split(_unquoted(name))]
    if all(is_alert_name(n) for n in names):
        return ALERT_SEPARATOR.join(names)
    name = _unquoted(name)
    return name if match and name else None


def is_alert_name(word: str) -> bool:
    """Whether ``word`` is written as an alert's name (``KubeAPIDown``, ``etcdNoLeader``), not
    as a product (``PostgreSQL``) or a section word."""
    return _ALERT_NAME.match(word) is not None and heading_kind(word) is None


def _unquoted(name: str) -> str:
    return name.strip("*_ " + NAME_QUOTES)  # **PaymentsHighErrorRate**, "KubeAPIDown"


def under_alert(alert: str, title: str) -> str:
    """A step or context title within an alert's section, named after the alert so that two
    alerts' "Mitigation" steps are told apart: ``PaymentsHighErrorRate: Mitigation``."""
    return title if alert.casefold() in title.casefold() else f"{alert}: {title}"


_SECTION_PHRASES = frozenset({"next steps", "what to do", "see also", "action items"})


def is_section_name(title: str) -> bool:
    """A heading that only names a section ("Mitigation", "Steps", "See also"), as opposed to a
    document title that happens to contain such a word ("Roll back a bad deploy")."""
    text = _NUMBERED.sub("", " ".join(title.casefold().split()), count=1).strip(" :.")
    found = re.findall(r"[a-z]+", text)
    if " ".join(found) in _SECTION_PHRASES:
        return True
    return len(found) == 1 and heading_kind(found[0]) is not None


def names_a_step(title: str) -> bool:
    """A heading that is one step's title ("Restart the consumers", "Step 2: Impact"), not
    the name of a section of steps ("Mitigation"): what follows it is that step's text."""
    text = " ".join(title.casefold().split())
    return bool(_STEP_WORD.match(text)) or _opens_with_verb(_NUMBERED.sub("", text, count=1))


_NOUN_VERBS = frozenset(
    {"contact", "call", "page", "log", "backup", "dump", "snapshot", "record", "document", "file"}
    | {"message", "query", "request"}
)
"""Verbs that are nouns too, and are nouns in :data:`_NOUN_PHRASES`."""
_NOUN_PHRASES = frozenset(
    {"information", "info", "details", "list", "lists", "points", "people", "person", "persons"}
    | {"sheet", "directory"}
)
"""Words that, after one of :data:`_NOUN_VERBS`, make a noun phrase: "Contact information",
"Call list", "Backup details" name something; "Contact the DBA" says what to do."""


def _opens_with_verb(text: str) -> bool:
    """Casefolded ``text`` whose first word is a verb in the imperative ("restart ...")."""
    words = re.findall(r"[a-z][a-z'-]*", text)
    if len(words) > 1 and words[0] in _NOUN_VERBS and words[1] in _NOUN_PHRASES:
        return False
    return bool(words) and words[0] in IMPERATIVE_VERBS


def _is_label(text: str) -> bool:
    """A few words that name something ("Cluster scoped") rather than say what to do."""
    found = text.casefold().split()
    return len(found) <= 3 and found[0] not in IMPERATIVE_VERBS if found else False


def _clean_title(text: str) -> str:
    """Drop the numbering people put in headings ("2. Drain", "Step 3: ..."): steps are
    numbered by the bot; and the colon some end them with ("Slow Read Requests:")."""
    stripped = _NUMBERED.sub("", text, count=1).strip().rstrip(":").rstrip()
    return stripped or text.strip()


def bold_line(inline: Token) -> str | None:
    """The bold text a paragraph starts with when it is a line of its own, as a title written
    above its explanation ("**Check the time service**" then "Most nodes use chronyd:")."""
    children = [c for c in inline.children or [] if c.type != "text" or c.content]
    if not children or children[0].type != "strong_open":
        return None
    depth = 0
    for index, child in enumerate(children):
        depth += {"strong_open": 1, "strong_close": -1}.get(child.type, 0)
        if depth == 0:
            after = children[index + 1] if index + 1 < len(children) else None
            broken = after is not None and (
                after.type in ("softbreak", "hardbreak")
                or (after.type == "html_inline" and HTML_BREAK.match(after.content) is not None)
            )
            if not broken:
                return None
            bold = "".join(
                c.content for c in children[1:index] if c.type in ("text", "code_inline")
            )
            return bold.strip(" :") or None
    return None


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9`\"'(\[])")
_ABBREVIATION = re.compile(
    r"(?:^|[\s(\[])(?:e\.g|eg|i\.e|ie|approx|etc|vs|cf|incl|esp|resp|a\.k\.a)\.$",
    re.IGNORECASE,
)
"""Words whose dot does not end a sentence ("e.g.", "approx.", "vs.")."""


def _first_sentence(text: str) -> str:
    """``text`` up to the first end of a sentence that is not inside brackets ("(approx. 10
    pods)") nor the dot of an abbreviation ("e.g. Redis")."""
    for match in _SENTENCE_END.finditer(text):
        before = text[: match.start()]
        if before.count("(") > before.count(")") or before.count("[") > before.count("]"):
            continue
        if _ABBREVIATION.search(before):
            continue
        return before
    return text


_ADMONITION_TYPES = (
    "note abstract summary tldr info todo tip hint important success check done question help "
    "faq warning caution attention failure fail missing danger error bug example quote cite"
)
ADMONITION_TYPES = frozenset(_ADMONITION_TYPES.split())
"""MkDocs' (and Docusaurus') call-out types."""
ADMONITION = re.compile(
    rf"^(?:!!!|\?\?\?\+?)[ \t]+({'|'.join(_ADMONITION_TYPES.split())})\b"
    r'(?:[ \t]+"([^"\n]*)")?[ \t]*\n?'
)
"""A MkDocs admonition's first line: ``!!! warning "Do not promote"``, ``???+ note``. Only
MkDocs' types (lowercase), so prose such as "!!! DO NOT run this" stays as it is."""


QUOTE_CALLOUT = re.compile(r"^\[!([A-Za-z]+)\][+-]?[ \t]*")
"""A GitHub or Obsidian call-out's marker (``[!WARNING]``, ``[!danger]-``), first in a quote."""


def summarise(text: str, limit: int = STEP_TITLE_MAX) -> str:
    """The first sentence of ``text``, cut at a word boundary to ``limit`` characters."""
    bare = QUOTE_CALLOUT.sub("", ADMONITION.sub("", text.strip(), count=1), count=1)
    text = " ".join(bare.split()) or " ".join(text.split())
    sentence = _first_sentence(text).rstrip(":").strip()
    if len(sentence) <= limit:
        return sentence
    cut = sentence[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:-") + "…"


_CALLOUT_WORDS = frozenset({"note", "notes", "nb", "important", "warning", "caution", "danger"})
"""Bold words that open a call-out ("**Note**" then what to mind), not a section."""


def bold_heading(block: _Block) -> str | None:
    """The heading a bold line on its own stands for, as Google Docs and Confluence exports
    write them: a section name (``**Diagnosis**``, ``**Mitigation:**``) or a step's title
    (``**Step 1: Check the pods**``). ``None`` for other bold text (``**Note**``, a phrase)."""
    if block.kind != "paragraph" or block.end - block.start != 1 or len(block.tokens) < 2:
        return None
    lead = _bold_lead(block.tokens[1])
    if lead is None or lead[1].strip(" :"):
        return None
    text = " ".join(lead[0].split()).strip(" :")
    if not text or text.casefold() in _CALLOUT_WORDS:
        return None
    return text if is_section_name(text) or _STEP_WORD.match(text) else None


def with_bold_headings(blocks: list[_Block]) -> list[_Block]:
    """``blocks`` with the bold lines that stand for headings (:func:`bold_heading`) made the
    headings they stand for: one level under the heading before them, a step's title one
    level under a bold section name before it (``**Mitigation**`` then ``**Step 1: ...**``)."""
    found: list[_Block] = []
    base = 1  # the level of the last real heading (the document's title at most)
    section = False  # a bold section name is open since that heading
    for block in blocks:
        if block.kind == "heading":
            base, section = int(block.first.tag[1:]), False
        text = bold_heading(block)
        if text is None:
            found.append(block)
            continue
        step = bool(_STEP_WORD.match(text))
        level = min(base + (2 if step and section else 1), 6)
        section = section or not step
        opener = Token("heading_open", f"h{level}", 1, map=[block.start, block.end])
        closer = Token("heading_close", f"h{level}", -1)
        found.append(_Block("heading", [opener, block.tokens[1], closer], block.start, block.end))
    return found
