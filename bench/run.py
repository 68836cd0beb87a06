"""`make bench` / `python -m bench`: run the benchmarks, print one table, write JSON.

python -m bench                      # everything (the Flower ones take a while)
python -m bench --quick              # smaller sizes, no real-Flower benchmarks: minutes
python -m bench --only tracker,api   # a subset (names below); --db sqlite,postgres
python -m bench --markdown           # the last results as a Markdown table
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.worker import BENCHMARKS

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "latest.json"
# Which databases a benchmark runs on when --db names both: the runtime ones use the default.
BOTH_DBS = {"tracker", "api"}
FLOWER = ["flower-overhead", "flower-bigmodel", "flower-20sites"]
QUICK_DEFAULT = ["tracker", "api", "mlflow"]


def run_one(name: str, db: str, quick: bool, log_dir: Path) -> list[dict]:
    out = log_dir / f"{name}-{db}.json"
    log = log_dir / f"{name}-{db}.log"
    command = [sys.executable, "-m", "bench.worker", name, "--db", db, "--out", str(out)]
    if quick:
        command.append("--quick")
    started = time.monotonic()
    print(f"… {name} ({db})", flush=True)
    with log.open("w") as fh:
        code = subprocess.call(command, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT)
    if code != 0 or not out.exists():
        return [
            {
                "benchmark": name,
                "figure": "benchmark did not finish",
                "measured": f"exit code {code}; see {log}",
                "target": "runs",
                "passed": False,
                "db": db,
                "values": {},
            }
        ]
    figures = json.loads(out.read_text())
    for figure in figures:
        figure["values"]["seconds"] = round(time.monotonic() - started, 1)
    print(f"  done in {time.monotonic() - started:.0f} s (log: {log})", flush=True)
    return figures


def table(figures: list[dict]) -> str:
    verdict = {True: "pass", False: "FAIL", None: "—"}
    header = ("benchmark", "db", "figure", "measured", "target", "")
    rows = [header] + [
        (f["benchmark"], f["db"], f["figure"], f["measured"], f["target"], verdict[f["passed"]])
        for f in figures
    ]
    widths = [min(max(len(r[i]) for r in rows), 70) for i in range(len(header))]
    lines = []
    for i, row in enumerate(rows):
        cells = [cell.ljust(widths[j])[: max(widths[j], len(cell))] for j, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(figures: list[dict]) -> str:
    """The results as a Markdown table (for the README's Performance section)."""
    verdict = {True: "✅", False: "❌", None: "—"}
    lines = ["| Benchmark | DB | Figure | Measured | Target | |", "|---|---|---|---|---|---|"]
    for f in figures:
        cells = [f["benchmark"], f["db"], f["figure"], f["measured"], f["target"]]
        cells = [c.replace("|", "\\|") for c in cells]
        lines.append("| " + " | ".join(cells) + f" | {verdict[f['passed']]} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes; skips Flower runs")
    parser.add_argument("--only", default="", help=f"comma list of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--db", default="sqlite,postgres", help="sqlite, postgres or both")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--merge", action="store_true", help="replace only these benchmarks' lines in --out"
    )
    parser.add_argument(
        "--markdown", action="store_true", help="print --out as a Markdown table; run nothing"
    )
    args = parser.parse_args()
    if args.markdown:
        print(markdown(json.loads(args.out.read_text())["figures"]))
        return
    names = [n for n in args.only.split(",") if n] or (
        QUICK_DEFAULT if args.quick else QUICK_DEFAULT + FLOWER
    )
    unknown = set(names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(sorted(unknown))}")
    dbs = [d for d in args.db.split(",") if d]
    figures: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="fedtrack-bench-") as tmp:
        log_dir = Path(os.environ.get("BENCH_LOG_DIR", tmp))
        log_dir.mkdir(parents=True, exist_ok=True)
        for name in names:
            for db in dbs if name in BOTH_DBS else dbs[:1]:
                figures.extend(run_one(name, db, args.quick, log_dir))
    if args.merge and args.out.exists():
        kept = [
            f for f in json.loads(args.out.read_text())["figures"] if f["benchmark"] not in names
        ]
        order = list(BENCHMARKS)
        figures = sorted(kept + figures, key=lambda f: order.index(f["benchmark"]))
    print()
    print(table(figures))
    print("\nload average (1, 5, 15 min): " + ", ".join(f"{x:.1f}" for x in os.getloadavg()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "quick": args.quick,
                "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
                f"{platform.python_version()}",
                "load_average": os.getloadavg(),
                "figures": figures,
            },
            indent=1,
            default=str,
        )
    )
    print(f"\nresults: {args.out}")
    # A missed target is a figure to read, not a broken run; a benchmark that crashed is.
    crashed = [f for f in figures if f["target"] == "runs"]
    sys.exit(1 if crashed else 0)
