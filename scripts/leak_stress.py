#!/usr/bin/env python3
"""Stress shapes for the memory-leak verdict (issue 17): many generated traces, each
labelled by construction, replayed with `outrider replay` from several starts.

Leak-free shapes that real runtimes show (warm-ups toward a new steady size with
time constants of 4-25 min, from the start and after a flat hour; G1-like heap
steps with and without a cache filling before them; sawtooth of 2-11 min; single
steps; load cycles; caches filling for up to 10 min and capping; Node-like request
bursts) must get no verdict at any moment. Leaks of 0.25-5 MiB/min (from the first
minute, after a flat hour, under a sawtooth, 0.5-2 MiB of noise) must be found;
the script prints the latency from onset, per rate class, as the median over the
starts and then over the traces.

Usage: python3 scripts/leak_stress.py [--binary target/release/outrider] [--offsets 2] [--check]
Exits 1 on any false verdict or missed leak; with --check (as `cargo test --test
leaks` runs it), only on a false verdict not in KNOWN_FALSE, a shape in KNOWN_FALSE
that no longer gets one (take it out), a missed leak, or latency medians over the
issue's goals (15 min for 1 MiB/min and more, 30 for 0.25). Fixed seeds: the same
shapes every run.
"""

import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_traces as g  # noqa: E402

MIB = g.MIB
STEP = 5.0
# The leak-free shapes still flagged from some start of four (docs/design-notes.md
# says why each is hard): staircases before three of their steps stand out, load
# cycles on their first rise, warm-ups after a flat hour with a 25-min time constant.
KNOWN_FALSE = {
    "g1-steps-6x600s-r0.7-cache136", "g1-steps-5x900s-r0.75-cache0", "g1-steps-5x900s-r0.75-cache136",
    "load-cycle-60min-20mib", "load-cycle-60min-60mib", "load-cycle-120min-20mib", "load-cycle-120min-60mib",
    "late-warmup-30mib-tau25", "late-warmup-100mib-tau25", "late-warmup-300mib-tau25",
}
# Median latency goals from the leak's onset, minutes (issue 17).
GOALS = {"1 MiB/min and more": 15.0, "0.25 MiB/min": 30.0}


def rows(minutes, mem, seed):
    r = random.Random(seed)
    t, out = 0.0, []
    while t <= minutes * 60:
        out.append((t, max(1.0, mem(t, r))))
        t += STEP
    return out


def shapes():
    """(name, minutes, mem(t, r) in bytes, leak onset in s or None, rate MiB/min)."""
    out, seed = [], 1000

    def add(name, minutes, mem, onset=None, rate=None):
        nonlocal seed
        seed += 1
        out.append((name, minutes, mem, onset, rate, seed))

    # Warm-ups toward a new steady size: amplitude A MiB, time constant tau min,
    # from the start and after a flat hour, with 1 MiB of noise.
    for a in (10, 30, 100, 300):
        for tau in (4, 8, 15, 25):
            add(f"warmup-{a}mib-tau{tau}", 150,
                lambda t, r, a=a, tau=tau: (200 + a * (1 - math.exp(-t / (tau * 60)))) * MIB + g.noise(r, 1))
            add(f"late-warmup-{a}mib-tau{tau}", 180,
                lambda t, r, a=a, tau=tau: (200 + a * (1 - math.exp(-max(0, t - 3600) / (tau * 60)))) * MIB
                + g.noise(r, 1))
    # G1-like heap steps (each step a share of the one before), with and without a
    # cache filling for 15 min before them.
    for n, spacing, ratio, total in ((10, 270, 0.8, 46), (6, 600, 0.7, 60), (8, 420, 0.85, 90), (5, 900, 0.75, 40)):
        for cache in (0, 136):
            steps = g.g1_steps(900 if cache else 300, total, n, spacing, ratio, n * 7 + int(cache))

            def jvm(t, r, steps=steps, cache=cache):
                warm = cache * (1 - math.exp(-t / 240)) / (1 - math.exp(-900 / 240)) if cache else 0
                grown = sum(s * min(1.0, (t - at) / 30) for at, s in steps if t >= at)
                return (180 + min(warm, cache) + grown) * MIB + g.noise(r, 1)
            add(f"g1-steps-{n}x{spacing}s-r{ratio}-cache{cache}", 150, jvm)
    # Sawtooth: a ramp of `amp` MiB over `period` min, then a release.
    for period in (2, 5, 8, 11):
        for amp in (20, 60):
            add(f"sawtooth-{period}min-{amp}mib", 150,
                lambda t, r, p=period, a=amp: (250 + (t % (p * 60)) / (p * 60) * a) * MIB + g.noise(r, 1))
    # One step up of `size` MiB at 40 min, flat after.
    for size in (10, 30, 60, 150):
        add(f"single-step-{size}mib", 150, lambda t, r, s=size: (250 + (s if t >= 2400 else 0)) * MIB + g.noise(r, 1))
    # Load cycles: a sine of `amp` MiB over `period` min.
    for period in (30, 60, 120):
        for amp in (20, 60):
            add(f"load-cycle-{period}min-{amp}mib", 240,
                lambda t, r, p=period, a=amp: (300 + a / 2 * (1 - math.cos(2 * math.pi * t / (p * 60)))) * MIB
                + g.noise(r, 1))
    # Caches that fill linearly for `fill` min and cap (then churn +-2 MiB).
    for fill in (5, 8, 10):
        for size in (16, 64):
            add(f"cache-fills-{size}mib-in-{fill}min", 150,
                lambda t, r, f=fill, s=size: (200 + s * min(1.0, t / (f * 60))) * MIB + g.noise(r, 1)
                + r.uniform(-2, 2) * MIB)
    # Node-like request bursts every 2 min over a floor warming up 10 MiB.
    for amp, s in (((30, 56), 1), ((10, 30), 2), ((50, 90), 3)):
        train = g.bursts(50 + s, 120, amp=amp)
        add(f"node-bursts-{amp[0]}-{amp[1]}mib", 120,
            lambda t, r, tr=train: (98 + 10 * (1 - math.exp(-t / 900)) + g.burst_level(t, tr)) * MIB + g.noise(r, 0.5))
    # Flat with noise.
    for amp in (0.5, 2, 8):
        add(f"flat-noise-{amp}mib", 150, lambda t, r, a=amp: 300 * MIB + g.noise(r, a))
    # Leaks: from the first minute, after a flat hour, under a 2-min sawtooth.
    for rate in (0.25, 1, 2, 3, 5):
        for noise in (0.5, 1, 2):
            add(f"leak-{rate}mib-noise{noise}", 120,
                lambda t, r, k=rate, n=noise: (200 + k * max(0.0, t - 30) / 60) * MIB + g.noise(r, n), 30, rate)
        add(f"leak-{rate}mib-after-hour", 180,
            lambda t, r, k=rate: (300 + k * max(0.0, t - 3600) / 60) * MIB + g.noise(r, 1), 3600, rate)
        add(f"leak-{rate}mib-sawtooth", 150,
            lambda t, r, k=rate: (250 + k * max(0.0, t - 600) / 60 + (t % 120) / 120 * 20) * MIB + g.noise(r, 2),
            600, rate)
    return out


def replay(binary, path):
    out = subprocess.run([binary, "replay", path], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["memory_leak_first_detected_at"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="target/release/outrider")
    ap.add_argument("--offsets", type=int, default=2, help="starts, 15 s apart")
    ap.add_argument("--only", default="", help="shapes whose name contains this")
    ap.add_argument("--keep", help="write the traces to this directory and keep them")
    ap.add_argument("--check", action="store_true",
                    help="fail only on what is worse than KNOWN_FALSE and GOALS")
    args = ap.parse_args()
    false, missed, by_rate, flagged = [], [], {}, set()
    with tempfile.TemporaryDirectory() as tmp:
        d = args.keep or tmp
        os.makedirs(d, exist_ok=True)
        for name, minutes, mem, onset, rate, seed in shapes():
            if args.only not in name:
                continue
            data = rows(minutes, mem, seed)
            firsts = []
            for k in range(args.offsets):
                path = os.path.join(d, f"{name}-{k}.csv")
                with open(path, "w") as f:
                    f.write("timestamp,rss_bytes\n")
                    for t, v in data:
                        if t >= 15 * k:
                            f.write(f"{int(g.RT_T0 + t)},{int(v)}\n")
                at = replay(args.binary, path)
                firsts.append(None if at is None else at - g.RT_T0)
            if onset is None:
                hits = [a for a in firsts if a is not None]
                if hits:
                    flagged.add(name)
                    false.append(f"{name}: verdict at {min(hits) / 60:.1f} min")
                continue
            if None in firsts:
                missed.append(f"{name}: missed from {firsts.count(None)} of {len(firsts)} starts")
                continue
            lat = [(a - onset) / 60 for a in firsts]
            if min(lat) < 0:
                flagged.add(name)
                false.append(f"{name}: verdict {-min(lat):.1f} min before onset")
            med = statistics.median(lat)
            by_rate.setdefault(rate, []).append(med)
            print(f"{name}: {med:.1f} min after onset (per start: {' '.join(f'{x:.1f}' for x in lat)})")
    print()
    for rate in sorted(by_rate):
        v = sorted(by_rate[rate])
        print(f"{rate} MiB/min: median {statistics.median(v):.1f} min over {len(v)} leaks "
              f"(each the median of {args.offsets} starts; max {v[-1]:.1f})")
    fast = sorted(x for r, v in by_rate.items() if r >= 1 for x in v)
    if fast:
        print(f"1 MiB/min and more: median {statistics.median(fast):.1f} min over {len(fast)} leaks")
    print(f"false verdicts: {len(false)}")
    for x in false + missed:
        print("  " + x)
    if not args.check:
        sys.exit(1 if false or missed else 0)
    medians = {"1 MiB/min and more": statistics.median(fast) if fast else None,
               "0.25 MiB/min": statistics.median(by_rate[0.25]) if 0.25 in by_rate else None}
    worse = [f"new false verdict: {x}" for x in false if x.split(":")[0] not in KNOWN_FALSE]
    worse += [f"no longer flagged, take it out of KNOWN_FALSE: {x}" for x in sorted(KNOWN_FALSE - flagged)
              if args.only in x]
    worse += [f"missed: {x}" for x in missed]
    worse += [f"{k}: median {v:.1f} min, goal {GOALS[k]:.0f}" for k, v in medians.items()
              if v is not None and v > GOALS[k]]
    for x in worse:
        print("CHECK: " + x)
    sys.exit(1 if worse else 0)


if __name__ == "__main__":
    main()
