#!/usr/bin/env python3
"""Detection quality over the labelled trace corpus (tests/data/traces/).

Replays every trace with `outrider replay` and prints one row per trace: the label,
the verdict, when a leak was first detected and the latency after its onset, false
alarms (a leak verdict at ANY time on a trace labelled leak-free), and whether the
sizing verdicts agree with the labels; then totals, and the median latency of the
memory leaks of 1 MiB/min and more and of those of 0.25 MiB/min (each label's
`memory_leak_rate`): the classes of issue 17's goals (15 and 30 min).

With --offsets N, every leak trace is also replayed as if it had started 0, 15, ...,
15*(N-1) s later (its first rows dropped: the buckets cut the signal elsewhere), and
the latency of each leak is the median over those starts; a leak-free trace must get
no verdict from any start. A JVM trace with heap columns also names when the heap's
own verdict (`analysis::heap`) came, from the first start.

Usage: python3 scripts/detection_quality.py [--binary target/release/outrider] [--offsets 8]
       [--only PREFIX]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TRACES = os.path.join(HERE, "..", "tests", "data", "traces")


def replay(binary, path, config):
    cmd = [binary, "replay", path]
    if config:
        cmd[1:1] = ["--config", config]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def started_later(path, by, d):
    """A copy of the trace without its rows in its first `by` seconds."""
    out = os.path.join(d, f"later-{by}.csv")
    with open(path) as f, open(out, "w") as o:
        header = f.readline()
        o.write(header)
        ti = header.strip().split(",").index("timestamp")
        t0 = None
        for line in f:
            t = float(line.split(",")[ti])
            t0 = t if t0 is None else t0
            if t >= t0 + by:
                o.write(line)
    return out


def first_timestamp(path):
    with open(path) as f:
        header = f.readline().strip().split(",")
        return float(f.readline().split(",")[header.index("timestamp")])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="target/release/outrider")
    ap.add_argument("--offsets", type=int, default=1, help="start offsets, 15 s apart")
    ap.add_argument("--only", default="", help="traces whose name starts with this")
    args = ap.parse_args()
    with open(os.path.join(TRACES, "labels.json")) as f:
        labels = json.load(f)
    rows, leaks, found, false_alarms, lat_ok, sizing_total, sizing_agree = [], 0, 0, 0, 0, 0, 0
    latencies = []
    # (MiB/min, latency) of each memory leak found: the goals are per rate.
    by_rate = []
    with tempfile.TemporaryDirectory() as d:
        for name, lab in sorted(labels.items()):
            if not name.startswith(args.only):
                continue
            config = None
            if lab.get("analysis"):
                config = os.path.join(d, name + ".toml")
                with open(config, "w") as f:
                    f.write("[analysis]\n")
                    for k, v in lab["analysis"].items():
                        f.write(f"{k} = {json.dumps(v)}\n")
            path = os.path.join(TRACES, name + ".csv")
            s = replay(args.binary, path, config)
            later = [replay(args.binary, started_later(path, 15 * k, d), config) for k in range(1, args.offsets)]
            for kind in ("memory", "fd"):
                want = lab[f"{kind}_leak"]
                ats = [r[f"{kind}_leak_first_detected_at"] for r in [s] + later]
                at = None if None in ats else sorted(ats)[len(ats) // 2]
                if not want:
                    at = next((a for a in ats if a is not None), None)
                if want:
                    leaks += 1
                    if at is not None:
                        found += 1
                        lat = at - (lab["leak_onset"] or 0) - first_timestamp(path)
                        latencies.append(lat)
                        if kind == "memory":
                            by_rate.append((lab["memory_leak_rate"], lat))
                        ok = lab.get("max_latency") is None or lat <= lab["max_latency"]
                        lat_ok += ok
                        lats = " ".join(f"{(a - (lab['leak_onset'] or 0) - first_timestamp(path)) / 60:.1f}" for a in ats)
                        spread = f" (per start: {lats})" if len(ats) > 1 else ""
                        heap = ""
                        if kind == "memory" and s.get("heap_leak_first_detected_at") is not None:
                            h = s["heap_leak_first_detected_at"] - (lab["leak_onset"] or 0) - first_timestamp(path)
                            heap = f"; the JVM heap's own verdict, first start: {h / 60:.1f} min"
                        rows.append((name, f"{kind} leak", "found", f"{lat / 60:.1f} min{spread}{heap}" + ("" if ok else " (over goal)")))
                    else:
                        rows.append((name, f"{kind} leak", "MISSED", ""))
                elif at is not None:
                    false_alarms += 1
                    rows.append((name, f"no {kind} leak", "FALSE ALARM", f"at {at:.0f} s"))
            for res in ("cpu", "memory"):
                want = lab.get(f"{res}_allocation")
                if want is None:
                    continue
                got = s[res]["allocation"]
                sizing_total += 1
                sizing_agree += got == want
                rows.append((name, f"{res} {want}", "agrees" if got == want else f"says {got}", s[res]["reason"]))
    print("| trace | label | verdict | detail |")
    print("|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print()
    print(f"leaks found: {found}/{leaks}; within their latency goal: {lat_ok}/{found}")
    if latencies:
        latencies.sort()
        print(f"detection latency after onset: median {latencies[len(latencies) // 2] / 60:.1f} min, max {latencies[-1] / 60:.1f} min")
    for what, goal, pick in (("1 MiB/min and more", 15, lambda r: r >= 1.0),
                             ("0.25 MiB/min", 30, lambda r: r == 0.25)):
        lats = sorted(lat for rate, lat in by_rate if pick(rate))
        if lats:
            # The upper middle value (as every median here), and for an even
            # count the mean of the two middle ones too.
            mid = len(lats) // 2
            both = "" if len(lats) % 2 else f"; mean of the middle two {(lats[mid - 1] + lats[mid]) / 120:.2f}"
            print(f"memory leaks of {what}: median {lats[mid] / 60:.1f} min over {len(lats)}{both} "
                  f"(the issue's goal: {goal} min)")
    print(f"false alarms on leak-free traces (at any time): {false_alarms}")
    print(f"sizing verdicts agreeing with labels: {sizing_agree}/{sizing_total}")
    sys.exit(0 if found == leaks and false_alarms == 0 and sizing_agree == sizing_total else 1)


if __name__ == "__main__":
    main()
