#!/usr/bin/env python3
"""Markdown tables of learning curves from the JSON lines that `gantry bench
learn --jsonl FILE` and `gantry bench learn-score --jsonl FILE` append: one
table per attribute, a column per curve (training / held-out classes, %).

    scripts/learn-table.py runs/curves.jsonl [colour shape ...]
    scripts/learn-table.py --summary runs/curves.jsonl [colour shape ...]

--summary prints one row per curve instead: each attribute at the last step
and averaged over the last half of the steps (a single curve moves by ten
points from one line to the next), and so the diversity of each caption's
pictures under z (background / position, 1.0 = as varied as the data).
"""
import json
import sys


def main():
    args = sys.argv[1:]
    summary = "--summary" in args
    args = [a for a in args if a != "--summary"]
    if not args:
        sys.exit(__doc__)
    path, attributes = args[0], args[1:] or ["colour", "shape", "count", "centre"]
    curves = {}
    for line in open(path):
        line = line.strip()
        if not line:
            continue
        point = json.loads(line)
        # A curve measured twice (a score run again) keeps its last reading.
        curves.setdefault(point["label"], {})[point["step"]] = point
    labels = list(curves)
    steps = sorted({s for c in curves.values() for s in c})
    if summary:
        print_summary(curves, attributes)
        return
    for attribute in attributes:
        print(f"\n{attribute} (training / held-out classes, %)\n")
        print("| step | " + " | ".join(labels) + " |")
        print("|---" * (len(labels) + 1) + "|")
        for step in steps:
            cells = []
            for label in labels:
                point = curves[label].get(step)
                if point is None:
                    cells.append("")
                    continue
                content = {name: (train, held) for name, train, held in point["content"]}
                train, held = content[attribute]
                cells.append(f"{train * 100:.1f} / {held * 100:.1f}")
            print(f"| {step} | " + " | ".join(cells) + " |")
    print(
        "\nD(real) / D(wrong) / D(fake), grids of period 2 (checkerboard) / 4 / 8 (real renders beside),"
        " diversity background / position\n"
    )
    print("| step | " + " | ".join(labels) + " |")
    print("|---" * (len(labels) + 1) + "|")
    for step in steps:
        cells = []
        for label in labels:
            p = curves[label].get(step)
            if p is None:
                cells.append("")
                continue
            wrong = "-" if p.get("d_wrong") is None else f"{p['d_wrong']:.3f}"
            # Lines from before the coarser grids were measured have none.
            drawn = [p["checkerboard"], *p.get("grids", [])]
            real = [p["checkerboard_real"], *p.get("grids_real", [])]
            grids = " / ".join(f"{v:.1f}" for v in drawn) + " (" + " / ".join(f"{v:.1f}" for v in real) + ")"
            cells.append(f"{p['d_real']:.3f} / {wrong} / {p['d_fake']:.3f}, {grids}{diversity(p)}")
        print(f"| {step} | " + " | ".join(cells) + " |")


def diversity(point):
    """", background / position" where the line measured it (older lines and
    other programs' curves did not)."""
    fractions = point.get("diversity") or []
    return ", " + " / ".join(f"{f:.2f}" for _, f in fractions) if fractions else ""


def late_means(points, late, key):
    """The mean of each (name, value) of `key` over the `late` lines that
    measured it, as "a / b / ...", or "-" where none did."""
    measured = [points[s][key] for s in late if points[s].get(key)]
    if not measured:
        return "-"
    means = [sum(m[k][1] for m in measured) / len(measured) for k in range(len(measured[0]))]
    return " / ".join(f"{m:.2f}" for m in means)


def print_summary(curves, attributes):
    head = " | ".join(f"{a} at the last step | {a}, mean of the last half" for a in attributes)
    print(f"| curve | last step | {head} | diversity, mean of the last half "
          "| D rejects colour / shape / count / centre, mean of the last half |")
    print("|---" * (4 + 2 * len(attributes)) + "|")
    for label, points in curves.items():
        steps = sorted(points)
        late = [s for s in steps if s > steps[-1] / 2]
        cells = []
        for attribute in attributes:
            def reading(step):
                content = {n: (t, h) for n, t, h in points[step]["content"]}
                return content[attribute]
            last = reading(steps[-1])
            mean = [sum(reading(s)[k] for s in late) / len(late) for k in (0, 1)]
            cells.append(f"{last[0] * 100:.1f} / {last[1] * 100:.1f}")
            cells.append(f"{mean[0] * 100:.1f} / {mean[1] * 100:.1f}")
        # How varied, and what D checks (lines since each was measured).
        cells.append(late_means(points, late, "diversity"))
        cells.append(late_means(points, late, "d_rejects"))
        print(f"| {label} | {steps[-1]} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
