#!/usr/bin/env python3
"""Worst-case error of Prometheus' histogram_quantile on the exported request-duration
histogram, for lognormal latencies (issue 15).

histogram_quantile interpolates linearly inside the bucket holding the rank; with many
requests a bucket's count is its share of the distribution, so the estimate is
l + (u - l) * (q - F(l)) / (F(u) - F(l)). This script scans medians from 5 ms to 2 s
(200 steps, log-spaced) and several spreads and prints the largest relative error of
the estimate against the true quantile m * exp(z_q * sigma).

    python3 scripts/bucket_error.py
"""
import math

Z = {0.5: 0.0, 0.9: 1.2815515655446004, 0.95: 1.6448536269514722, 0.99: 2.3263478740408408}


def cdf(x, m, s):
    if x <= 0:
        return 0.0
    return 0.5 * (1 + math.erf(math.log(x / m) / (s * math.sqrt(2))))


def estimate(bounds, q, m, s):
    lo = 0.0
    for u in bounds:
        fl, fu = cdf(lo, m, s), cdf(u, m, s)
        if fu >= q:
            return lo + (u - lo) * (q - fl) / (fu - fl)
        lo = u
    return bounds[-1]  # in +Inf: Prometheus returns the last bound


def worst(bounds, q, s):
    w = (0.0, None)
    for i in range(201):
        m = 0.005 * (2 / 0.005) ** (i / 200)
        true = m * math.exp(Z[q] * s)
        e = abs(estimate(bounds, q, m, s) - true) / true
        if e > w[0]:
            w = (e, m)
    return w


CLASSIC = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]


# Outrider's default (src/logs/latency.rs): the R10 preferred numbers, 1 ms to 63 s.
R10 = [float(f"{m}e{d}") for d in range(-3, 2)
       for m in ("1", "1.25", "1.6", "2", "2.5", "3.15", "4", "5", "6.3", "8")]
R10 = [b for b in R10 if b <= 63.0]


def main():
    m, s = 0.033, math.log(0.122 / 0.033) / Z[0.95]
    print(f"median 33 ms, sigma {s:.3f}: classic p95 {estimate(CLASSIC, 0.95, m, s)*1e3:.0f} ms,"
          f" true {m*math.exp(Z[0.95]*s)*1e3:.0f} ms")
    series = [("classic client defaults", CLASSIC), ("R10, 1 ms to 63 s (the default)", R10)]
    for name, b in series:
        print(f"\n{name}: {len(b)} bounds, {len(b) + 3} series per code_class"
              f" ({len(b) + 1} _bucket with +Inf, _sum, _count)")
        for s in (0.3, 0.5, 0.8, 1.2):
            row = "  ".join(f"p{int(q*100)} {worst(b, q, s)[0]*100:5.1f}%" for q in (0.5, 0.9, 0.95, 0.99))
            print(f"  sigma {s}: worst over medians 5 ms..2 s: {row}")

# The native histogram (schema 3) needs no table: its buckets are 2^(1/8) wide, so the
# true quantile and histogram_quantile's estimate share a bucket and differ by at most
# 2^(1/8) - 1 = 9.05%, whatever the distribution.


if __name__ == "__main__":
    main()
