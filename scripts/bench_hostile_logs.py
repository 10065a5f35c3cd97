#!/usr/bin/env python3
"""Peak memory of Outrider following hostile logs (#16).

Each case starts a fresh `outrider` (a release build) following one `[[logs]]`
glob, writes the hostile input while it runs, waits until
`outrider_log_bytes_total` has counted every byte written (or a timeout), and reads
the peak resident set (VmHWM from /proc/PID/status). Printed per case: bytes
written, seconds until all were counted, peak RSS, and the idle baseline (the
same binary following an empty file).

Cases:
  huge-line   1 GiB with no newline, written in 1 MiB writes
  junk        256 MiB of pseudo-random bytes (newlines included where they fall)
  cri-glob    10,000 CRI files matched by one glob, 20 lines each, then one more
              line appended to each while followed
  burst       100 MB/s of access lines into one file for 10 s
  busy-files  100 files, 8 MiB appended to each at once (what one pass may hold)

Files live in /dev/shm (RAM, not the disk) when it exists. The fd soft limit is
raised to the hard limit for Outrider so that 10,000 files can be held open.

Usage: python3 scripts/bench_hostile_logs.py [--binary target/release/outrider]
       [--only huge-line,junk,cri-glob,burst]
"""

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

MiB = 1024 * 1024


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Outrider:
    def __init__(self, binary, pattern, workdir):
        config = os.path.join(workdir, "outrider.toml")
        with open(config, "w") as f:
            f.write(
                '[sampling]\ninterval = "1s"\n'
                f'[[logs]]\nname = "app"\npath = {json.dumps(pattern)}\n'
            )
        self.proc = subprocess.Popen(
            [binary, "--config", config, "--listen", "127.0.0.1:0"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "OUTRIDER_LOG": "info"},
            preexec_fn=raise_nofile,
        )
        self.addr = None
        deadline = time.time() + 60
        while self.addr is None and time.time() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                raise SystemExit("outrider exited before listening")
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("message") == "listening":
                self.addr = event["addr"]
        # Keep draining stderr so the process never blocks on it.
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()

    def metric(self, name, stream="app"):
        body = urllib.request.urlopen(f"http://{self.addr}/metrics", timeout=10).read()
        for line in body.decode().splitlines():
            if line.startswith(name + "{") and f'stream="{stream}"' in line:
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def wait_bytes(self, want, timeout):
        start = time.time()
        while time.time() - start < timeout:
            if self.metric("outrider_log_bytes_total") >= want:
                return time.time() - start
            time.sleep(0.2)
        return None

    def peak_rss(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        return 0

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def write_huge_line(d):
    path = os.path.join(d, "app.log")
    open(path, "wb").close()

    def run():
        block = b"x" * MiB
        with open(path, "ab") as f:
            for _ in range(1024):
                f.write(block)
        return 1024 * MiB

    return path, run


def write_junk(d):
    path = os.path.join(d, "app.log")
    open(path, "wb").close()
    rng = random.Random(1)
    block = bytes(rng.getrandbits(8) for _ in range(MiB))

    def run():
        with open(path, "ab") as f:
            for i in range(256):
                # Rotate the block so no two MiB are the same.
                k = (i * 7919) % MiB
                f.write(block[k:] + block[:k])
        return 256 * MiB

    return path, run


def write_cri_glob(d, files=10_000):
    line = b"2024-01-01T00:00:00.000000000Z stdout F GET /x 200 0.012\n"
    for i in range(files):
        with open(os.path.join(d, f"{i:05}.log"), "wb") as f:
            f.write(line * 20)
    pattern = os.path.join(d, "*.log")

    def run():
        # Outrider started at the files' end: only what is appended now counts.
        time.sleep(2)
        for i in range(files):
            with open(os.path.join(d, f"{i:05}.log"), "ab") as f:
                f.write(line)
        return files * len(line)

    return pattern, run


def write_burst(d, rate=100 * 1000 * 1000, seconds=10):
    path = os.path.join(d, "app.log")
    open(path, "wb").close()
    line = b'10.0.0.1 - - [01/Jan/2024:00:00:00 +0000] "GET /api HTTP/1.1" 200 512 0.012\n'
    block = line * (MiB // len(line))

    def run():
        written = 0
        start = time.time()
        with open(path, "ab") as f:
            while written < rate * seconds:
                f.write(block)
                written += len(block)
                ahead = written / rate - (time.time() - start)
                if ahead > 0:
                    time.sleep(ahead)
        return written

    return path, run


def write_busy_files(d, files=100, each=8 * MiB):
    """Many files growing at once between two passes: what one pass may hold."""
    line = b"INFO busy file line with some words in it\n"
    block = line * (each // len(line))
    for i in range(files):
        open(os.path.join(d, f"{i:03}.log"), "wb").close()
    pattern = os.path.join(d, "*.log")

    def run():
        # Written to copies, then renamed over the followed names would be a
        # rotation; appended instead, as fast as the page cache takes it.
        time.sleep(1)
        for i in range(files):
            with open(os.path.join(d, f"{i:03}.log"), "ab") as f:
                f.write(block)
        return files * len(block)

    return pattern, run


def write_nothing(d):
    path = os.path.join(d, "app.log")
    open(path, "wb").close()
    return path, lambda: 0


CASES = {
    "huge-line": write_huge_line,
    "junk": write_junk,
    "cri-glob": write_cri_glob,
    "burst": write_burst,
    "busy-files": write_busy_files,
}


def measure(binary, name, setup, root):
    d = tempfile.mkdtemp(prefix=f"hostile-{name}-", dir=root)
    try:
        pattern, run = setup(d)
        o = Outrider(binary, pattern, d)
        try:
            t0 = time.time()
            written = run()
            write_s = time.time() - t0
            took = o.wait_bytes(written, timeout=300)
            counted = o.metric("outrider_log_bytes_total")
            return {
                "case": name,
                "bytes": written,
                "write_s": write_s,
                "counted": counted,
                "count_s": None if took is None else write_s + took,
                "peak_rss": o.peak_rss(),
            }
        finally:
            o.stop()
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", default="target/release/outrider")
    ap.add_argument("--only", default=",".join(CASES))
    args = ap.parse_args()
    root = "/dev/shm" if os.path.isdir("/dev/shm") else None
    base = measure(args.binary, "idle", write_nothing, root)
    print(f"{'case':<10} {'written':>10} {'counted':>10} {'all counted after':>18} {'peak RSS':>10}")
    rows = [base] + [measure(args.binary, n, CASES[n], root) for n in args.only.split(",")]
    for r in rows:
        after = "timeout" if r["count_s"] is None else f"{r['count_s']:.1f} s"
        print(
            f"{r['case']:<10} {r['bytes'] / MiB:>8.1f}Mi {r['counted'] / MiB:>8.1f}Mi "
            f"{after:>18} {r['peak_rss'] / MiB:>8.1f}Mi"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
