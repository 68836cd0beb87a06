"""One benchmark in its own process: `python -m bench.worker NAME --db sqlite --out FILE`."""

import argparse
import importlib
import json
import math
import os
import shutil
import signal
import sys
import traceback
from pathlib import Path

from bench.common import Figure, setup_django

BENCHMARKS = {
    "tracker": "bench.tracker_replay",
    "api": "bench.api_latency",
    "mlflow": "bench.mlflow_compare",
    "flower-overhead": "bench.flower_jobs:overhead",
    "flower-bigmodel": "bench.flower_jobs:big_model",
    "flower-20sites": "bench.flower_jobs:twenty_sites",
}


def _finite(value):
    """NaN (no samples) is not JSON: null instead."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("name", choices=sorted(BENCHMARKS))
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    # A plain SIGTERM would skip the `finally`s that stop the benchmark's servers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    module_name, _, func = BENCHMARKS[args.name].partition(":")
    work_dir = None
    try:
        work_dir, _ = setup_django(args.db)
        module = importlib.import_module(module_name)
        run = getattr(module, func or "run")
        figures = run(args.db, args.quick)
    except Exception as exc:
        traceback.print_exc()
        figures = [Figure(args.name, "benchmark crashed", repr(exc)[:300], "runs", False, args.db)]
    finally:
        if work_dir is not None and not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(work_dir, ignore_errors=True)
    args.out.write_text(json.dumps([_finite(f.to_json()) for f in figures], indent=1, default=str))
    sys.exit(0)


if __name__ == "__main__":
    main()
