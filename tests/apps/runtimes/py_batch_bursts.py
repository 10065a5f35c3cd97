# NOT leaking (issue 17). A CPython service whose batch job runs every PERIOD_S
# seconds: it builds BATCH_MIB of small dicts and strings (the small-object
# allocator's arenas, plus malloc for the larger strings), holds them for half
# the period and drops them all. Between batches, requests churn small objects.
# CPython frees an arena only when every object in it is dead, so what RSS comes
# back down to after each batch is the allocator's business: bounded, not a leak.
# Run: python3 py_batch_bursts.py [PERIOD_S] [BATCH_MIB]
import random
import sys
import time

period = float(sys.argv[1]) if len(sys.argv) > 1 else 300.0
batch_mib = float(sys.argv[2]) if len(sys.argv) > 2 else 60.0
rng = random.Random(7)
survivors = []  # a few batch results kept until the next batch: bounded
batch = None
next_batch = time.monotonic()
drop_at = None
while True:
    now = time.monotonic()
    if now >= next_batch:
        batch = []
        size = 0
        while size < batch_mib * 1048576:
            n = rng.randint(40, 2000)
            batch.append({"id": len(batch), "payload": "x" * n, "tags": [n, n + 1]})
            size += n + 300
        survivors = batch[:: max(1, len(batch) // 200)]
        drop_at = now + period / 2
        next_batch += period
    if drop_at is not None and now >= drop_at:
        batch = None
        drop_at = None
    reqs = [{"path": "/r/%d" % i, "body": "b" * rng.randint(10, 500)} for i in range(200)]
    del reqs
    time.sleep(0.1)
