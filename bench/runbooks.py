"""Benchmark runbooks: parsing and rendering real runbooks, loading a large catalog, matching.

    python bench/runbooks.py
    python bench/runbooks.py --runbooks 5000 --match-runs 2000

1. Parse + render the bundled public corpus (tests/corpus): every file parsed, every page of its
   Slack message rendered (10 steps per page). Target: under 1 s for the whole corpus.
2. Load N runbooks (default 1,000, made from the corpus with distinct names, services and alerts)
   from a temporary directory into a catalog. Target: under 2 s for 1,000.
3. Match one incident (title, summary, service, severity, alert) against that catalog, many
   times: p50 and p99 per match. Target: under 10 ms.

Figures are printed, never asserted: run it by hand on the machine you care about.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from bot.config import Policy
from bot.runbooks.catalog import RunbookCatalog
from bot.runbooks.parser import load_runbook_file
from bot.slack.runbook_messages import render_runbook_pages

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "tests" / "corpus"
SERVICES = ["payments", "checkout", "search", "auth", "api", "web", "orders", "billing"]


def corpus_files() -> list[Path]:
    return sorted(
        p for p in CORPUS.rglob("*") if p.is_file() and not p.name.startswith(("LICENSE", "_", "."))
    )


def bench_corpus(files: list[Path], repeat: int) -> None:
    timings = []
    pages = steps = 0
    for _ in range(repeat):
        pages = steps = 0
        started = time.perf_counter()
        for path in files:
            runbook = load_runbook_file(path, path.stem)
            steps += len(runbook.steps)
            pages += len(render_runbook_pages(runbook, steps_per_page=10))
        timings.append(time.perf_counter() - started)
    best, median = min(timings), statistics.median(timings)
    print(
        f"parse + render corpus: {len(files)} files, {steps} steps, {pages} Slack pages: "
        f"median {median * 1000:.0f} ms, best {best * 1000:.0f} ms "
        f"({median / len(files) * 1000:.2f} ms per file)  [target < 1000 ms]"
    )


def make_catalog_dir(root: Path, count: int, files: list[Path]) -> None:
    rng = random.Random(42)
    texts = [p.read_text(encoding="utf-8") for p in files if p.suffix == ".md"]
    for i in range(count):
        body = texts[i % len(texts)]
        if body.startswith("---\n"):
            body = body.split("\n---\n", 1)[-1]
        services = rng.sample(SERVICES, k=rng.randint(0, 2))
        front = (
            "---\n"
            f"title: Runbook {i} for {' and '.join(services) or 'any service'}\n"
            f"services: [{', '.join(services)}]\n"
            f"alerts: [GeneratedAlert{i}]\n"
            f"severities: [{rng.choice(['SEV1', 'SEV2', 'SEV3'])}, SEV4]\n"
            "---\n"
        )
        path = root / f"team-{i % 20:02d}" / f"runbook-{i:05d}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(front + body, encoding="utf-8")


def bench_load(root: Path, repeat: int) -> RunbookCatalog:
    timings = []
    catalog = RunbookCatalog()
    for _ in range(repeat):
        started = time.perf_counter()
        catalog = RunbookCatalog.load([root], policy=Policy())
        timings.append(time.perf_counter() - started)
    print(
        f"load catalog: {len(catalog)} runbooks: median {statistics.median(timings) * 1000:.0f} "
        f"ms, best {min(timings) * 1000:.0f} ms  [target < 2000 ms]"
    )
    return catalog


def bench_match(catalog: RunbookCatalog, runs: int) -> None:
    incident = {
        "title": "Pods crash looping after deploy, disk filling up on node",
        "summary": "Checkout pods restart over and over; etcd reports slow fsync and the "
        "filesystem on the node is almost out of space.",
        "service": "checkout",
        "severity": "SEV2",
        "alerts": ["KubePodCrashLooping", "GeneratedAlert17"],
    }
    timings = []
    matches = catalog.match(**incident)  # type: ignore[arg-type]
    for _ in range(runs):
        started = time.perf_counter()
        catalog.match(**incident)  # type: ignore[arg-type]
        timings.append(time.perf_counter() - started)
    timings.sort()
    p50 = timings[len(timings) // 2] * 1000
    p99 = timings[min(len(timings) - 1, int(len(timings) * 0.99))] * 1000
    print(
        f"match one incident against {len(catalog)} runbooks ({runs} runs): "
        f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {timings[-1] * 1000:.2f} ms  "
        f"[target < 10 ms]; {len(matches)} matches, best: "
        + ", ".join(f"{m.runbook.id} ({m.score:g})" for m in matches[:3])
    )
    started = time.perf_counter()
    for _ in range(runs):
        catalog.search("etcd defrag disk")
    print(
        f"search '/incident runbook etcd defrag disk': "
        f"{(time.perf_counter() - started) / runs * 1000:.2f} ms per search"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runbooks", type=int, default=1000, help="catalog size (default 1000)")
    parser.add_argument("--match-runs", type=int, default=1000, help="matches to time")
    parser.add_argument("--repeat", type=int, default=5, help="repeats of the corpus and load")
    args = parser.parse_args()

    files = corpus_files()
    bench_corpus(files, args.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_catalog_dir(root, args.runbooks, files)
        catalog = bench_load(root, args.repeat)
        bench_match(catalog, args.match_runs)


if __name__ == "__main__":
    main()
