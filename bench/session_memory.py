#!/usr/bin/env python3
"""Resident memory of one long REPL session: `gantry run` (the REPL's session
core without the screen) over a script of N captions, with the resident set
size (VmRSS) read after the first 500 pictures rows and at the end.

    bench/session_memory.py [N] [-- gantry run options...]

Prints one line: captions, pictures, RSS after 500, RSS at the end, ratio.
The README's figure comes from here (issue: long sessions stay flat)."""
import os
import subprocess
import sys
import tempfile
import time

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0

def main():
    args = sys.argv[1:]
    extra = []
    if "--" in args:
        i = args.index("--")
        args, extra = args[:i], args[i + 1:]
    n = int(args[0]) if args else 10000
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    gantry = os.path.join(root, "target", "release", "gantry")
    colours = ["red", "orange", "yellow", "white", "pink", "purple", "blue", "turquoise"]
    shapes = ["round", "pointed", "thin"]
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "session.txt")
        with open(script, "w") as f:
            for k in range(n):
                f.write(f"a {colours[k % 8]} flower with {3 + k % 6} {shapes[k % 3]} petals\n")
        out = os.path.join(tmp, "out")
        cmd = [gantry, "run", "--paths", "-o", out, *extra, script]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        rows, pictures, at_500, peak = 0, 0, None, 0
        last_row = None
        start = time.time()
        for line in proc.stdout:
            pictures += 1
            # One caption is one row: its pictures share the row number (#k.i).
            row = os.path.basename(line.strip()).split("-")[1] if "-" in line else None
            if row != last_row:
                rows += 1
                last_row = row
                if rows % 500 == 1:
                    peak = max(peak, rss_kib(proc.pid))
                if rows == 501:
                    at_500 = rss_kib(proc.pid)
            if rows == n:
                end = rss_kib(proc.pid)
        proc.wait()
        if proc.returncode != 0:
            sys.exit(f"gantry run failed ({proc.returncode})")
        seconds = time.time() - start
        print(
            f"session memory: {n} captions, {pictures} pictures in {seconds:.0f} s; "
            f"RSS after 500 captions {at_500 / 1024:.0f} MiB, at the end {end / 1024:.0f} MiB "
            f"(peak sampled {peak / 1024:.0f} MiB): {end / at_500:.2f}x"
        )

if __name__ == "__main__":
    main()
