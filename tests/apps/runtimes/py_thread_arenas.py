# NOT leaking (issue 17). A CPython service with a pool of THREADS worker threads
# (default 16), each keeping a bounded working set of 300 buffers of 1-64 KiB
# (bytearrays: glibc malloc, not CPython's small-object allocator) and replacing
# one at random every 20 ms with a new random size. glibc gives threads their
# own malloc arenas (up to 8 per core), and freed chunks of mixed sizes leave
# holes: RSS creeps up as the arenas fragment, then plateaus. All threads start
# at once; the live data never exceeds THREADS x 300 x 64 KiB.
# Run: python3 py_thread_arenas.py [THREADS]
import random
import sys
import threading
import time

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 16


def worker(seed):
    rng = random.Random(seed)
    held = [bytearray(rng.randint(1024, 65536)) for _ in range(300)]
    while True:
        i = rng.randrange(len(held))
        b = bytearray(rng.randint(1024, 65536))
        b[0] = b[-1] = 1
        held[i] = b
        time.sleep(0.02)


for s in range(threads):
    threading.Thread(target=worker, args=(s,), daemon=True).start()
while True:
    time.sleep(60)
