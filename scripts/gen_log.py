#!/usr/bin/env python3
"""Write a realistic application log of a given size, reproducibly.

    scripts/gen_log.py SIZE [OUT] [--seed N]

SIZE takes K, M or G suffixes (powers of 1024); OUT is a path or `-` (stdout, the
default). The mix, per event: Python-logging text lines (INFO/DEBUG/WARNING), JSON
lines (pino numeric and string levels), logfmt lines, access lines (nginx combined and
uvicorn), and ~2% errors: single ERROR lines and multi-line traces (Python
`logging.exception`, a standalone traceback, Java with `Caused by:`, a Go panic, a
Rust panic). The same seed gives the same bytes.

What was written is printed on stderr as JSON in the shape of `outrider scan`
(lines, bytes, events per severity, http per class), so an end-to-end run can be
checked: `outrider scan FILE` should print the same numbers.
"""

import json
import random
import sys

WORDS = (
    "request user order cache session token payment invoice queue worker db query "
    "retry upstream timeout connection pool batch shard replica index page item cart "
    "stock price account login refresh webhook event stream file bucket key value"
).split()
PATHS = ["/", "/api/orders", "/api/users/42", "/static/app.js", "/healthz", "/login", "/cart"]
METHODS = ["GET", "GET", "GET", "POST", "PUT", "DELETE"]
STATUSES = [200] * 40 + [201, 204, 301, 302, 304, 400, 401, 403, 404, 404, 429, 500, 502, 503]
MODULES = ["app.api", "app.db", "app.worker", "app.cache", "uvicorn.error", "app.billing"]


def parse_size(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().rstrip("IB")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)
        self.t = 1_714_557_600.0  # 2024-05-01T10:00:00Z
        self.events = {"error": 0, "warning": 0, "info": 0, "debug": 0, "unknown": 0}
        self.http = {"2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0}
        self.lines = 0
        self.after_error_line = False

    def words(self, lo=4, hi=14):
        return " ".join(self.r.choice(WORDS) for _ in range(self.r.randint(lo, hi)))

    def stamp(self):
        self.t += self.r.random() * 0.01
        whole = int(self.t)
        ms = int((self.t - whole) * 1000)
        h, m, s = (whole // 3600) % 24, (whole // 60) % 60, whole % 60
        return f"2024-05-01 {h:02d}:{m:02d}:{s:02d},{ms:03d}"

    def event(self, severity, lines, joins_error_head=False):
        # A trace right after a lone ERROR line is, by outrider's rule, part of that
        # line's event (as written by logging.exception): count it once.
        if not (joins_error_head and self.after_error_line):
            self.events[severity] += 1
        self.after_error_line = False
        self.lines += len(lines)
        return lines

    def status(self, code):
        self.http[f"{code // 100}xx"] += 1

    def text_line(self):
        level = self.r.choices(["INFO", "DEBUG", "WARNING"], [70, 20, 10])[0]
        sev = {"INFO": "info", "DEBUG": "debug", "WARNING": "warning"}[level]
        extra = self.r.choice(["", " errors=0", " (no errors)", " error_count=0", ""])
        return self.event(
            sev, [f"{self.stamp()} {level} {self.r.choice(MODULES)}: {self.words()}{extra}"]
        )

    def json_line(self):
        if self.r.random() < 0.5:
            level, sev = self.r.choice([(30, "info"), (30, "info"), (20, "debug"), (40, "warning")])
            body = {"level": level, "time": int(self.t * 1000), "pid": 7, "hostname": "web-1",
                    "msg": self.words()}
        else:
            name, sev = self.r.choice([("info", "info"), ("debug", "debug"), ("warning", "warning")])
            body = {"timestamp": self.stamp(), "level": name, "logger": self.r.choice(MODULES),
                    "event": self.words(), "duration_ms": self.r.randint(1, 900)}
        if self.r.random() < 0.3:
            code = self.r.choice(STATUSES)
            body["status"] = code
            self.status(code)
        return self.event(sev, [json.dumps(body, separators=(",", ":"))])

    def logfmt_line(self):
        name, sev = self.r.choice([("info", "info"), ("debug", "debug"), ("warn", "warning")])
        return self.event(
            sev,
            [f'ts=2024-05-01T10:00:00Z level={name} caller=main.go:{self.r.randint(10, 400)} '
             f'msg="{self.words()}" duration={self.r.randint(1, 999)}ms'],
        )

    def access_line(self):
        code = self.r.choice(STATUSES)
        self.status(code)
        method, path = self.r.choice(METHODS), self.r.choice(PATHS)
        ip = f"10.0.{self.r.randint(0, 255)}.{self.r.randint(1, 254)}"
        if self.r.random() < 0.6:
            line = (f'{ip} - - [01/May/2024:10:00:00 +0000] "{method} {path} HTTP/1.1" {code} '
                    f'{self.r.randint(0, 50000)} "-" "Mozilla/5.0 (X11; Linux x86_64) curl/8.5"')
            return self.event("unknown", [line])
        return self.event("info", [f'INFO:     {ip}:{self.r.randint(1024, 65535)} - "{method} {path} HTTP/1.1" {code}'])

    def error_event(self):
        kind = self.r.choices(["single", "pylog", "pytb", "java", "go", "rust"], [40, 25, 10, 15, 5, 5])[0]
        if kind == "single":
            lines = self.event("error", [f"{self.stamp()} ERROR {self.r.choice(MODULES)}: {self.words()}"])
            self.after_error_line = True
            return lines
        if kind in ("pylog", "pytb"):
            lines = []
            if kind == "pylog":
                lines.append(f"{self.stamp()} ERROR app.api: {self.words(3, 6)} failed")
            lines.append("Traceback (most recent call last):")
            for _ in range(self.r.randint(2, 8)):
                lines.append(f'  File "/srv/app/{self.r.choice(WORDS)}.py", line {self.r.randint(1, 900)}, in {self.r.choice(WORDS)}')
                lines.append(f"    {self.r.choice(WORDS)} = {self.r.choice(WORDS)}({self.r.choice(WORDS)})")
            lines.append(f"{self.r.choice(['ValueError', 'KeyError', 'TimeoutError'])}: {self.words(2, 5)}")
            return self.event("error", lines, joins_error_head=kind == "pytb")
        if kind == "java":
            lines = [f"{self.stamp()} ERROR [http-nio-8080-exec-{self.r.randint(1, 9)}] c.e.OrderService - checkout failed",
                     "java.lang.IllegalStateException: order has no items"]
            for _ in range(self.r.randint(5, 25)):
                lines.append(f"\tat com.example.{self.r.choice(WORDS)}.{self.r.choice(WORDS).title()}.run({self.r.choice(WORDS).title()}.java:{self.r.randint(1, 500)})")
            lines.append("Caused by: java.sql.SQLException: connection closed")
            lines.append(f"\tat org.h2.jdbc.JdbcConnection.checkClosed(JdbcConnection.java:{self.r.randint(1, 2000)})")
            lines.append(f"\t... {self.r.randint(5, 60)} more")
            return self.event("error", lines)
        if kind == "go":
            lines = ["panic: runtime error: invalid memory address or nil pointer dereference",
                     "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x4a1b2c]", "",
                     "goroutine 18 [running]:"]
            for _ in range(self.r.randint(2, 8)):
                lines.append(f"main.{self.r.choice(WORDS)}(0xc000118000, {{0x6d0c48, 0xc00007e0c0}})")
                lines.append(f"\t/src/{self.r.choice(WORDS)}.go:{self.r.randint(1, 500)} +0x2c")
            lines.append("exit status 2")
            return self.event("error", lines, joins_error_head=True)
        lines = ["thread 'main' panicked at src/main.rs:14:9:", "called `Option::unwrap()` on a `None` value",
                 "stack backtrace:"]
        for i in range(self.r.randint(3, 12)):
            lines.append(f"  {i:2d}: app::{self.r.choice(WORDS)}")
            lines.append(f"             at ./src/{self.r.choice(WORDS)}.rs:{self.r.randint(1, 300)}:9")
        lines.append("note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.")
        return self.event("error", lines, joins_error_head=True)

    def next_event(self):
        kind = self.r.choices(
            ["text", "json", "logfmt", "access", "error"], [50, 15, 8, 25, 2]
        )[0]
        return getattr(self, {"text": "text_line", "json": "json_line", "logfmt": "logfmt_line",
                              "access": "access_line", "error": "error_event"}[kind])()


def main(argv):
    args = [a for a in argv if not a.startswith("--seed")]
    seed = 42
    for a in argv:
        if a.startswith("--seed="):
            seed = int(a.split("=", 1)[1])
    if not args:
        sys.exit(__doc__)
    size = parse_size(args[0])
    out_path = args[1] if len(args) > 1 else "-"
    out = sys.stdout.buffer if out_path == "-" else open(out_path, "wb")
    gen = Gen(seed)
    written = 0
    batch = []
    batch_bytes = 0
    while written + batch_bytes < size:
        for line in gen.next_event():
            data = line.encode() + b"\n"
            batch.append(data)
            batch_bytes += len(data)
        if batch_bytes >= 1 << 20:
            out.write(b"".join(batch))
            written += batch_bytes
            batch, batch_bytes = [], 0
    out.write(b"".join(batch))
    written += batch_bytes
    out.flush()
    summary = {"lines": gen.lines, "bytes": written, "events": gen.events, "http": gen.http}
    print(json.dumps(summary), file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
