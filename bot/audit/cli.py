"""``firebreak audit``: verify the timeline chains, export and check evidence bundles, apply the
retention policy.

    firebreak audit verify [INC-N ...]            exit 1 names the first bad event per incident
    firebreak audit export INC-N --output FILE    signed when FIREBREAK_AUDIT_SIGNING_KEY is set
    firebreak audit verify-bundle FILE [--public-key KEY]   offline; exit 1 names each problem
    firebreak audit retention [--apply]           what is due; --apply exports, then removes
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bot.audit import retention
from bot.audit.bundle import verify_bundle, write_bundle
from bot.audit.keys import load_public_key, load_signing_key
from bot.audit.verify import verify_chains
from bot.config import Settings, load_configuration
from bot.db import Database
from bot.errors import ConfigError, FirebreakError, InvalidInput
from bot.incidents import NUMBER_MAX, find_incident, parse_incident_ref
from bot.outputs import check_output_file

EXIT_OK = 0
EXIT_FAILED = 1


def _signing_key(settings: Settings) -> Ed25519PrivateKey | None:
    """FIREBREAK_AUDIT_SIGNING_KEY as the settings read it, so a key in ``.env`` signs exactly as
    one in the environment does. A key that is set but unusable stops the command (exit 2)
    before anything is written, never an unsigned bundle."""
    secret = settings.audit_signing_key
    try:
        return load_signing_key(secret.get_secret_value() if secret is not None else None)
    except ConfigError as exc:
        raise ConfigError(f"environment: {exc}") from None


def cmd_verify(args: argparse.Namespace) -> int:
    settings, _ = load_configuration(args.policy)
    numbers = None
    if args.incidents:
        numbers = []
        for ref in args.incidents:
            number = parse_incident_ref(ref)
            if number is None:
                raise InvalidInput(f"{ref[:40]!r} is not an incident number; write it like INC-42.")
            numbers.append(number)
    db = Database(settings.database_url, read_only=True)  # a copy too
    began = time.perf_counter()
    try:
        with db.read() as session:
            known = None if numbers is None else [n for n in numbers if n <= NUMBER_MAX]
            report = verify_chains(session, known)
    finally:
        db.dispose()
    elapsed = time.perf_counter() - began
    if numbers is not None:
        missing = sorted(set(numbers) - report.found - set(report.missing))
        for number in missing:
            print(f"firebreak: INC-{number}: no such incident", file=sys.stderr)
        if missing:
            return EXIT_FAILED
    for broken in report.breaks:
        print(broken.describe())
    summary = (
        f"{report.incidents} incidents, {report.events} events checked in {elapsed:.2f}s: "
        + ("every chain intact" if report.ok else f"{len(report.breaks)} chains broken")
    )
    print(summary, file=sys.stderr if not report.ok else sys.stdout)
    return EXIT_OK if report.ok else EXIT_FAILED


def cmd_export(args: argparse.Namespace) -> int:
    settings, policy = load_configuration(args.policy)
    output = Path(args.output)
    check_output_file(output)
    key = _signing_key(settings)
    db = Database(settings.database_url, read_only=True)  # a copy too
    try:
        with db.read(snapshot=True) as session:
            incident = find_incident(session, args.incident)
            assert incident.id is not None
            try:
                result = write_bundle(session, policy, incident.id, output, signing_key=key)
            except OSError as exc:
                raise FirebreakError(f"{output}: cannot write: {exc.strerror or exc}") from None
    finally:
        db.dispose()
    print(
        f"wrote {result.path}: {result.files} files, {result.events} events, chain head "
        f"{result.chain_head}"
    )
    print(f"signed with Ed25519 public key {result.signed_by}" if result.signed_by else "unsigned")
    if not result.chain_ok:
        print(
            f"warning: the chain of {incident.ref} does not verify; see chain.json in the bundle",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return EXIT_OK


def cmd_verify_bundle(args: argparse.Namespace) -> int:
    key = load_public_key(args.public_key) if args.public_key else None
    report = verify_bundle(Path(args.file), public_key=key)
    for problem in report.problems:
        print(f"{args.file}: {problem}")
    if not report.ok:
        return EXIT_FAILED
    signed = f"signed by {report.signed_by}" if report.signed_by else "unsigned"
    pinned = " (the expected key)" if key is not None else ""
    print(
        f"{args.file}: OK: {report.incident}, {report.files} files, chain of {report.events} "
        f"events intact (head {report.chain_head}), {signed}{pinned}"
    )
    return EXIT_OK


def cmd_retention(args: argparse.Namespace) -> int:
    settings, policy = load_configuration(args.policy)
    rules = policy.retention
    if rules.export_after is None and rules.remove_after is None:
        print("no retention policy: nothing is exported or removed ([retention] in the policy)")
        return EXIT_OK
    retention.check_archive_dir(policy)  # a missing archive stops here, before anything
    # Parsed once for every incident; a bad key stops here, before anything is exported or
    # removed.
    key = _signing_key(settings) if args.apply else None
    db = Database(settings.database_url)
    failed = False
    try:
        with db.read() as session:
            items = retention.due(session, policy)
        if not items:
            print("nothing is due")
        for item in items:
            print(item.describe())
            if not args.apply:
                continue
            try:
                if item.remove or not item.exported:  # a removal always exports afresh
                    exported = retention.export_incident(db, policy, item, key)
                    print(f"  exported to {exported.path} ({exported.events} events)")
                    if not exported.chain_ok:
                        print(
                            f"  the chain of INC-{item.number} does not verify (see chain.json "
                            f"in the bundle; `firebreak audit verify INC-{item.number}`): "
                            "nothing removed",
                            file=sys.stderr,
                        )
                        failed = True
                        continue
                if item.remove:
                    removed = retention.remove_incident(db, policy, item)
                    print(f"  removed {removed} events; tombstone recorded")
            except (FirebreakError, OSError) as exc:
                print(f"  {exc}", file=sys.stderr)
                failed = True
    finally:
        db.dispose()
    if items and not args.apply:
        print("run with --apply to export and remove")
    return EXIT_FAILED if failed else EXIT_OK


def register(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``firebreak audit ...`` (called from ``bot.cli.build_parser``)."""
    audit = commands.add_parser(
        "audit", help="tamper-evident timeline, evidence bundles, retention (docs/audit.md)"
    )
    actions = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)

    verify = actions.add_parser(
        "verify", help="recompute the timeline hash chains; exit 1 names the first bad event"
    )
    verify.add_argument("incidents", nargs="*", metavar="INC-N", help="default: every incident")
    verify.set_defaults(handler=cmd_verify, needs_database=True)

    export = actions.add_parser("export", help="write an incident's evidence bundle (zip)")
    export.add_argument("incident", metavar="INC-N")
    export.add_argument("--output", "-o", required=True, metavar="FILE")
    export.set_defaults(handler=cmd_export, needs_database=True)

    check = actions.add_parser(
        "verify-bundle", help="check an evidence bundle offline (no database needed)"
    )
    check.add_argument("file", metavar="FILE")
    check.add_argument(
        "--public-key",
        metavar="KEY",
        help="the signer's Ed25519 public key (PEM, base64, or a file): refuse other signers",
    )
    check.set_defaults(handler=cmd_verify_bundle)

    keep = actions.add_parser(
        "retention", help="what the retention policy wants exported or removed now"
    )
    keep.add_argument(
        "--apply", action="store_true", help="export what is due, then remove what is due"
    )
    keep.set_defaults(handler=cmd_retention, needs_database=True)
