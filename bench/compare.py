"""Before/after timings of a code change, in process: bench/profile_scenario.py run from two source
trees (say a copy without the change, and this one), alternately, and the best of each kept. Serial
in-process timings are steadier than wrk throughput on a shared machine.

    .venv/bin/python bench/run.py --prepare-only          # the bench state both trees use
    .venv/bin/python bench/compare.py --before /tmp/before add_to_cart search --rounds 3

The other tree needs .venv and .devstack (symlinks to this tree's are fine) and this bench/ folder.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATTERN = re.compile(r"([\d.]+) ms each \(([\d.]+) ms CPU")


def measure(tree: Path, scenario: str, requests: int) -> tuple[float, float]:
    script = tree / "bench" / "profile_scenario.py"
    output = subprocess.run(  # noqa: S603 - fixed arguments
        [str(tree / ".venv/bin/python"), str(script), scenario, "-n", str(requests), "--no-profile"],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    ).stdout
    match = PATTERN.search(output)
    if not match:
        raise RuntimeError(f"no timing from {tree} for {scenario}: {output[-500:]}")
    return float(match.group(1)), float(match.group(2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenarios", nargs="+")
    parser.add_argument("--before", type=Path, required=True, help="the other source tree")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("-n", "--requests", type=int, default=300)
    args = parser.parse_args()
    trees = {"before": args.before.resolve(), "after": ROOT}
    print(f"{'scenario':14} {'tree':6} {'wall ms (best, median)':>24} {'CPU ms (best, median)':>24}")
    for scenario in args.scenarios:
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
        for _ in range(args.rounds):
            for name, tree in trees.items():
                samples[name].append(measure(tree, scenario, args.requests))
        for name, values in samples.items():
            wall, cpu = [v[0] for v in values], [v[1] for v in values]
            print(
                f"{scenario:14} {name:6} {min(wall):11.2f} {statistics.median(wall):11.2f}"
                f" {min(cpu):11.2f} {statistics.median(cpu):11.2f}",
                flush=True,
            )


if __name__ == "__main__":
    sys.exit(main())
