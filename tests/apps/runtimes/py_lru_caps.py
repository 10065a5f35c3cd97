"""NOT leaking (issue 17). A python3 service whose LRU cache (functools.lru_cache,
maxsize entries of 32 KiB) fills and caps: keys are drawn from a key space twice
the cache's size, so the cache fills at a falling rate (more hits as it fills)
and stops at maxsize; afterwards misses evict. ~20 lookups a second.

Run: python3 py_lru_caps.py [CAP_MIB]
"""

import functools
import random
import sys
import time

CAP_MIB = int(sys.argv[1]) if len(sys.argv) > 1 else 64
ENTRY = 32 * 1024
MAXSIZE = CAP_MIB * 1024 * 1024 // ENTRY


@functools.lru_cache(maxsize=MAXSIZE)
def render(key):
    return bytes([key % 251 + 1]) * ENTRY  # filled: the pages are touched


rng = random.Random(17)
while True:
    for _ in range(2):
        render(rng.randrange(2 * MAXSIZE))
    garbage = [str(i) * 20 for i in range(200)]  # a request's temporaries
    del garbage
    time.sleep(0.1)
