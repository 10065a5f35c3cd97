"""NOT leaking (issue 17). A python3 worker with steady churn: a pool of 4000
objects of random sizes (64 B to 64 KiB, mean ~32 KiB, ~128 MiB at most) where
every tick replaces 40 random ones with new objects of new random sizes. The
allocator's heap fragments and settles at a plateau; nothing is retained beyond
the pool.

Run: python3 py_churn.py
"""

import random
import time

rng = random.Random(7)
POOL = 4000


def obj():
    return b"c" * rng.randint(64, 64 * 1024)


pool = [obj() for _ in range(POOL // 10)]
while True:
    if len(pool) < POOL:  # warm-up: the pool grows over the first ~3 minutes
        pool.extend(obj() for _ in range(2))
    for _ in range(40):
        pool[rng.randrange(len(pool))] = obj()
    time.sleep(0.1)
