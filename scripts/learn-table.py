#!/usr/bin/env python3
"""Markdown tables of learning curves from the JSON lines that `gantry bench
learn --jsonl FILE` and `gantry bench learn-score --jsonl FILE` append: one
table per attribute, a column per curve (training / held-out classes, %).

    scripts/learn-table.py runs/curves.jsonl [colour shape ...]
"""
import json
import sys


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    attributes = sys.argv[2:] or ["colour", "shape", "count", "centre"]
    curves = {}
    for line in open(sys.argv[1]):
        line = line.strip()
        if not line:
            continue
        point = json.loads(line)
        # A curve measured twice (a score run again) keeps its last reading.
        curves.setdefault(point["label"], {})[point["step"]] = point
    labels = list(curves)
    steps = sorted({s for c in curves.values() for s in c})
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
    print("\nD(real) / D(wrong) / D(fake), checkerboard (real renders beside)\n")
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
            cells.append(f"{p['d_real']:.3f} / {wrong} / {p['d_fake']:.3f}, {p['checkerboard']:.1f} ({p['checkerboard_real']:.1f})")
        print(f"| {step} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
