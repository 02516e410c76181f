"""Benchmark of `collectstatic` on a fresh machine and on the next run.

    python bench/static.py [--runs 1]

Collects the project's static files with the production storage into empty temporary folders, three
ways, `--runs` times each (interleaved), in child processes:
- baseline: whitenoise's own CompressedManifestStaticFilesStorage (every file compressed twice, Brotli
  at its best quality);
- cold: config.storage.StaticFilesStorage with an empty compression cache (a first `make run`);
- warm: the same with the cache the cold run left (every later `collectstatic`, or a rebuilt image that
  keeps the cache folder).
Ends with one line: baseline_s=… cold_s=… warm_s=… cold_speedup=… warm_speedup=… files=… (medians).
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def collect(backend: str, cache: Path) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as root:
        env = {
            **os.environ,
            "DJANGO_DEBUG": "false",
            "STATIC_ROOT": root,
            "STATICFILES_BACKEND": backend,
            "STATIC_COMPRESS_CACHE": str(cache),
        }
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        elapsed = time.perf_counter() - started
        files = sum(len(names) for _, _, names in os.walk(root))
    return elapsed, files


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"baseline": [], "cold": [], "warm": []}
    files = 0
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as cache_dir:
            cache = Path(cache_dir)
            seconds, files = collect("whitenoise.storage.CompressedManifestStaticFilesStorage", cache)
            times["baseline"].append(seconds)
            times["cold"].append(collect("config.storage.StaticFilesStorage", cache)[0])
            times["warm"].append(collect("config.storage.StaticFilesStorage", cache)[0])
        print(f"run {run + 1}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in times.items()), flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"baseline_s={med['baseline']:.1f} cold_s={med['cold']:.1f} warm_s={med['warm']:.1f} "
        f"cold_speedup={med['baseline'] / med['cold']:.2f} warm_speedup={med['baseline'] / med['warm']:.2f} "
        f"files={files}"
    )


if __name__ == "__main__":
    main()
