"""RULE9's verdict from ``model_quality.py --unseen`` tables (one per half of the populations): per
network and test set (the gate's holdout, the unseen asteroids, the other days' holdouts), the (case,
seed) pairs won, the margin's min / median, the errors summed, and the closest cases.

Usage:  .venv/bin/python benchmarks/experiments/unseen_asteroids/report.py results/s3-a.md results/s3-b.md
"""

from __future__ import annotations

import statistics
import sys
from collections import defaultdict
from pathlib import Path


def case_rows(path: Path):
    """(population, day, network row, margins, errors, baseline errors, seeds won) for every network row
    of a case. The seeds won are the table's own count, from the exact margins: a margin printed +0.0000
    may be a win by less than 0.00005 or a tie."""
    for line in path.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 10 or not cells[0].isdigit() or cells[4].startswith("baseline"):
            continue
        population, day, _, baseline, name, _, margins, errors, _, wins = cells
        baseline_errors = int(baseline.split("(")[1].rstrip(")"))
        yield (
            int(population),
            day,
            name,
            [float(m) for m in margins.split()],
            [int(e) for e in errors.split()],
            baseline_errors,
            int(wins.split("/")[0]),
        )


def training_seeds(path: Path) -> list[int]:
    """The training seeds of a table, in their order (from its first line, "... training seeds [7, 1234]")."""
    first = path.read_text().splitlines()[0]
    return [int(s) for s in first.split("training seeds [")[1].split("]")[0].split(",")]


def main(paths: list[str]) -> None:
    by_row: dict[str, list[tuple]] = defaultdict(list)
    seeds = training_seeds(Path(paths[0]))
    for path in paths:
        if training_seeds(Path(path)) != seeds:
            raise SystemExit(f"{path} has other training seeds than {paths[0]}")
        for population, day, name, margins, errors, baseline_errors, won in case_rows(Path(path)):
            by_row[name].append((population, day, margins, errors, baseline_errors, won))
    print("| network, scored on | pairs won | margin min | margin median | errors (baseline's) | closest |")
    print("|---|---|---|---|---|---|")
    for name, cases in by_row.items():
        pairs = [(m, p, d, k) for p, d, margins, *_ in cases for k, m in enumerate(margins)]
        margins = [m for m, *_ in pairs]
        errors = sum(sum(e) for _, _, _, e, _, _ in cases)
        baseline = sum(b for *_, b, _ in cases) * len(seeds)
        closest = ", ".join(f"{p} / {d[5:]} seed {seeds[k]} {m:+.4f}" for m, p, d, k in sorted(pairs)[:3])
        print(
            f"| {name} | {sum(c[-1] for c in cases)}/{len(margins)} | {min(margins):+.4f} | "
            f"{statistics.median(margins):+.4f} | {errors} ({baseline}) | {closest} |"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
