"""LEAKING (issue 17). A python3 service with a bounded working set (a 16 MiB
dict of 16 KiB entries, churned) that from LEAK_START_S appends RATE MiB/min of
4 KiB records to a module-level list never cleared (bytes filled with a byte,
so the pages are touched).

Run: python3 py_leak.py [MIB_PER_MIN] [LEAK_START_S]
"""

import random
import sys
import time

RATE = float(sys.argv[1]) if len(sys.argv) > 1 else 0.25
START_S = float(sys.argv[2]) if len(sys.argv) > 2 else 600.0
REC = 4096

rng = random.Random(3)
work = {}
leaked = []
t0 = time.monotonic()
while True:
    s = time.monotonic() - t0
    work[rng.randrange(1024)] = b"w" * 16384  # bounded: 1024 keys x 16 KiB
    garbage = [str(i) * 20 for i in range(200)]
    del garbage
    if s >= START_S:
        owed = (s - START_S) / 60.0 * RATE * 1048576
        while len(leaked) * REC + REC <= owed:
            leaked.append(b"L" * REC)
    time.sleep(0.1)
