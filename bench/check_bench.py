"""`sandboxwatch check` on a big day, as a user runs it: throughput and peak memory of the CLI process.

Prints, from one run over the same file: a bare ``json.loads`` loop (the reference rate), then
`sandboxwatch check` on the file in time order (streamed) and on the same lines shuffled (sorted in
bounded chunks on disk): events/s, ratio to the bare loop, and the peak RSS of the check's process.
Each check runs as a child of a small launcher process, which reports the child's peak RSS as
``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` (a launcher per run, so runs are not mixed, and small, so
the fork's pre-exec memory is not counted). Targets (issue 18): peak RSS < 512 MiB on a 1M-event day,
>= 0.3 of the bare ``json.loads`` rate.

    python bench/check_bench.py [--events 1000000] [--file day.jsonl] [--no-shuffled]

The simulated day is cached in the temporary directory by size and seed (simulating 1M events takes a
minute); ``--file`` checks a file of your own instead.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sandboxwatch.rules_engine.licence import load_licence  # noqa: E402
from sandboxwatch.simulator import SimulationConfig, simulate_to_files  # noqa: E402

LICENCE = ROOT / "config" / "licences" / "da-nang-pilot.yaml"
RSS_TARGET_MIB = 512
RATIO_TARGET = 0.3


def day_file(events: int, seed: int) -> Path:
    path = Path(tempfile.gettempdir()) / f"sandboxwatch-check-bench-{events}-{seed}.jsonl"
    if not path.exists():
        partial = path.with_suffix(".partial")
        print(f"simulating {events} events to {path} ...", file=sys.stderr)
        config = SimulationConfig(accounts=max(3000, events // 300), seed=seed, target_events=events)
        simulate_to_files(load_licence(LICENCE), config, partial, None)
        partial.rename(path)
    return path


def shuffled_copy(path: Path, seed: int) -> Path:
    out = path.with_name(path.stem + "-shuffled.jsonl")
    if not out.exists():
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        random.Random(seed).shuffle(lines)
        out.with_suffix(".partial").write_text("".join(lines), encoding="utf-8")
        out.with_suffix(".partial").rename(out)
    return out


def bare_json(path: Path) -> tuple[int, float]:
    start = time.perf_counter()
    count = 0
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                json.loads(line)
                count += 1
    return count, time.perf_counter() - start


# Runs one command and reports its wall time and resource.getrusage(RUSAGE_CHILDREN).ru_maxrss: a small
# process of its own, because a child's maxrss counts what it had before exec, i.e. the forking parent's
# memory, and this bench's own process has held whole files.
_LAUNCHER = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
with open(sys.argv[1], "wb") as err:
    code = subprocess.call(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=err)
seconds = time.perf_counter() - start
print(json.dumps([seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code]))
"""


def run_check(path: Path) -> tuple[float, int, int, str]:
    """(seconds, peak RSS in KiB, exit code, the CLI's summary lines) of one `sandboxwatch check` process."""
    command = [sys.executable, "-m", "sandboxwatch.cli", "check", "--licence", str(LICENCE), "--events", str(path)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with tempfile.NamedTemporaryFile() as err:
        out = subprocess.run(
            [sys.executable, "-c", _LAUNCHER, err.name, *command], env=env, capture_output=True, text=True, check=True
        )
        seconds, rss_kib, code = json.loads(out.stdout)
        summary = Path(err.name).read_text(encoding="utf-8", errors="replace").strip().splitlines()[-2:]
    return seconds, rss_kib, code, " | ".join(summary)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--file", type=Path, help="check this JSONL file instead of a simulated day")
    parser.add_argument("--no-shuffled", action="store_true", help="skip the shuffled (sorting) run")
    args = parser.parse_args()
    path = args.file or day_file(args.events, args.seed)
    runs = [("in time order", path)]
    if not args.no_shuffled:
        runs.append(("shuffled", shuffled_copy(path, args.seed)))
    count, bare_seconds = bare_json(path)
    bare_rate = count / bare_seconds
    print(f"file: {path} ({count} events, {path.stat().st_size / 2**20:.0f} MiB); cpus: {os.cpu_count()}, "
          f"load average at start: {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"bare json.loads loop: {bare_rate:,.0f} events/s ({bare_seconds:.1f} s)")
    for name, events in runs:
        seconds, rss_kib, code, summary = run_check(events)
        rate = count / seconds
        rss_mib = rss_kib / 1024
        ratio = rate / bare_rate
        print(
            f"check, {name}: {rate:,.0f} events/s ({seconds:.1f} s), {ratio:.2f} of bare json.loads "
            f"(target >= {RATIO_TARGET}), peak RSS {rss_mib:,.0f} MiB (target < {RSS_TARGET_MIB}), exit {code}"
        )
        print(f"    {summary}")
    # The reference loop again, after: the machine is shared, so the ratio is only as good as the two agree.
    _, again = bare_json(path)
    print(f"bare json.loads loop again: {count / again:,.0f} events/s")


if __name__ == "__main__":
    main()
