#!/usr/bin/env python3
"""Steady-state cost of Outrider next to prometheus-process-exporter.

Both watch the same target group at the same cadence (Outrider samples every
`--interval`, 1 s by default, and both are scraped once per interval), on this
machine, in the same run. Printed per scenario:
median RSS, CPU seconds per minute (from /proc/<pid>/stat of each exporter), and
scrape latency p50/p95 (HTTP GET of /metrics on a kept-alive loopback connection,
timed by this script, so it includes Python's client overhead for both), with the
ratios Outrider / process-exporter.

Scenarios: one target process; a group of 120 processes. The target is a copy of
Outrider's demo app under the name `benchapp`, so both exporters select it the
same way: by comm, scanning all of /proc.

Usage: python3 scripts/bench_steady.py [--seconds 60] [--binary target/release/outrider]...
           [--interval 1s|100ms] [--only one|group] [--settle 3] [--rounds 1]

`--settle` is how long both run before the measurement starts. Outrider scans a
new target's connections on every tick for its first 120 s while it has no
listener (the start-up watch); `--settle 125` measures past it.

`--binary` may be given more than once (an old and a new build): each scenario is
then run with each binary in turn, `--rounds` times, so they alternate on a shared
machine, and a summary table ends the output.

CPU is read two ways: utime+stime of /proc/<pid>/stat (10 ms clock ticks: at 1 s
ticks Outrider uses a few in a minute, so ±1 is ±0.01 s/min), and, when `perf` is
installed, its task-clock over the same window (`perf stat -e task-clock -p`,
nanoseconds, every thread).
Needs Debian's prometheus-process-exporter (apt-get install prometheus-process-exporter).
"""

import argparse
import http.client
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_bytes(pid):
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE


_conns = {}


def scrape(port):
    """GET /metrics on a kept-alive connection, as Prometheus scrapes."""
    conn = _conns.get(port)
    if conn is None:
        conn = _conns[port] = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    t = time.perf_counter()
    try:
        conn.request("GET", "/metrics")
        body = conn.getresponse().read()
    except (OSError, http.client.HTTPException):
        _conns.pop(port, None)
        conn.close()
        raise
    return time.perf_counter() - t, body


def wait_up(port, deadline=20):
    end = time.time() + deadline
    while time.time() < end:
        try:
            scrape(port)
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing answers on port {port}")


def start_task_clock(pid, seconds):
    """`perf stat -e task-clock` on `pid` for `seconds`; None without perf."""
    perf = shutil.which("perf")
    if not perf:
        return None
    return subprocess.Popen(
        [perf, "stat", "-x,", "-e", "task-clock", "-p", str(pid), "--", "sleep", str(seconds)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def task_clock_seconds(proc):
    """CPU seconds perf counted (its task-clock is in milliseconds); None if it failed."""
    if proc is None:
        return None
    _, err = proc.communicate(timeout=60)
    for line in err.splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[2].startswith("task-clock"):
            try:
                return float(fields[0]) / 1000
            except ValueError:
                return None
    return None


def percentile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def parse_interval(text):
    """`1s`, `100ms` → seconds."""
    if text.endswith("ms"):
        return int(text[:-2]) / 1000
    return int(text.rstrip("s"))


def run_scenario(name, binary, workdir, group_size, seconds, exporter, interval="1s", settle=3):
    period = parse_interval(interval)
    app = os.path.join(workdir, "benchapp")
    target = subprocess.Popen(
        [app, "demo-app", "--children", str(group_size - 1), "--hold-mib", "8",
         "--leak-kib-per-sec", "0", "--fd-rate", "0", "--cpu", "0.02", "--log-rate", "0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cfg = os.path.join(workdir, "outrider.toml")
    with open(cfg, "w") as f:
        f.write('[[targets]]\nname = "benchapp"\ncomm = "benchapp"\n')
    pe_cfg = os.path.join(workdir, "process-exporter.yml")
    with open(pe_cfg, "w") as f:
        f.write("process_names:\n  - name: benchapp\n    comm:\n      - benchapp\n")
    o_port, p_port = free_port(), free_port()
    procs = {
        "outrider": subprocess.Popen(
            [binary, "--config", cfg, "--listen", f"127.0.0.1:{o_port}", "--interval", interval],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=dict(os.environ, OUTRIDER_LOG="warn")),
        "process-exporter": subprocess.Popen(
            [exporter, "-config.path", pe_cfg, "-web.listen-address", f"127.0.0.1:{p_port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    }
    ports = {"outrider": o_port, "process-exporter": p_port}
    try:
        for p in ports.values():
            wait_up(p)
        # Let both settle (first scrapes, group formed), scraped as in the run: an
        # idle kept-alive connection would be closed.
        end = time.time() + settle
        while time.time() < end:
            for p in ports.values():
                scrape(p)
            time.sleep(min(period, max(0.0, end - time.time())))
        # Check both see the whole group.
        _, body = scrape(o_port)
        line = [l for l in body.decode().splitlines() if l.startswith("outrider_target_processes{")]
        seen = float(line[0].rsplit(" ", 1)[1]) if line else 0
        if seen != group_size:
            print(f"warning: outrider sees {seen} processes, expected {group_size}", file=sys.stderr)
        cpu0 = {k: cpu_seconds(p.pid) for k, p in procs.items()}
        clocks = {k: start_task_clock(p.pid, seconds) for k, p in procs.items()}
        lat = {k: [] for k in procs}
        rss = {k: [] for k in procs}
        start = time.time()
        n = 0
        while time.time() - start < seconds:
            n += 1
            for k in procs:
                dt, _ = scrape(ports[k])
                lat[k].append(dt)
                rss[k].append(rss_bytes(procs[k].pid))
            next_tick = start + n * period
            time.sleep(max(0.0, next_tick - time.time()))
        elapsed = time.time() - start
        cpu1 = {k: cpu_seconds(p.pid) for k, p in procs.items()}
        rows = {}
        for k in procs:
            clock = task_clock_seconds(clocks[k])
            rows[k] = {
                "rss_mib": statistics.median(rss[k]) / 1048576,
                "cpu_s_per_min": (cpu1[k] - cpu0[k]) * 60 / elapsed,
                # perf's window is `seconds` long, started with this one.
                "clock_s_per_min": clock * 60 / seconds if clock is not None else float("nan"),
                "p50_ms": percentile(lat[k], 0.5) * 1000,
                "p95_ms": percentile(lat[k], 0.95) * 1000,
            }
        print(f"\n## {name}: {group_size} process(es), Outrider's tick {interval}, "
              f"{len(lat['outrider'])} scrapes each over {elapsed:.0f} s; {os.path.basename(binary)}; "
              f"load average {os.getloadavg()[0]:.2f}")
        print(f"| exporter | RSS median (MiB) | CPU s/min | CPU s/min (task-clock) | scrape p50 (ms) | scrape p95 (ms) |")
        print(f"|---|---|---|---|---|---|")
        for k, r in rows.items():
            print(f"| {k} | {r['rss_mib']:.1f} | {r['cpu_s_per_min']:.3f} | {r['clock_s_per_min']:.4f} | "
                  f"{r['p50_ms']:.2f} | {r['p95_ms']:.2f} |")
        o, p = rows["outrider"], rows["process-exporter"]
        print(f"| outrider / process-exporter | {ratio(o['rss_mib'], p['rss_mib']):.2f} | "
              f"{ratio(o['cpu_s_per_min'], p['cpu_s_per_min']):.2f} | "
              f"{ratio(o['clock_s_per_min'], p['clock_s_per_min']):.3f} | "
              f"{ratio(o['p50_ms'], p['p50_ms']):.2f} | {ratio(o['p95_ms'], p['p95_ms']):.2f} |")
        return rows
    finally:
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            p.wait(timeout=10)
        subprocess.run(["pkill", "-P", str(target.pid)], check=False)
        target.kill()
        target.wait()


def ratio(a, b):
    return a / b if b > 0 else float("nan")


def summary(results):
    """One row per run: scenario, round, binary, Outrider's and process-exporter's CPU."""
    print("\n## summary (CPU s/min: clock ticks / task-clock)")
    print("| scenario | round | binary | Outrider | process-exporter | ratio | ratio (task-clock) |")
    print("|---|---|---|---|---|---|---|")
    for (scenario, rnd, binary), rows in results:
        o, p = rows["outrider"], rows["process-exporter"]
        print(f"| {scenario} | {rnd} | {binary} | {o['cpu_s_per_min']:.3f} / {o['clock_s_per_min']:.4f} | "
              f"{p['cpu_s_per_min']:.3f} / {p['clock_s_per_min']:.4f} | "
              f"{ratio(o['cpu_s_per_min'], p['cpu_s_per_min']):.2f} | "
              f"{ratio(o['clock_s_per_min'], p['clock_s_per_min']):.3f} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--binary", action="append",
                    help="Outrider to run (default target/release/outrider); more than one alternate")
    ap.add_argument("--rounds", type=int, default=1, help="times each binary runs each scenario")
    ap.add_argument("--interval", default="1s",
                    help="Outrider's tick and the scrape period of both: 1s, 100ms")
    ap.add_argument("--only", choices=["one", "group"], help="run one scenario")
    ap.add_argument("--settle", type=float, default=3,
                    help="seconds both run before measuring (125: past the start-up watch)")
    args = ap.parse_args()
    exporter = shutil.which("prometheus-process-exporter")
    if not exporter:
        raise SystemExit("install Debian's prometheus-process-exporter first")
    binaries = args.binary or ["target/release/outrider"]
    for b in binaries:
        if not os.path.exists(b):
            raise SystemExit(f"{b} missing: run cargo build --release")
    binaries = [os.path.abspath(b) for b in binaries]
    scenarios = [(n, size) for n, size in (("one target", 1), ("group of 120", 120))
                 if args.only is None or args.only == ("one" if size == 1 else "group")]
    results = []
    with tempfile.TemporaryDirectory() as d:
        # The target app is the first binary's demo app in every run.
        shutil.copy(binaries[0], os.path.join(d, "benchapp"))
        print(f"outrider {', '.join(binaries)}; process-exporter {exporter} "
              f"(its defaults: -threads, -gather-smaps)")
        for name, size in scenarios:
            for rnd in range(1, args.rounds + 1):
                for binary in binaries:
                    rows = run_scenario(name, binary, d, size, args.seconds, exporter,
                                        args.interval, args.settle)
                    results.append(((name, rnd, os.path.basename(binary)), rows))
        if len(results) > 1:
            summary(results)


if __name__ == "__main__":
    main()
