"""Medians with min-max, interleaving, and the issue's targets."""

import statistics

TARGETS = []  # (target, measured, met, by how much), filled by the scenarios


def med(values):
    return statistics.median(values), min(values), max(values)


def fmt(values, spec):
    m, lo, hi = med(values)
    if len(values) == 1:
        return f"{m:{spec}}"
    return f"{m:{spec}} ({lo:{spec}}-{hi:{spec}})"


def interleaved(reps, targets, run):
    """run(target) -> dict per target per repetition, A B C A B C ..."""
    results = {t: [] for t in targets}
    for _ in range(reps):
        for t in targets:
            results[t].append(run(t))
    return results


def target(what, measured, value, limit, at_most=True, unit=""):
    """Records one of the issue's targets: met, or missed by how much."""
    met = value <= limit if at_most else value >= limit
    if met:
        by = ""
    else:
        gap = value - limit if at_most else limit - value
        by = f"{'over' if at_most else 'short'} by {gap:.3g}{unit}"
        if unit != "x" and limit:
            by += f" ({value / limit:.2f}x the target)"
    TARGETS.append((what, measured, met, by))


def print_targets():
    if not TARGETS:
        return
    print("\n## Against the issue's targets\n")
    print("| target | now (median) | met | miss |")
    print("| --- | --- | --- | --- |")
    for what, measured, met, by in TARGETS:
        print(f"| {what} | {measured} | {'yes' if met else 'no'} | {by} |")


def table(header, rows):
    print("| " + " | ".join(header) + " |")
    print("| " + " | ".join("---" for _ in header) + " |")
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")
