#!/usr/bin/env python3
"""Samples a JVM's old generation from its perf-data file, as `jstat` reads it.

Writes `timestamp,jvm_old_used_bytes,jvm_old_capacity_bytes,jvm_old_collections,
jvm_young_collections,jvm_old_max_bytes` every INTERVAL seconds until the JVM is
gone: used and committed bytes of `sun.gc.generation.1.space.0`, the old
generation's maximum (`sun.gc.generation.1.maxCapacity`), and the count of collections
that can reclaim old objects (`sun.gc.collector.1`, full collections, plus
`sun.gc.collector.2`, G1's concurrent-cycle pauses). Used beside `outrider
--record` to give the recorded JVMs a heap column (scripts/record_jvm_heaps.sh).

Usage: python3 scripts/hsperf_sample.py PERFDATA_FILE OUT.csv [INTERVAL]
"""

import os
import struct
import sys
import time


def entries(b):
    """name -> (offset of the value, type, length) of every entry."""
    end = "<" if b[4] == 1 else ">"
    magic, _bo, _maj, _min, _acc, _used, _ovf, _mts, eo, ne = struct.unpack_from(end + "IBBBBiiqii", b, 0)
    if magic not in (0xCAFEC0C0, 0xC0C0FECA):
        raise ValueError("not a perf-data file")
    out, off = {}, eo
    for _ in range(ne):
        el, no, vl, dt, _fl, _du, _dv, do = struct.unpack_from(end + "iiiBBBBi", b, off)
        name = b[off + no:b.index(b"\0", off + no)].decode()
        out[name] = (off + do, chr(dt), vl)
        off += el
    return end, out


def main():
    path, out = sys.argv[1], sys.argv[2]
    interval = float(sys.argv[3]) if len(sys.argv) > 3 else 2.0
    while not os.path.exists(path):
        time.sleep(0.2)
    time.sleep(1.0)
    with open(path, "rb") as f:
        b = f.read()
    end, e = entries(b)
    names = ["sun.gc.generation.1.space.0.used", "sun.gc.generation.1.space.0.capacity",
             "sun.gc.collector.1.invocations", "sun.gc.collector.2.invocations",
             "sun.gc.collector.0.invocations", "sun.gc.generation.1.maxCapacity"]
    with open(out, "w") as o:
        o.write("timestamp,jvm_old_used_bytes,jvm_old_capacity_bytes,jvm_old_collections,jvm_young_collections,jvm_old_max_bytes\n")
        while True:
            try:
                with open(path, "rb") as f:
                    b = f.read()
            except OSError:
                return
            if not b:
                return
            v = {n: struct.unpack_from(end + "q", b, e[n][0])[0] if n in e else 0 for n in names}
            o.write(f"{time.time():.3f},{v[names[0]]},{v[names[1]]},{v[names[2]] + v[names[3]]},{v[names[4]]},{v[names[5]] or ''}\n")
            o.flush()
            time.sleep(interval)


if __name__ == "__main__":
    main()
