"""Evidence bundles: one zip archive per incident that an auditor can check offline.

Contents (every file listed in ``manifest.json`` with its SHA-256 and size):

* ``incident.json``: the incident row
* ``timeline.json`` and ``timeline.csv``: every event, retracted ones and retractions included,
  with ``prev_hash`` and ``hash``
* ``postmortems/v<N>.md``: every postmortem version
* ``reminders_sent.json``: reminders, escalations and clock warnings that were sent
* ``access_refusals.json``: ``permission_denied`` events
* ``clocks.json``: regulatory clocks and their state at export time
* ``chain.json``: the chain head, the event count and the verification result at export
* ``tables/<table>.json``: every stored row that belongs to the incident (roles, action items,
  runbook runs with their snapshot, step results, reminder rows, postmortem metadata, alerts
  when the alerts tables exist, ...)

``manifest.sig`` (when ``FIREBREAK_AUDIT_SIGNING_KEY`` is set) is an Ed25519 signature over the
exact bytes of ``manifest.json``; the manifest carries the public key. ``verify_bundle`` needs
only the file (and, to pin the signer, the expected public key), never the database.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy.exc import DataError
from sqlmodel import Session

from bot.audit.chain import GENESIS
from bot.audit.clocks import EventView, IncidentTimes, clock_board, clock_records
from bot.audit.keys import public_key_text
from bot.audit.records import INCIDENTS, TIMELINE, incident_row, iter_related, jsonable
from bot.audit.verify import check_chain, stored_event, stored_head_break
from bot.clock import as_utc, utcnow
from bot.config import Policy
from bot.errors import FirebreakError
from bot.incidents.queries import parse_incident_ref
from bot.models import EventKind
from bot.outputs import csv_cell

FORMAT = "firebreak-evidence/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
_SENT_KINDS = {EventKind.REMINDER_SENT, EventKind.ESCALATED, EventKind.CLOCK_WARNED}
_CSV_FIELDS = [
    "id",
    "occurred_at",
    "recorded_at",
    "kind",
    "actor_id",
    "text",
    "data",
    "source_url",
    "source_ref",
    "idempotency_key",
    "prev_hash",
    "hash",
]


class BundleError(FirebreakError):
    """The bundle cannot be read at all (not a zip, no manifest)."""


# --------------------------------------------------------------------------------------------
# Writing


def _json(value: Any) -> bytes:
    return (
        json.dumps(jsonable(value), indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    ).encode()


def _timeline_csv(events: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=_CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for event in events:
        row = {name: jsonable(event.get(name)) for name in _CSV_FIELDS}
        row["data"] = json.dumps(row["data"], ensure_ascii=False, sort_keys=True)
        writer.writerow({name: csv_cell(value) for name, value in row.items()})
    return out.getvalue().encode()


@dataclass(frozen=True)
class Export:
    path: Path
    files: int
    events: int
    chain_head: str
    chain_ok: bool
    signed_by: str | None


def build_files(
    session: Session, policy: Policy, incident_id: int, *, now: datetime
) -> tuple[dict[str, bytes], dict[str, Any]]:
    """The bundle's files (name -> bytes) and the chain summary. A stored value the database
    types cannot decode (changed outside Firebreak) stops the export: ``FirebreakError``."""
    try:
        incident = incident_row(session, incident_id)
        if incident is None:
            raise FirebreakError(f"No incident with id {incident_id}.")
        tables = dict(iter_related(session, incident_id))
    except (ValueError, TypeError, DataError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0][:120]
        raise FirebreakError(
            f"incident id {incident_id}: a stored row cannot be read ({reason}): the database "
            "was changed outside Firebreak; `firebreak audit verify` names the row"
        ) from None
    events = tables.pop(TIMELINE, [])
    number = int(incident["number"])
    count, head, broken = check_chain(number, events)
    if broken is None:  # intact, but does it end where its incident row says it does?
        broken = stored_head_break(number, count, head, events, incident)
    chain = {
        "incident": f"INC-{incident['number']}",
        "events": count,
        "head": head if events else GENESIS,
        "verified_at_export": broken is None,
        "first_break": broken.describe() if broken else None,
    }
    times = IncidentTimes(
        as_utc(incident["declared_at"]),
        as_utc(incident["detected_at"]) if incident["detected_at"] else None,
        as_utc(incident["impact_started_at"]) if incident["impact_started_at"] else None,
    )
    from_events = [
        EventView(str(e["kind"]), as_utc(e["occurred_at"]), e["data"] or {}) for e in events
    ]
    board = clock_board(policy.clocks, times, from_events)
    files: dict[str, bytes] = {
        "incident.json": _json(incident),
        "timeline.json": _json(events),
        "timeline.csv": _timeline_csv(events),
        "reminders_sent.json": _json([e for e in events if e["kind"] in _SENT_KINDS]),
        "access_refusals.json": _json(
            [e for e in events if e["kind"] == EventKind.PERMISSION_DENIED]
        ),
        "clocks.json": _json(clock_records(board, now)),
        "chain.json": _json(chain),
    }
    for version in tables.get("postmortems", []):
        files[f"postmortems/v{version['version']}.md"] = str(version["markdown"]).encode()
    for name, rows in sorted(tables.items()):
        if name != INCIDENTS:
            files[f"tables/{name}.json"] = _json(rows)
    return files, chain


def write_bundle(
    session: Session,
    policy: Policy,
    incident_id: int,
    output: Path,
    *,
    signing_key: Ed25519PrivateKey | None = None,
    now: datetime | None = None,
) -> Export:
    """Write the evidence bundle of one incident to ``output`` (a new zip file)."""
    now = as_utc(now or utcnow())
    files, chain = build_files(session, policy, incident_id, now=now)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "incident": chain["incident"],
        "exported_at": now.isoformat(),
        "chain_head": chain["head"],
        "events": chain["events"],
        "files": {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
            for name, data in sorted(files.items())
        },
        "public_key": public_key_text(signing_key.public_key()) if signing_key else None,
    }
    manifest_bytes = _json(manifest)
    stamp = now.astimezone(UTC).timetuple()[:6]
    partial = output.with_name(output.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in [*sorted(files.items()), (MANIFEST, manifest_bytes)]:
            archive.writestr(zipfile.ZipInfo(name, date_time=stamp), data)
        if signing_key is not None:
            signature = base64.b64encode(signing_key.sign(manifest_bytes)) + b"\n"
            archive.writestr(zipfile.ZipInfo(SIGNATURE, date_time=stamp), signature)
    os.replace(partial, output)
    return Export(
        output,
        len(files),
        int(chain["events"]),
        str(chain["head"]),
        bool(chain["verified_at_export"]),
        manifest["public_key"],
    )


# --------------------------------------------------------------------------------------------
# Verifying, offline


@dataclass
class BundleReport:
    incident: str = "?"
    files: int = 0
    events: int = 0
    chain_head: str = ""
    signed_by: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_bundle(path: Path, *, public_key: Ed25519PublicKey | None = None) -> BundleReport:
    """Check a bundle without the database: every file against the manifest, no file missing or
    added, the timeline's hash chain and its head, and the signature (against ``public_key``
    when given). Each problem names the file."""
    report = BundleReport()
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise BundleError(f"{path}: not a readable evidence bundle ({exc})") from None
    with archive:
        names = [info.filename for info in archive.infolist()]
        for name, times in sorted(Counter(names).items()):
            if times > 1:
                report.problems.append(
                    f"{name}: in the archive {times} times: a copy was added after the export "
                    "(tools disagree on which one they show)"
                )
        contents: dict[str, bytes] = {}
        for name in names:
            try:
                contents[name] = archive.read(name)
            except (zipfile.BadZipFile, OSError, ValueError) as exc:
                report.problems.append(f"{name}: damaged in the archive ({exc})")
    if MANIFEST not in contents:
        if MANIFEST in names:
            return report
        raise BundleError(f"{path}: no {MANIFEST}: not a Firebreak evidence bundle")
    manifest_bytes = contents[MANIFEST]
    try:
        manifest = json.loads(manifest_bytes)
        listed: dict[str, Any] = manifest["files"]
    except (ValueError, KeyError, TypeError):
        listed = {}
    if not isinstance(listed, dict) or not listed:
        report.problems.append(f"{MANIFEST}: not valid JSON with a files list")
        return report
    if not all(isinstance(entry, dict) for entry in listed.values()):
        report.problems.append(f"{MANIFEST}: a files entry is not an object with a sha256")
        return report
    report.incident = str(manifest.get("incident", "?"))
    report.files = len(listed)
    _check_signature(report, manifest, manifest_bytes, contents, names, public_key)
    for name, entry in sorted(listed.items()):
        if name not in names:
            report.problems.append(f"{name}: listed in the manifest but missing from the bundle")
        elif name in contents:
            digest = hashlib.sha256(contents[name]).hexdigest()
            if digest != entry.get("sha256"):
                report.problems.append(
                    f"{name}: SHA-256 {digest[:12]}… does not match the manifest "
                    f"({str(entry.get('sha256'))[:12]}…): the file was changed"
                )
    for name in names:
        # A directory entry is no file: an archive unpacked and zipped again has them.
        if name not in listed and name not in (MANIFEST, SIGNATURE) and not name.endswith("/"):
            report.problems.append(f"{name}: not in the manifest: added after the export")
    if "timeline.json" in contents:
        _check_timeline(report, manifest, contents["timeline.json"], contents.get("incident.json"))
    return report


def _check_signature(
    report: BundleReport,
    manifest: dict[str, Any],
    manifest_bytes: bytes,
    contents: dict[str, bytes],
    names: list[str],
    expected: Ed25519PublicKey | None,
) -> None:
    embedded = manifest.get("public_key")
    if SIGNATURE not in names:
        if embedded or expected is not None:
            report.problems.append(f"{SIGNATURE}: missing: the bundle is not signed")
        return
    if SIGNATURE not in contents:
        return
    try:
        signer = Ed25519PublicKey.from_public_bytes(base64.b64decode(str(embedded)))
        signature = base64.b64decode(contents[SIGNATURE].strip(), validate=True)
    except (ValueError, TypeError):
        report.problems.append(f"{SIGNATURE}: unreadable signature or public key in the manifest")
        return
    report.signed_by = public_key_text(signer)
    try:
        signer.verify(signature, manifest_bytes)
    except InvalidSignature:
        report.problems.append(f"{MANIFEST}: the signature does not match: manifest changed")
        return
    if expected is not None and public_key_text(expected) != report.signed_by:
        report.problems.append(
            f"{SIGNATURE}: signed by key {report.signed_by[:16]}…, not by the expected key "
            f"{public_key_text(expected)[:16]}…: wrong key"
        )


def _check_timeline(
    report: BundleReport, manifest: dict[str, Any], data: bytes, incident_data: bytes | None
) -> None:
    try:
        events = json.loads(data)
    except ValueError:
        events = None
    if not isinstance(events, list) or not all(isinstance(event, dict) for event in events):
        report.problems.append("timeline.json: not a list of timeline events")
        return
    number = parse_incident_ref(report.incident)
    if number is None:
        report.problems.append(
            f"{MANIFEST}: incident {report.incident[:40]!r} is not an incident number like INC-42"
        )
    count, head, broken = check_chain(number or 0, events, stored_event)
    report.events, report.chain_head = count, head
    if broken is not None:
        report.problems.append(f"timeline.json: {broken.describe()}")
    elif head != manifest.get("chain_head"):
        report.problems.append(
            f"timeline.json: chain head {head[:12]}… differs from the manifest's "
            f"{str(manifest.get('chain_head'))[:12]}…"
        )
    else:
        # The incident row's head, exported with it: events deleted from the end of the
        # timeline before the export leave a chain that holds but ends before it.
        try:
            incident = json.loads(incident_data) if incident_data is not None else None
        except ValueError:
            incident = None
        if not isinstance(incident, dict) or "chain_events" not in incident:
            # Missing, damaged or changed (named above, against the manifest), or exported
            # before incident rows kept their chain's head.
            return
        short = stored_head_break(number or 0, count, head, events, incident)
        if short is not None:
            report.problems.append(f"timeline.json: {short.describe()}")
