#!/usr/bin/env python3
"""Joins a JVM's heap samples (scripts/hsperf_sample.py) to its recorded trace.

Each row of TRACE (written by `outrider --record`) gets the heap columns of the
newest heap sample taken at or before its timestamp (empty before the first);
TRACE is rewritten in place.

Usage: python3 scripts/merge_heap_columns.py TRACE.csv HEAP.csv
"""

import bisect
import csv
import sys


def main():
    trace, heap = sys.argv[1], sys.argv[2]
    with open(heap) as f:
        rows = list(csv.reader(f))
    head, samples = rows[0][1:], [r for r in rows[1:] if len(r) == len(rows[0])]
    times = [float(r[0]) for r in samples]
    with open(trace) as f:
        t_rows = list(csv.reader(f))
    t_head = t_rows[0]
    keep = [i for i, h in enumerate(t_head) if h not in head]
    ti = t_head.index("timestamp")
    out = [[t_head[i] for i in keep] + head]
    for r in t_rows[1:]:
        j = bisect.bisect_right(times, float(r[ti])) - 1
        out.append([r[i] for i in keep] + (samples[j][1:] if j >= 0 else [""] * len(head)))
    with open(trace, "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(out)


if __name__ == "__main__":
    main()
