#!/usr/bin/env python3
"""A JVM's old generation as a trace `outrider replay` reads.

Turns the output of `jstat -gc -t PID INTERVAL_MS` (its `Timestamp` column, seconds
since the JVM started, and `OU`, old generation used in KiB) into a
`timestamp,rss_bytes` CSV, so the unchanged trend detector can be run on the heap's
own figure instead of RSS (docs/design-notes.md: the JVM old-generation study).
Timestamps are the JVM's seconds plus `--t0` (a unix time; any fixed value).

Usage: python3 scripts/jstat_old_gen_csv.py JSTAT_OUTPUT OUT.csv [--t0 1796400000]
       outrider replay OUT.csv
"""

import argparse


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("jstat")
    ap.add_argument("out")
    ap.add_argument("--t0", type=float, default=1796400000.0)
    args = ap.parse_args()
    rows = 0
    with open(args.jstat) as f, open(args.out, "w") as o:
        header = None
        o.write("timestamp,rss_bytes\n")
        for line in f:
            fields = line.split()
            if not fields:
                continue
            if fields[0] == "Timestamp":
                header = fields
                continue
            if header is None or len(fields) != len(header):
                continue
            try:
                t = float(fields[header.index("Timestamp")])
                used_kib = float(fields[header.index("OU")])
            except ValueError:
                continue
            o.write(f"{args.t0 + t:.1f},{int(used_kib * 1024)}\n")
            rows += 1
    if rows == 0:
        raise SystemExit(f"{args.jstat}: no jstat -gc -t rows (run `jstat -gc -t PID 10000`)")


if __name__ == "__main__":
    main()
